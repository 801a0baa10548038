package ai.gptfast4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Checks the engine's fp32 prompt logits against an independent plain-Java float64 forward pass of
 * the same Llama (weights parsed from llama2.c's stories260K.bin, engine loaded from model.pth).
 */
class Float64ReferenceTest {
    private static final double TOLERANCE = 1e-4;
    private static final double NORM_EPS = 1e-5;
    private static final double ROPE_BASE = 10000.0;

    private static Path modelDir;
    private static Llama2cWeights weights;
    private static Engine engine;

    @BeforeAll
    static void setUp() throws Exception {
        modelDir = SharedData.stories();
        weights = Llama2cWeights.read(modelDir.resolve("stories260K.bin"));
        engine = Engine.load(EngineOptions.of(modelDir.resolve("model.pth"))
                .withTokenizer(modelDir.resolve("tokenizer.model"))
                .withConfig(modelDir.resolve("config.json")));
    }

    @AfterAll
    static void tearDown() {
        if (engine != null) engine.close();
    }

    @Test
    void headerMatchesTheDocumentedArchitecture() {
        assertEquals(64, weights.dim);
        assertEquals(172, weights.hiddenDim);
        assertEquals(5, weights.nLayers);
        assertEquals(8, weights.nHeads);
        assertEquals(4, weights.nKvHeads);
        assertEquals(512, weights.vocabSize);
        assertEquals(512, weights.seqLen);
        assertTrue(weights.sharedClassifier, "stories260K.bin shares its classifier with the embedding");
        assertEquals(512, engine.config().vocabSize());
    }

    @Test
    void shortPromptLogitsMatchFloat64() {
        int[] ids = engine.promptTokens("Once upon a time");
        assertEquals(1, ids[0], "BOS first");
        assertEquals(5, ids.length, "prompt ids " + Arrays.toString(ids));
        assertMatchesReference(ids);
    }

    @Test
    void longerPromptLogitsMatchFloat64() {
        int[] ids = engine.promptTokens(
                "Tom and his sister went to the park to play with a big red ball");
        assertTrue(ids.length >= 15 && ids.length <= 30, "expected about 20 prompt tokens, got " + ids.length);
        assertMatchesReference(ids);
    }

    @Test
    void bosOnlyLogitsMatchFloat64() {
        assertMatchesReference(new int[] {1});
    }

    /** The comparison can fail: RoPE on halves (the Hugging Face layout) must be far off. */
    @Test
    void wrongRopeLayoutIsDetected() {
        int[] ids = engine.promptTokens("Once upon a time there was a big dog");
        float[][] actual = engine.promptLogits(ids);
        double[][] right = forward(weights, ids, false);
        double[][] wrong = forward(weights, ids, true);
        Worst good = compare(actual, right);
        Worst bad = compare(actual, wrong);
        assertTrue(good.scaledError <= TOLERANCE, "reference itself does not match: " + good);
        assertTrue(bad.scaledError > 100 * TOLERANCE,
                "half-split RoPE should differ by far more than the tolerance, but " + bad);
        // position 0 is unaffected by RoPE (angle 0), so the differences must come from later positions
        assertTrue(bad.position > 0, "unexpected worst position for the wrong variant: " + bad);
    }

    private static void assertMatchesReference(int[] ids) {
        float[][] actual = engine.promptLogits(ids);
        assertEquals(ids.length, actual.length, "one logits row per prompt position");
        for (float[] row : actual) assertEquals(weights.vocabSize, row.length);
        double[][] expected = forward(weights, ids, false);
        Worst w = compare(actual, expected);
        if (w.scaledError > TOLERANCE) {
            fail("engine logits differ from the float64 reference for prompt " + Arrays.toString(ids) + ": " + w);
        }
    }

    /** The element with the largest |a-b| / max(1,|b|). */
    record Worst(int position, int token, double actual, double expected, double scaledError) {
        @Override
        public String toString() {
            return String.format("worst at position %d, token %d: engine %.9g vs float64 %.9g (|a-b|/max(1,|b|) = %.3g, tolerance %.1g)",
                    position, token, actual, expected, scaledError, TOLERANCE);
        }
    }

    static Worst compare(float[][] actual, double[][] expected) {
        Worst worst = new Worst(-1, -1, 0, 0, -1);
        for (int p = 0; p < expected.length; p++) {
            for (int t = 0; t < expected[p].length; t++) {
                double a = actual[p][t], b = expected[p][t];
                double e = Math.abs(a - b) / Math.max(1.0, Math.abs(b));
                if (Double.isNaN(a)) e = Double.POSITIVE_INFINITY;
                if (e > worst.scaledError) worst = new Worst(p, t, a, b, e);
            }
        }
        return worst;
    }

    // ---------------------------------------------------------------- float64 reference forward pass

    /**
     * Logits [n][vocab] of every position, computed in float64. ropeOnHalves = true rotates
     * (x[i], x[i + head_dim/2]) instead of the adjacent pairs (x[2i], x[2i+1]) (deliberately wrong).
     */
    static double[][] forward(Llama2cWeights w, int[] ids, boolean ropeOnHalves) {
        return forward(w, ids, ropeOnHalves, false);
    }

    /**
     * The same; bf16Cache = true stores every key and value as a bf16 cache holds it: the
     * float64 result rounded to fp32, then to bf16 (nearest even).
     */
    static double[][] forward(Llama2cWeights w, int[] ids, boolean ropeOnHalves, boolean bf16Cache) {
        int n = ids.length, dim = w.dim, hd = w.headDim, kvDim = w.kvDim, hidden = w.hiddenDim;
        int group = w.nHeads / w.nKvHeads;
        double[][][] keys = new double[w.nLayers][n][];
        double[][][] values = new double[w.nLayers][n][];
        double[][] logits = new double[n][];
        for (int pos = 0; pos < n; pos++) {
            double[] x = new double[dim];
            for (int i = 0; i < dim; i++) x[i] = w.tokenEmbedding[ids[pos] * dim + i];
            for (int l = 0; l < w.nLayers; l++) {
                double[] h = rmsNorm(x, w.rmsAtt[l]);
                double[] q = matVec(w.wq[l], h, dim, dim);
                double[] k = matVec(w.wk[l], h, kvDim, dim);
                double[] v = matVec(w.wv[l], h, kvDim, dim);
                rope(q, pos, hd, ropeOnHalves);
                rope(k, pos, hd, ropeOnHalves);
                if (bf16Cache) {
                    for (int i = 0; i < kvDim; i++) {
                        k[i] = Llama2cWeights.roundToBf16((float) k[i]);
                        v[i] = Llama2cWeights.roundToBf16((float) v[i]);
                    }
                }
                keys[l][pos] = k;
                values[l][pos] = v;
                double[] att = new double[dim];
                double scale = 1.0 / Math.sqrt(hd);
                for (int head = 0; head < w.nHeads; head++) {
                    int kvHead = head / group;
                    double[] scores = new double[pos + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int t = 0; t <= pos; t++) {
                        double s = 0;
                        for (int i = 0; i < hd; i++) s += q[head * hd + i] * keys[l][t][kvHead * hd + i];
                        scores[t] = s * scale;
                        max = Math.max(max, scores[t]);
                    }
                    double sum = 0;
                    for (int t = 0; t <= pos; t++) {
                        scores[t] = Math.exp(scores[t] - max);
                        sum += scores[t];
                    }
                    for (int t = 0; t <= pos; t++) {
                        double p = scores[t] / sum;
                        for (int i = 0; i < hd; i++) att[head * hd + i] += p * values[l][t][kvHead * hd + i];
                    }
                }
                double[] o = matVec(w.wo[l], att, dim, dim);
                for (int i = 0; i < dim; i++) x[i] += o[i];

                double[] hf = rmsNorm(x, w.rmsFfn[l]);
                double[] a = matVec(w.w1[l], hf, hidden, dim);
                double[] b = matVec(w.w3[l], hf, hidden, dim);
                for (int i = 0; i < hidden; i++) a[i] = a[i] / (1.0 + Math.exp(-a[i])) * b[i];
                double[] down = matVec(w.w2[l], a, dim, hidden);
                for (int i = 0; i < dim; i++) x[i] += down[i];
            }
            double[] xf = rmsNorm(x, w.rmsFinal);
            logits[pos] = matVec(w.classifier, xf, w.vocabSize, dim);
        }
        return logits;
    }

    static double[] rmsNorm(double[] x, float[] weight) {
        double ss = 0;
        for (double v : x) ss += v * v;
        double inv = 1.0 / Math.sqrt(ss / x.length + NORM_EPS);
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) out[i] = x[i] * inv * weight[i];
        return out;
    }

    /** m is row-major [rows][cols]. */
    static double[] matVec(float[] m, double[] x, int rows, int cols) {
        double[] out = new double[rows];
        for (int r = 0; r < rows; r++) {
            double s = 0;
            int base = r * cols;
            for (int c = 0; c < cols; c++) s += m[base + c] * x[c];
            out[r] = s;
        }
        return out;
    }

    /** Rotates each head of vec in place by position pos. */
    static void rope(double[] vec, int pos, int headDim, boolean onHalves) {
        int half = headDim / 2;
        for (int head = 0; head < vec.length / headDim; head++) {
            int base = head * headDim;
            for (int i = 0; i < half; i++) {
                double freq = Math.pow(ROPE_BASE, -2.0 * i / headDim);
                double angle = pos * freq;
                double c = Math.cos(angle), s = Math.sin(angle);
                int i0 = onHalves ? base + i : base + 2 * i;
                int i1 = onHalves ? base + i + half : base + 2 * i + 1;
                double x0 = vec[i0], x1 = vec[i1];
                vec[i0] = x0 * c - x1 * s;
                vec[i1] = x0 * s + x1 * c;
            }
        }
    }
}
