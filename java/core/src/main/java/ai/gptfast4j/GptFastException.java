package ai.gptfast4j;

/** Any problem gptfast4j reports: bad input, unreadable checkpoints, native engine errors. */
public class GptFastException extends RuntimeException {
    public GptFastException(String message) {
        super(message);
    }

    public GptFastException(String message, Throwable cause) {
        super(message, cause);
    }

    /**
     * Why a file could not be read, in one line: a parser's own message with line and column (not
     * Jackson's multi-line location dump), "no such file", or the first line of the message.
     */
    public static String readError(java.io.IOException e) {
        if (e instanceof com.fasterxml.jackson.core.JsonProcessingException j) {
            var at = j.getLocation();
            String where = at == null || at.getLineNr() < 1 ? "" : " (line " + at.getLineNr() + ", column " + at.getColumnNr() + ")";
            return firstLine(j.getOriginalMessage()) + where;
        }
        if (e instanceof java.nio.file.NoSuchFileException) return "no such file";
        if (e instanceof java.nio.file.AccessDeniedException) return "permission denied";
        return firstLine(e.getMessage());
    }

    private static String firstLine(String s) {
        return s == null ? "unreadable" : s.lines().findFirst().orElse("").strip();
    }

    /** Re-throws a native (JavaCPP) RuntimeException as a GptFastException with its message. */
    static GptFastException fromNative(RuntimeException e) {
        return e instanceof GptFastException g ? g : new GptFastException(e.getMessage(), e);
    }
}
