package ai.gptfast4j;

import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;

/** Test statistics, computed in double and independently of the engine. */
final class Statistics {
    private Statistics() {}

    /** Chi-square quantile at tail ~1e-6 (Wilson-Hilferty, z = 4.75). */
    static double chiSquareBound(int df) {
        double z = 4.75, a = 2.0 / (9.0 * df);
        return df * Math.pow(1 - a + z * Math.sqrt(a), 3);
    }

    /** {statistic, df}; a count where p is 0 makes the statistic infinite. */
    static double[] chiSquare(long[] counts, double[] p) {
        long n = Arrays.stream(counts).sum();
        double stat = 0;
        int cells = 0;
        for (int i = 0; i < p.length; i++) {
            if (p[i] == 0) {
                if (counts[i] > 0) stat = Double.POSITIVE_INFINITY;
                continue;
            }
            double e = p[i] * n;
            stat += (counts[i] - e) * (counts[i] - e) / e;
            cells++;
        }
        return new double[] {stat, cells - 1};
    }

    /**
     * Chi-square with cells of expected count < 5 pooled into one, as the approximation needs;
     * {statistic, df}.
     */
    static double[] chiSquarePooled(long[] counts, double[] p) {
        long n = Arrays.stream(counts).sum();
        double stat = 0, pooledP = 0;
        long pooledCount = 0;
        int cells = 0;
        for (int i = 0; i < p.length; i++) {
            if (p[i] == 0) {
                if (counts[i] > 0) return new double[] {Double.POSITIVE_INFINITY, Math.max(cells - 1, 1)};
                continue;
            }
            if (p[i] * n < 5) {
                pooledP += p[i];
                pooledCount += counts[i];
                continue;
            }
            double e = p[i] * n;
            stat += (counts[i] - e) * (counts[i] - e) / e;
            cells++;
        }
        if (pooledP * n >= 1) {
            double e = pooledP * n;
            stat += (pooledCount - e) * (pooledCount - e) / e;
            cells++;
        }
        return new double[] {stat, cells - 1};
    }

    /** softmax(logits / T) over the top-k logits (ties with the k-th kept), then the top-p nucleus. */
    static double[] topKSoftmax(float[] logits, double temperature, int topK, double topP) {
        double[] sorted = IntStream.range(0, logits.length).mapToDouble(i -> logits[i]).sorted().toArray();
        double pivot = topK > 0 && topK < logits.length ? sorted[logits.length - topK] : Double.NEGATIVE_INFINITY;
        double max = sorted[sorted.length - 1];
        double[] p = new double[logits.length];
        double total = 0;
        for (int i = 0; i < logits.length; i++) {
            if (logits[i] >= pivot) total += p[i] = Math.exp((logits[i] - max) / temperature);
        }
        for (int i = 0; i < p.length; i++) p[i] /= total;
        if (topP < 1) {
            Integer[] order = IntStream.range(0, p.length).boxed().toArray(Integer[]::new);
            Arrays.sort(order, Comparator.comparingDouble((Integer i) -> p[i]).reversed());
            double mass = 0;
            double[] nucleus = new double[p.length];
            for (int j = 0; j < order.length && mass < topP; j++) mass += nucleus[order[j]] = p[order[j]];
            for (int i = 0; i < p.length; i++) nucleus[i] /= mass;
            return nucleus;
        }
        return p;
    }
}
