package ai.gptfast4j.natives;

import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.annotation.ByRef;
import org.bytedeco.javacpp.annotation.ByVal;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Const;
import org.bytedeco.javacpp.annotation.MemberGetter;
import org.bytedeco.javacpp.annotation.Name;
import org.bytedeco.javacpp.annotation.Namespace;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.StdString;

/**
 * JavaCPP binding of native/include/gptfast/*_api.h (torch-free C++ API of libgptfast.so).
 * C++ exceptions surface as {@link RuntimeException}s carrying the native message.
 * Library code should use {@link ai.gptfast4j.Engine} and {@link ai.gptfast4j.SentencePieceTokenizer}.
 */
@Platform(include = {"gptfast/engine_api.h", "gptfast/tokenizer_api.h", "gptfast/bench_api.h"}, link = "gptfast")
public final class GptFastNative {
    private GptFastNative() {}

    /**
     * Loads libtorch first (libgptfast.so links against it by soname), checks its version, then
     * libgptfast.so and its JNI glue from the natives jar: see {@link NativeLibrary}.
     */
    public static void load() {
        NativeLibrary.load();
    }

    /** Architecture of a GPT-Fast transformer (see engine_api.h). */
    @Namespace("gptfast")
    public static class ModelSpec extends Pointer {
        static { load(); }
        public ModelSpec() { allocate(); }
        private native void allocate();

        public native int dim();                         public native ModelSpec dim(int v);
        public native int n_layer();                     public native ModelSpec n_layer(int v);
        public native int n_head();                      public native ModelSpec n_head(int v);
        public native int n_local_heads();               public native ModelSpec n_local_heads(int v);
        public native int head_dim();                    public native ModelSpec head_dim(int v);
        public native int intermediate_size();           public native ModelSpec intermediate_size(int v);
        public native int vocab_size();                  public native ModelSpec vocab_size(int v);
        public native int block_size();                  public native ModelSpec block_size(int v);
        public native float rope_base();                 public native ModelSpec rope_base(float v);
        public native float norm_eps();                  public native ModelSpec norm_eps(float v);
        public native float rope_scaling_factor();       public native ModelSpec rope_scaling_factor(float v);
        public native float rope_low_freq_factor();      public native ModelSpec rope_low_freq_factor(float v);
        public native float rope_high_freq_factor();     public native ModelSpec rope_high_freq_factor(float v);
        public native int rope_original_max_position();  public native ModelSpec rope_original_max_position(int v);
    }

    /** Sampling parameters (see engine_api.h for the order of processing). */
    @Namespace("gptfast")
    public static class SamplingSpec extends Pointer {
        static { load(); }
        public SamplingSpec() { allocate(); }
        private native void allocate();

        public native float temperature();         public native SamplingSpec temperature(float v);
        public native int top_k();                 public native SamplingSpec top_k(int v);
        public native float top_p();               public native SamplingSpec top_p(float v);
        public native float repetition_penalty();  public native SamplingSpec repetition_penalty(float v);
        public native float presence_penalty();    public native SamplingSpec presence_penalty(float v);
        public native float frequency_penalty();   public native SamplingSpec frequency_penalty(float v);
        public native long seed();                 public native SamplingSpec seed(long v);
    }

    /** Throws if a sampling parameter is out of range (the one check of these ranges). */
    @Name("gptfast::check_sampling")
    public static native void checkSampling(@Const @ByRef SamplingSpec sampling);

    /** Throws if the architecture is inconsistent, naming the field (the one check, see engine_api.h). */
    @Name("gptfast::check_model")
    public static native void checkModel(@Const @ByRef ModelSpec model);

    /** "pth", "safetensors" or "llama2c", by name and magic bytes; throws for anything else. */
    @Name("gptfast::checkpoint_format")
    public static native @StdString String checkpointFormat(@StdString String path);

    /** The architecture in a llama2.c checkpoint's header. */
    @Name("gptfast::llama2c_model")
    public static native @ByVal ModelSpec llama2cModel(@StdString String path);

    /** Throws if a session option is out of range (the one check of these ranges, see engine_api.h). */
    @Name("gptfast::check_options")
    public static native void checkOptions(@StdString String dtype, @StdString String device, int threads,
                                           int maxSeqLen, int slots, int prefillChunk, int speculateK,
                                           @StdString String quantize, int tp);

    /** Node 0 of a multi-process tensor-parallel group listens; returns the port (see engine_api.h). */
    @Name("gptfast::tp_listen")
    public static native int tpListen(@StdString String masterAddr, int masterPort, int nnodes, int tp, int timeoutMs);

    /** Nodes 1..nnodes-1: replay node 0's requests until it shuts the group down (see engine_api.h). */
    @Name("gptfast::tp_follow")
    public static native void tpFollow(@StdString String masterAddr, int masterPort, int nnodes, int nodeRank, int tp,
                                       int timeoutMs);

    /** Node 0: tells the followers to exit and leaves the group. */
    @Name("gptfast::tp_shutdown")
    public static native void tpShutdown();

    static { load(); }

    /**
     * A loaded model (and optional draft) with a KV cache slot per sequence; each step advances
     * any set of slots by a prefill chunk, a decode token or a speculative round (see
     * engine_api.h). Not thread-safe.
     */
    @Namespace("gptfast")
    public static class Session extends Pointer {
        static { load(); }
        public Session(String checkpointPath, String format, ModelSpec model, String dtype, String device,
                       int threads, int maxSeqLen, int slots, int prefillChunk, String quantize, int tp) {
            allocate(checkpointPath, format, model, dtype, device, threads, maxSeqLen, slots, prefillChunk, quantize,
                     tp);
        }
        private native void allocate(@StdString String checkpointPath, @StdString String format,
                                     @Const @ByRef ModelSpec model, @StdString String dtype,
                                     @StdString String device, int threads, int maxSeqLen, int slots,
                                     int prefillChunk, @StdString String quantize, int tp);

        public native void load_draft(@StdString String checkpointPath, @StdString String format,
                                      @Const @ByRef ModelSpec model, int maxSpeculateK, @StdString String quantize);
        public native void start(int slot, @Const @ByRef SamplingSpec sampling, int speculateK,
                                 @Const int[] prompt, int nTokens, boolean reuseCache);
        public native int cached_prefix(int slot, @Const int[] prompt, int nTokens);
        public native void suppress_tokens(int slot, @Const int[] ids, int n);
        public native void step(@Const int[] slots, int n, int[] out, int stride, int[] counts);
        public native void release(int slot);
        public native void prompt_logits(@Const int[] tokens, int nTokens, float[] out);
        public native int slots();
        public native int max_seq_len();
        public native int vocab_size();
        public native int max_speculate_k();
        public native int max_tokens_per_step();
        public native long weight_bytes();
        public native int tensor_parallel();
        public native @StdString String device();
        public native long all_reduces();
        public native long all_reduce_nanos();
        public native long forward_nanos();
        public native void fail_rank_for_test(int rank, int n, int timeoutMs);
        @Name("position") public native int slotPosition(int slot);
        public native long rounds(int slot);
        public native long proposed(int slot);
        public native long accepted(int slot);
        public native @StdString String describe();
        public native @StdString String broken();
    }

    /** What this CPU configuration streams and computes (see bench_api.h), for benchmark rooflines. */
    /** Writes a weight-only quantized copy of a checkpoint, one layer per next() (see engine_api.h). */
    @Namespace("gptfast")
    public static class Quantizer extends Pointer {
        static { load(); }
        public Quantizer(String checkpointPath, String format, ModelSpec model, String quantize) {
            allocate(checkpointPath, format, model, quantize);
        }
        private native void allocate(@StdString String checkpointPath, @StdString String format,
                                     @Const @ByRef ModelSpec model, @StdString String quantize);
        public native int layers();
        public native int done();
        public native @StdString String quantization();
        public native @StdString String next();
        public native void save(@StdString String outPath);
    }

    @Namespace("gptfast")
    public static class MachineLimits extends Pointer {
        static { load(); }
        public MachineLimits() { allocate(); }
        private native void allocate();

        @MemberGetter public native double read_bytes_per_second();
        @MemberGetter public native double matmul_flops_per_second();
        @MemberGetter public native int threads();
    }

    /** Measures read bandwidth and the fp32 at::mm rate with the given threads (about a second). */
    @Name("gptfast::measure_machine_limits")
    public static native @ByVal MachineLimits measureMachineLimits(int threads);

    /** The read bandwidth of measureMachineLimits alone (about a quarter of a second), for pairing with timed runs. */
    @Name("gptfast::measure_read_bandwidth")
    public static native double measureReadBandwidth(int threads);

    /** The OpenBLAS thread count libtorch's CPU GEMMs run with (a session sets it), or -1 without OpenBLAS. */
    @Name("gptfast::blas_thread_count")
    public static native int blasThreadCount();

    /** Bytes of checkpoint read by loads on the watching thread (see engine_api.h). */
    @Namespace("gptfast")
    public static class LoadProgress extends Pointer {
        static { load(); }
        public LoadProgress() { allocate(); }
        private native void allocate();
        public native void watch();
        public native void unwatch();
        public native long done();
        public native long total();
    }

    /** Kernels chosen for this CPU, libtorch's parallel settings, CUDA devices (see bench_api.h). */
    @Name("gptfast::runtime_report")
    public static native @StdString String runtimeReport();

    /** SentencePiece processor over UTF-8 byte buffers (see tokenizer_api.h). */
    @Namespace("gptfast")
    public static class SentencePieceTokenizer extends Pointer {
        static { load(); }
        public SentencePieceTokenizer(String modelPath) { allocate(modelPath); }
        private native void allocate(@StdString String modelPath);

        public native int vocab_size();
        public native int bos_id();
        public native int eos_id();
        public native int encode(@Cast("const char*") byte[] utf8, int nBytes, int[] ids, int capacity);
        public native int decode(@Const int[] ids, int nIds, @Cast("char*") byte[] utf8, int capacity);
    }
}
