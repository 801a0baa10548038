package ai.gptfast4j;

/** Receives each generated token as soon as it is sampled, on the generating thread. */
@FunctionalInterface
public interface TokenListener {
    /**
     * @param tokenId the sampled id
     * @param text the new text this token completes (may be empty while a multi-byte character
     *             is still incomplete, and is empty for the stop token)
     */
    void onToken(int tokenId, String text);
}
