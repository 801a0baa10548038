package ai.gptfast4j;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Test helper: an independent parser of llama2.c's legacy .bin checkpoint (7 little-endian int32
 * header fields, then fp32 tensors in llama2.c's order). Tensors are kept as the fp32 values of the
 * file; each matrix is row-major [out][in], per layer concatenated over layers as in the file.
 */
final class Llama2cWeights {
    final int dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen;
    final boolean sharedClassifier;
    final int headDim, kvDim;

    /** [vocab*dim] */
    final float[] tokenEmbedding;
    /** per layer: [dim] */
    final float[][] rmsAtt, rmsFfn;
    /** per layer: wq,wo [dim*dim]; wk,wv [kvDim*dim]; w1,w3 [hidden*dim]; w2 [dim*hidden] */
    final float[][] wq, wk, wv, wo, w1, w2, w3;
    /** [dim] */
    final float[] rmsFinal;
    /** [vocab*dim]; the embedding itself when shared */
    final float[] classifier;

    private Llama2cWeights(ByteBuffer buf) {
        buf.order(ByteOrder.LITTLE_ENDIAN);
        dim = buf.getInt();
        hiddenDim = buf.getInt();
        nLayers = buf.getInt();
        nHeads = buf.getInt();
        nKvHeads = buf.getInt();
        int v = buf.getInt();
        seqLen = buf.getInt();
        sharedClassifier = v > 0;
        vocabSize = Math.abs(v);
        headDim = dim / nHeads;
        kvDim = nKvHeads * headDim;
        FloatBuffer f = buf.slice().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
        tokenEmbedding = take(f, (long) vocabSize * dim);
        rmsAtt = perLayer(f, dim);
        wq = perLayer(f, dim * dim);
        wk = perLayer(f, kvDim * dim);
        wv = perLayer(f, kvDim * dim);
        wo = perLayer(f, dim * dim);
        rmsFfn = perLayer(f, dim);
        w1 = perLayer(f, hiddenDim * dim);
        w2 = perLayer(f, dim * hiddenDim);
        w3 = perLayer(f, hiddenDim * dim);
        rmsFinal = take(f, dim);
        take(f, (long) seqLen * headDim / 2); // freq_cis_real (unused: RoPE is computed independently)
        take(f, (long) seqLen * headDim / 2); // freq_cis_imag
        classifier = sharedClassifier ? tokenEmbedding : take(f, (long) vocabSize * dim);
        if (f.hasRemaining()) {
            throw new IllegalStateException(f.remaining() + " floats left over after parsing the llama2.c checkpoint");
        }
    }

    static Llama2cWeights read(Path file) throws IOException {
        return new Llama2cWeights(ByteBuffer.wrap(Files.readAllBytes(file)));
    }

    /** The same checkpoint with every weight rounded to bfloat16 (round to nearest even), as fp32. */
    static Llama2cWeights readRoundedToBf16(Path file) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        for (int at = 28; at + 4 <= b.capacity(); at += 4) b.putFloat(at, roundToBf16(b.getFloat(at)));
        return new Llama2cWeights(b.rewind());
    }

    /** f rounded to bfloat16 (round to nearest even; finite inputs), as a float. */
    static float roundToBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        return Float.intBitsToFloat((bits + 0x7FFF + ((bits >>> 16) & 1)) & 0xFFFF0000);
    }

    private float[][] perLayer(FloatBuffer f, int n) {
        float[][] out = new float[nLayers][];
        for (int l = 0; l < nLayers; l++) out[l] = take(f, n);
        return out;
    }

    private static float[] take(FloatBuffer f, long n) {
        if (n > f.remaining()) throw new IllegalStateException("llama2.c checkpoint is truncated");
        float[] out = new float[(int) n];
        f.get(out);
        return out;
    }

    /**
     * Writes these weights (only the first {@code layers} layers) as a llama2.c checkpoint:
     * legacy (7-int header, RoPE tables included) or version 1 ("ak42" header padded to 256 bytes,
     * norms first). Used to make truncated drafts and to exercise the v1 reader.
     */
    void write(Path file, int layers, boolean version1) throws IOException {
        int floats = tokenEmbedding.length + layers * (2 * dim + wq[0].length + wk[0].length + wv[0].length
                + wo[0].length + w1[0].length + w2[0].length + w3[0].length) + dim
                + (version1 ? 0 : seqLen * headDim) + (sharedClassifier ? 0 : classifier.length);
        ByteBuffer out = ByteBuffer.allocate((version1 ? 256 : 28) + 4 * floats).order(ByteOrder.LITTLE_ENDIAN);
        if (version1) out.putInt(0x616b3432).putInt(1);
        out.putInt(dim).putInt(hiddenDim).putInt(layers).putInt(nHeads).putInt(nKvHeads)
                .putInt(sharedClassifier || version1 ? vocabSize : -vocabSize).putInt(seqLen);
        if (version1) {
            out.put((byte) (sharedClassifier ? 1 : 0));
            out.position(256);
            for (int l = 0; l < layers; l++) putAll(out, rmsAtt[l]);
            for (int l = 0; l < layers; l++) putAll(out, rmsFfn[l]);
            putAll(out, rmsFinal);
            putAll(out, tokenEmbedding);
        } else {
            putAll(out, tokenEmbedding);
            for (int l = 0; l < layers; l++) putAll(out, rmsAtt[l]);
        }
        for (float[][] m : new float[][][] {wq, wk, wv, wo}) for (int l = 0; l < layers; l++) putAll(out, m[l]);
        if (!version1) for (int l = 0; l < layers; l++) putAll(out, rmsFfn[l]);
        for (float[][] m : new float[][][] {w1, w2, w3}) for (int l = 0; l < layers; l++) putAll(out, m[l]);
        if (!version1) {
            putAll(out, rmsFinal);
            putAll(out, new float[seqLen * headDim]);  // RoPE tables: ignored by readers that recompute them
        }
        if (!sharedClassifier) putAll(out, classifier);
        Files.write(file, out.array());
    }

    private static void putAll(ByteBuffer out, float[] values) {
        for (float v : values) out.putFloat(v);
    }

    static double[] toDouble(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) d[i] = a[i];
        return d;
    }
}
