package ai.gptfast4j.serve;

import ai.gptfast4j.GenerationResult;
import io.javalin.http.Context;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.OutputStream;
import java.util.concurrent.TimeoutException;

/**
 * Answers a submitted job over HTTP: as one body, or streamed (HTTP chunked) piece by piece in a
 * framing (raw text for TorchServe, SSE for OpenAI). Headers are committed only once the first
 * token is sampled (or the result is there), so an error before that is still a proper 4xx/5xx JSON answer.
 * A failed write means the client went away: the job is cancelled, which frees its worker at the
 * next decode step. The request deadline (submit time + request timeout) bounds every wait.
 */
final class TokenStreamer {
    /** How a stream is written. */
    interface Framing {
        String contentType();

        /** Written once when the stream starts. */
        default byte[] start() { return new byte[0]; }

        /** One piece of text; an empty array writes nothing. */
        byte[] piece(String text);

        byte[] end(GenerationResult result);

        /** Written when the stream cannot finish (timeout, engine error) after headers went out. */
        byte[] error(ApiException e);
    }

    private final ServerMetrics metrics;
    private final long timeoutNanos;

    TokenStreamer(ServerMetrics metrics, int timeoutSeconds) {
        this.metrics = metrics;
        this.timeoutNanos = timeoutSeconds * 1_000_000_000L;
    }

    long deadline(GenerationJob job) {
        return job.submittedNanos() + timeoutNanos;
    }

    /** Waits for the whole result (non-streaming); a timeout cancels the job and answers 504. */
    GenerationResult await(GenerationJob job) throws InterruptedException {
        try {
            return job.await(deadline(job));
        } catch (TimeoutException e) {
            throw timedOut(job);
        }
    }

    void stream(Context ctx, GenerationJob job, Framing framing) throws InterruptedException {
        long deadline = deadline(job);
        String first;
        try {
            first = job.nextPiece(deadline);
            if (first == null) job.await(deadline); // ended before any text: surfaces an error as a JSON answer
        } catch (TimeoutException e) {
            throw timedOut(job);
        }
        HttpServletResponse res = ctx.res();
        res.setStatus(200);
        res.setContentType(framing.contentType());
        res.setHeader("Cache-Control", "no-cache");
        res.setHeader("X-Accel-Buffering", "no");
        try {
            OutputStream out = res.getOutputStream();
            res.flushBuffer(); // headers go out with the first token
            write(out, framing.start());
            String piece = first;
            while (piece != null) {
                if (!piece.isEmpty()) write(out, framing.piece(piece));
                piece = job.nextPiece(deadline);
            }
            GenerationResult r;
            try {
                r = job.await(deadline);
            } catch (ApiException e) {
                write(out, framing.error(e));
                return;
            } catch (RuntimeException e) {
                write(out, framing.error(GptServer.toApiException(e)));
                return;
            }
            write(out, framing.end(r));
        } catch (TimeoutException e) {
            ApiException t = timedOut(job);
            try {
                write(res.getOutputStream(), framing.error(t));
            } catch (IOException ignored) {
                // the client is gone as well
            }
        } catch (IOException e) {
            job.cancel();
            metrics.cancelled("disconnect");
        }
    }

    private static void write(OutputStream out, byte[] bytes) throws IOException {
        if (bytes.length == 0) return;
        out.write(bytes);
        out.flush();
    }

    private ApiException timedOut(GenerationJob job) {
        job.cancel();
        metrics.cancelled("timeout");
        return new ApiException(504, "timeout", "request_timeout",
                "request timed out after " + timeoutNanos / 1_000_000_000L + " s (the request timeout)");
    }
}
