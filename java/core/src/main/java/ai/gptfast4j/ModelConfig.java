package ai.gptfast4j;

import ai.gptfast4j.natives.GptFastNative;
import ai.gptfast4j.natives.NativeLibrary;

/**
 * Architecture of a GPT-Fast (Llama-family) transformer: GPT-Fast's ModelArgs plus Llama 3.1
 * RoPE scaling. {@link ConfigResolver} finds one for a checkpoint.
 *
 * @param ropeScalingFactor 0 when the model has no RoPE scaling
 */
public record ModelConfig(
        int dim, int nLayer, int nHead, int nLocalHeads, int headDim, int intermediateSize,
        int vocabSize, int blockSize, float ropeBase, float normEps,
        float ropeScalingFactor, float ropeLowFreqFactor, float ropeHighFreqFactor,
        int ropeOriginalMaxPosition) {

    public ModelConfig {
        NativeLibrary.load();  // one-line error if the natives are missing or mismatched
        try (GptFastNative.ModelSpec spec = toNative(dim, nLayer, nHead, nLocalHeads, headDim, intermediateSize,
                vocabSize, blockSize, ropeBase, normEps, ropeScalingFactor, ropeLowFreqFactor, ropeHighFreqFactor,
                ropeOriginalMaxPosition)) {
            GptFastNative.checkModel(spec);  // the native check the loader runs, naming the field
        } catch (RuntimeException e) {
            throw GptFastException.fromNative(e);
        }
    }

    static ModelConfig fromNative(GptFastNative.ModelSpec s) {
        return new ModelConfig(s.dim(), s.n_layer(), s.n_head(), s.n_local_heads(), s.head_dim(), s.intermediate_size(),
                s.vocab_size(), s.block_size(), s.rope_base(), s.norm_eps(), s.rope_scaling_factor(),
                s.rope_low_freq_factor(), s.rope_high_freq_factor(), s.rope_original_max_position());
    }

    /** Number of weights, embeddings and output head included. */
    public long parameterCount() {
        long attention = (long) dim * (nHead + 2L * nLocalHeads) * headDim + (long) nHead * headDim * dim;
        long ffn = 3L * dim * intermediateSize;
        return 2L * vocabSize * dim + nLayer * (attention + ffn + 2L * dim) + dim;
    }


    GptFastNative.ModelSpec toNative() {
        return toNative(dim, nLayer, nHead, nLocalHeads, headDim, intermediateSize, vocabSize, blockSize, ropeBase,
                normEps, ropeScalingFactor, ropeLowFreqFactor, ropeHighFreqFactor, ropeOriginalMaxPosition);
    }

    private static GptFastNative.ModelSpec toNative(int dim, int nLayer, int nHead, int nLocalHeads, int headDim,
            int intermediateSize, int vocabSize, int blockSize, float ropeBase, float normEps, float ropeScalingFactor,
            float ropeLowFreqFactor, float ropeHighFreqFactor, int ropeOriginalMaxPosition) {
        return new GptFastNative.ModelSpec()
                .dim(dim).n_layer(nLayer).n_head(nHead).n_local_heads(nLocalHeads).head_dim(headDim)
                .intermediate_size(intermediateSize).vocab_size(vocabSize).block_size(blockSize)
                .rope_base(ropeBase).norm_eps(normEps).rope_scaling_factor(ropeScalingFactor)
                .rope_low_freq_factor(ropeLowFreqFactor).rope_high_freq_factor(ropeHighFreqFactor)
                .rope_original_max_position(ropeOriginalMaxPosition);
    }
}
