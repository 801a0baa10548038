package ai.gptfast4j;

/** Any problem gptfast4j reports: bad input, unreadable checkpoints, native engine errors. */
public class GptFastException extends RuntimeException {
    public GptFastException(String message) {
        super(message);
    }

    public GptFastException(String message, Throwable cause) {
        super(message, cause);
    }

    /** Re-throws a native (JavaCPP) RuntimeException as a GptFastException with its message. */
    static GptFastException fromNative(RuntimeException e) {
        return e instanceof GptFastException g ? g : new GptFastException(e.getMessage(), e);
    }
}
