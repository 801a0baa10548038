package ai.gptfast4j.serve;

import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.ByteBuffer;
import org.eclipse.jetty.http.HttpFields;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpStatus;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.handler.ErrorHandler;

/**
 * Jetty's own errors as JSON instead of HTML pages: requests Jetty refuses before any route runs
 * (a malformed request line, a URI or headers over the size limits: 400, 414, 431) and errors
 * raised outside the routes. Where the path is known the body has that API's error shape;
 * otherwise it has both ({@link GptServer#errorBody}).
 */
final class JsonErrorHandler extends ErrorHandler {

    @Override
    public void handle(String target, Request baseRequest, HttpServletRequest request, HttpServletResponse response)
            throws IOException {
        baseRequest.setHandled(true);
        if (response.isCommitted()) return;
        int status = response.getStatus() >= 400 ? response.getStatus() : 500;
        String path = request.getRequestURI();
        byte[] body = GptServer.errorBody(path, jettyError(status, null));
        response.setStatus(status);
        response.setContentType("application/json");
        response.setContentLength(body.length);
        response.getOutputStream().write(body);
    }

    @Override
    public ByteBuffer badMessageError(int status, String reason, HttpFields.Mutable fields) {
        fields.put(HttpHeader.CONTENT_TYPE, "application/json");
        return ByteBuffer.wrap(GptServer.errorBody(null, jettyError(status, reason)));
    }

    /** A message that names the problem without echoing Jetty internals. */
    static ApiException jettyError(int status, String reason) {
        String message = switch (status) {
            case 400 -> "malformed HTTP request";
            case 408 -> "the request did not arrive in time";
            case 413 -> "request entity too large";
            case 414 -> "request URI too long (the limit is 8 KiB)";
            case 431 -> "request headers too large (the limit is 8 KiB)";
            case 505 -> "HTTP version not supported";
            default -> HttpStatus.getMessage(status);
        };
        if (status == 400 && reason != null && reason.matches("[A-Za-z0-9 ,.:'/_-]{1,80}")) message += ": " + reason;
        return new ApiException(status, status >= 500 ? "server_error" : "invalid_request_error",
                "http_" + status, message);
    }
}
