package ai.gptfast4j;

import java.util.Arrays;
import java.util.function.Consumer;
import java.util.function.LongSupplier;

/**
 * The bookkeeping of one sequence of an {@link Engine}: tokens, streamed text, stop conditions (stop token, stop sequence, max_new_tokens, full
 * context, cancellation), min_new_tokens suppression and timings.
 */
final class GenerationRun {
    final int[] promptIds;
    final GenerationParams params;
    private final Tokenizer tokenizer;
    private final TokenListener listener;
    private final CancellationToken cancel;
    private final Consumer<int[]> suppressor;  // sets the natively suppressed token ids
    private final LongSupplier forwardNanos;    // the session's forward-pass clock
    private final int cachedPromptTokens;
    private final StreamingDetokenizer text;
    private final int[] generated;
    private final boolean needText;
    private final int[] stopIds;
    private int count;
    private boolean suppressing;
    private boolean textUpToDate = true;
    private GenerationResult.StopReason reason;
    final long startNanos = System.nanoTime();
    long firstTokenNanos;
    private long firstTokenForwardNanos;

    GenerationRun(Tokenizer tokenizer, int[] promptIds, GenerationParams params, TokenListener listener,
                  CancellationToken cancel, int contextLength, int[] defaultStops, Consumer<int[]> suppressor,
                  LongSupplier forwardNanos, int cachedPromptTokens) {
        // the prompt was checked natively when the sequence started
        this.promptIds = promptIds.clone();
        this.params = params;
        this.tokenizer = tokenizer;
        this.listener = listener;
        this.cancel = cancel;
        this.suppressor = suppressor;
        this.forwardNanos = forwardNanos;
        this.cachedPromptTokens = cachedPromptTokens;
        this.text = new StreamingDetokenizer(tokenizer, Arrays.copyOfRange(promptIds, 1, promptIds.length),
                params.stopSequences());
        // the last position can still be sampled from, so the context allows one token more
        this.generated = new int[Math.min(params.maxNewTokens(), contextLength - promptIds.length + 1)];
        this.needText = listener != null || !params.stopSequences().isEmpty();
        this.stopIds = params.effectiveStopTokens(defaultStops);
    }

    /** Stop tokens are suppressed natively until min_new_tokens were generated. */
    void updateSuppression() {
        boolean want = count < params.minNewTokens();
        if (want == suppressing) return;
        suppressing = want;
        suppressor.accept(want ? stopIds : new int[0]);
    }

    /** Records a token, streams its text; returns true when generation ends with it. */
    boolean accept(int token) {
        if (count == 0) {
            firstTokenNanos = System.nanoTime();
            firstTokenForwardNanos = forwardNanos.getAsLong();
        }
        generated[count++] = token;
        if (isStop(token)) {
            reason = GenerationResult.StopReason.STOP_TOKEN;
        } else {
            text.append(token);
            textUpToDate = needText;
            if (needText && text.update()) reason = GenerationResult.StopReason.STOP_SEQUENCE;
        }
        if (reason == null) {
            if (count == params.maxNewTokens()) reason = GenerationResult.StopReason.MAX_NEW_TOKENS;
            else if (count == generated.length) reason = GenerationResult.StopReason.CONTEXT_FULL;
            else if (cancel.isCancelled()) reason = GenerationResult.StopReason.CANCELLED;
        }
        if (listener != null) listener.onToken(token, reason != null ? text.takeRest() : text.takeFinalText());
        return reason != null;
    }

    private boolean isStop(int token) {
        for (int t : stopIds) if (t == token) return true;
        return false;
    }

    boolean finished() {
        return reason != null;
    }

    /** Ends the generation now for the given reason (if nothing ended it yet). */
    void stop(GenerationResult.StopReason why) {
        if (reason == null) reason = why;
    }

    GenerationResult result(long rounds, long proposed, long accepted) {
        long end = System.nanoTime();
        long first = count > 0 ? firstTokenNanos : end;  // cancelled before its first token
        long engine = count > 0 ? forwardNanos.getAsLong() - firstTokenForwardNanos : 0;
        GenerationStats stats = new GenerationStats(promptIds.length, count, (first - startNanos) / 1e6,
                (end - first) / 1e6, rounds, proposed, accepted, engine / 1e6, cachedPromptTokens);
        if (!textUpToDate) text.update();
        return new GenerationResult(promptIds.clone(), Arrays.copyOf(generated, count), text.completion(), reason, stats);
    }
}
