package ai.gptfast4j;

/**
 * Teacher-forced perplexity of a model over a text: the text's tokens are cut into windows of at
 * most the context length minus one, each window is fed as BOS + its tokens, and every text token
 * is scored by the log-probability the model gave it at the position before (log-softmax in
 * float64 over the fp32 logits). Perplexity = exp(mean negative log-likelihood).
 */
public final class Perplexity {
    private Perplexity() {}

    public record Result(double perplexity, double meanNll, long tokensScored, int windows) {}

    /** Told after each window: tokens scored so far and in all. */
    public interface Progress {
        void scored(long done, long total);
    }

    public static Result of(Engine engine, String text, Progress progress) {
        int[] tokens = engine.tokenizer().encode(text);
        if (tokens.length == 0) throw new GptFastException("the text encodes to no tokens");
        int window = engine.contextLength() - 1;
        if (window < 1) throw new GptFastException("the context length must be at least 2 to score a token");
        double nll = 0;
        int windows = 0;
        for (int start = 0; start < tokens.length; start += window) {
            int n = Math.min(window, tokens.length - start);
            int[] input = new int[n + 1];
            input[0] = engine.tokenizer().bosId();
            System.arraycopy(tokens, start, input, 1, n);
            float[][] logits = engine.promptLogits(input);
            for (int i = 0; i < n; i++) nll -= logSoftmax(logits[i], input[i + 1]);
            windows++;
            if (progress != null) progress.scored(start + n, tokens.length);
        }
        double mean = nll / tokens.length;
        return new Result(Math.exp(mean), mean, tokens.length, windows);
    }

    private static double logSoftmax(float[] row, int target) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : row) max = Math.max(max, v);
        double sum = 0;
        for (float v : row) sum += Math.exp(v - max);
        return row[target] - max - Math.log(sum);
    }
}
