package ai.gptfast4j;

import ai.gptfast4j.natives.GptFastNative;

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
        requirePositive("dim", dim);
        requirePositive("n_layer", nLayer);
        requirePositive("n_head", nHead);
        requirePositive("n_local_heads", nLocalHeads);
        requirePositive("head_dim", headDim);
        requirePositive("intermediate_size", intermediateSize);
        requirePositive("vocab_size", vocabSize);
        requirePositive("block_size", blockSize);
        if (nHead % nLocalHeads != 0) {
            throw new GptFastException("model config: n_head " + nHead
                    + " is not a multiple of n_local_heads " + nLocalHeads);
        }
        if (!(ropeBase > 0) || !(normEps > 0)) {
            throw new GptFastException("model config: rope_base and norm_eps must be positive");
        }
    }

    private static void requirePositive(String name, int value) {
        if (value <= 0) throw new GptFastException("model config: " + name + " must be positive, got " + value);
    }

    /** Number of weights, embeddings and output head included. */
    public long parameterCount() {
        long attention = (long) dim * (nHead + 2L * nLocalHeads) * headDim + (long) nHead * headDim * dim;
        long ffn = 3L * dim * intermediateSize;
        return 2L * vocabSize * dim + nLayer * (attention + ffn + 2L * dim) + dim;
    }


    GptFastNative.ModelSpec toNative() {
        return new GptFastNative.ModelSpec()
                .dim(dim).n_layer(nLayer).n_head(nHead).n_local_heads(nLocalHeads).head_dim(headDim)
                .intermediate_size(intermediateSize).vocab_size(vocabSize).block_size(blockSize)
                .rope_base(ropeBase).norm_eps(normEps).rope_scaling_factor(ropeScalingFactor)
                .rope_low_freq_factor(ropeLowFreqFactor).rope_high_freq_factor(ropeHighFreqFactor)
                .rope_original_max_position(ropeOriginalMaxPosition);
    }
}
