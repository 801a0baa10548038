package ai.gptfast4j.serve;

/**
 * A request the server answers with an error status: carries the HTTP status, an error type and
 * code, and a message naming the problem. Routes render it TorchServe-style
 * ({@code {"code","type","message"}}) or OpenAI-style ({@code {"error":{"message","type","code"}}}).
 */
public final class ApiException extends RuntimeException {
    private final int status;
    private final String type;
    private final String code;
    private final int retryAfterSeconds;

    public ApiException(int status, String type, String code, String message) {
        this(status, type, code, message, 0);
    }

    public ApiException(int status, String type, String code, String message, int retryAfterSeconds) {
        super(message);
        this.status = status;
        this.type = type;
        this.code = code;
        this.retryAfterSeconds = retryAfterSeconds;
    }

    public static ApiException badRequest(String message) {
        return new ApiException(400, "invalid_request_error", "bad_request", message);
    }

    public static ApiException modelNotFound(String name, String served) {
        return new ApiException(404, "invalid_request_error", "model_not_found",
                "model '" + name + "' not found (this server serves '" + served + "')");
    }

    public int status() { return status; }
    public String type() { return type; }
    public String code() { return code; }
    /** Seconds for a Retry-After header; 0 = none. */
    public int retryAfterSeconds() { return retryAfterSeconds; }
}
