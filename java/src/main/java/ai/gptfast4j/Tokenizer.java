package ai.gptfast4j;

/** Text to token ids and back. Implementations must be safe for concurrent use. */
public interface Tokenizer extends AutoCloseable {
    /** Token ids of text, without BOS/EOS. */
    int[] encode(String text);

    /** Text of the ids; incomplete UTF-8 at the end decodes to U+FFFD. */
    String decode(int[] ids);

    /**
     * Text of {@code ids[from..to)}, as {@link #decode(int[])} of that range. Implementations
     * override it to avoid the copy (the streaming detokenizer calls it once or twice a token).
     */
    default String decode(int[] ids, int from, int to) {
        return decode(java.util.Arrays.copyOfRange(ids, from, to));
    }

    int vocabSize();

    int bosId();

    int eosId();

    @Override
    void close();
}
