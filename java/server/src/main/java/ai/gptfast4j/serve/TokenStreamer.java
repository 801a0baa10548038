package ai.gptfast4j.serve;

import ai.gptfast4j.GenerationResult;
import io.javalin.http.Context;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.OutputStream;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;
import java.util.function.LongSupplier;

/**
 * Answers a submitted job over HTTP: as one body, or streamed (HTTP chunked) piece by piece in a
 * framing (raw text for TorchServe, SSE for OpenAI). Headers are committed only once the first
 * token is sampled (or the result is there), so an error before that is still a proper 4xx/5xx JSON answer.
 * A client that goes away (a failed write, or a closed connection seen while waiting) cancels its
 * job, which frees its slot at the next step. The request deadline (start + request timeout, on
 * the server's clock) bounds every wait; waits last at most {@link #SLICE_NANOS} so the deadline
 * and the connection are looked at again between them.
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

        /** Written when the stream cannot finish (timeout, engine error, shutdown) after headers went out; ends the stream as end() would. */
        byte[] error(ApiException e);
    }

    /** The longest single wait before the deadline and the client connection are checked again. */
    static final long SLICE_NANOS = 50_000_000L;

    /** Status recorded for an exchange whose client went away (nginx's "client closed request"). */
    static final int CLIENT_GONE = 499;

    private final ServerMetrics metrics;
    private final long timeoutNanos;
    private final LongSupplier clock;

    TokenStreamer(ServerMetrics metrics, int timeoutSeconds, LongSupplier clock) {
        this.metrics = metrics;
        this.timeoutNanos = timeoutSeconds * 1_000_000_000L;
        this.clock = clock;
    }

    /** The deadline of a request accepted now (taken before it is submitted: queueing counts). */
    long deadline() {
        return clock.getAsLong() + timeoutNanos;
    }

    /**
     * Waits for the whole result (non-streaming). The deadline cancels the job and answers 504; a
     * client seen gone (clientGone) cancels it and ends the exchange.
     */
    GenerationResult await(GenerationJob job, long deadline, BooleanSupplier clientGone) throws InterruptedException {
        while (true) {
            try {
                return job.await(slice(job, deadline));
            } catch (TimeoutException e) {
                checkClient(job, clientGone);
            }
        }
    }

    void stream(Context ctx, GenerationJob job, long deadline, Framing framing, BooleanSupplier clientGone)
            throws InterruptedException {
        String first = nextPiece(job, deadline, clientGone);
        if (first == null) resultNow(job); // ended before any text: surfaces an error as a JSON answer
        HttpServletResponse res = ctx.res();
        res.setStatus(200);
        res.setContentType(framing.contentType());
        res.setHeader("Cache-Control", "no-cache");
        res.setHeader("X-Accel-Buffering", "no");
        OutputStream out;
        try {
            out = res.getOutputStream();
            res.flushBuffer(); // headers go out with the first token
            write(out, framing.start());
        } catch (IOException e) {
            disconnected(job);
            return;
        }
        byte[] last;
        try {
            String piece = first;
            while (piece != null) {
                if (!piece.isEmpty()) write(out, framing.piece(piece));
                piece = nextPiece(job, deadline, clientGone);
            }
            last = framing.end(resultNow(job));
        } catch (ApiException e) {  // the deadline, a shutdown, an engine error: the stream ends with an error
            if (e.status() == CLIENT_GONE) return;
            last = framing.error(e);
        } catch (RuntimeException e) {
            last = framing.error(GptServer.toApiException(e));
        } catch (IOException e) {
            disconnected(job);
            return;
        }
        try {
            write(out, last);
            out.close();  // completes the response (the last chunk) here, not after the handler
        } catch (IOException e) {
            disconnected(job);
        }
    }

    /** The next piece, null at the end; the deadline throws 504 (the job is cancelled). */
    private String nextPiece(GenerationJob job, long deadline, BooleanSupplier clientGone) throws InterruptedException {
        while (true) {
            try {
                return job.nextPiece(slice(job, deadline));
            } catch (TimeoutException e) {
                checkClient(job, clientGone);
            }
        }
    }

    /** How long the next wait may last; at the deadline the job is cancelled and 504 thrown. */
    private long slice(GenerationJob job, long deadline) {
        long left = deadline - clock.getAsLong();
        if (left <= 0) throw timedOut(job);
        return Math.min(left, SLICE_NANOS);
    }

    /** The result of a job whose pieces ended (it is complete then). */
    private static GenerationResult resultNow(GenerationJob job) throws InterruptedException {
        try {
            return job.await(0);
        } catch (TimeoutException e) {
            throw new IllegalStateException("the result follows the end of the pieces", e);
        }
    }

    private void checkClient(GenerationJob job, BooleanSupplier clientGone) {
        if (clientGone.getAsBoolean()) {
            disconnected(job);
            throw new ApiException(CLIENT_GONE, "cancelled", "client_disconnected", "the client closed the connection");
        }
    }

    private void disconnected(GenerationJob job) {
        job.cancel();
        metrics.cancelled("disconnect");
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
