// The engine as Java sees it: a torch-free header that JavaCPP binds. Everything libtorch lives
// behind the pimpl, so the JNI glue compiles in seconds and never needs libtorch headers.
// Every method throws std::runtime_error with a message naming the problem (JavaCPP turns it
// into a java.lang.RuntimeException); nothing here aborts the process.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace gptfast {

// Architecture of a GPT-Fast transformer, resolved by the Java side (config file, name table or
// checkpoint header) and checked against the checkpoint's tensor shapes at load time.
struct ModelSpec {
  int dim = 0;
  int n_layer = 0;
  int n_head = 0;
  int n_local_heads = 0;  // KV heads (grouped-query attention)
  int head_dim = 0;
  int intermediate_size = 0;
  int vocab_size = 0;
  int block_size = 0;  // longest context the model supports
  float rope_base = 10000.0f;
  float norm_eps = 1e-5f;
  // Llama 3.1 RoPE scaling; factor 0 means none.
  float rope_scaling_factor = 0.0f;
  float rope_low_freq_factor = 1.0f;
  float rope_high_freq_factor = 4.0f;
  int rope_original_max_position = 8192;
};

// How to pick the next token. Order of processing (as in Hugging Face / vLLM): repetition
// penalty (prompt + generated tokens), presence/frequency penalties (generated tokens),
// suppressed tokens, then temperature, top-k, top-p. temperature 0 = greedy (argmax after the
// penalties).
struct SamplingSpec {
  float temperature = 0.0f;
  int top_k = 0;                    // 0 = whole vocabulary; ties with the k-th logit are kept
  float top_p = 1.0f;               // nucleus: smallest set with probability >= top_p
  float repetition_penalty = 1.0f;  // > 1 discourages tokens already in the context
  float presence_penalty = 0.0f;    // subtracted once from tokens generated so far
  float frequency_penalty = 0.0f;   // subtracted per occurrence in the generated tokens
  int64_t seed = 0;
};

// Throws if a sampling parameter is out of range, with a message naming it. The one check of
// these ranges: sessions run it when a sequence starts, and Java calls it when parameters are
// built, so that a bad request fails before it is queued.
void check_sampling(const SamplingSpec& sampling);

// Throws if the architecture is inconsistent (non-positive sizes, n_head not a multiple of
// n_local_heads, odd head_dim, ...), naming the field. The one check: loading runs it, and Java
// runs it when a config is built.
void check_model(const ModelSpec& model);

// The format of a checkpoint file, by name and magic bytes: "pth" (torch.save zip),
// "safetensors" (a file or an index.json) or "llama2c" (.bin, legacy or "ak42" v1). Throws
// with what was expected if it is none of them.
std::string checkpoint_format(const std::string& path);

// The architecture in a llama2.c checkpoint's header (legacy or v1; RoPE base and norm eps are
// llama2.c's fixed 10000 and 1e-5).
ModelSpec llama2c_model(const std::string& path);

// Throws if a session option is out of range: dtype, device (and whether this build has it),
// threads in [0, 4 x cores], max_seq_len >= 0, slots in [1, 256], prefill_chunk >= 0, speculate_k in
// [1, 64], quantize ("" | "int8" | "int4" | "int4:G", G in 32, 64, 128, 256), tp in [1, 64] and
// 1 unless the device is cpu (whether tp divides the model's sizes is checked by Session, which
// knows the model). The one check of
// these: a Session runs it before reading any weights, and Java runs it when options are built,
// so that bad arguments fail at once.
void check_options(const std::string& dtype, const std::string& device, int threads, int max_seq_len, int slots,
                   int prefill_chunk, int speculate_k, const std::string& quantize, int tp);

// The thread count a session gets for threads = 0: every core, unless a short read-bandwidth
// probe (run once per process) shows all cores together reading memory more slowly than one.
int default_threads();

// Tensor parallelism over several processes or machines, in torchrun's vocabulary: tp ranks in
// all over nnodes processes (tp / nnodes each), which meet through a c10d TCPStore that node 0
// serves at master_addr:master_port. Node 0 calls tp_listen() and then creates Sessions with
// this tp as usual (the first one waits up to timeout_ms for the other nodes to join): its
// ranks are 0 .. tp/nnodes-1, and every model it loads, every pass it runs, is replayed by the
// other nodes. Nodes 1..nnodes-1 call tp_follow(), which returns when node 0 calls
// tp_shutdown() and throws when node 0 goes away. A collective still times out after the
// session's tp timeout; a failing rank on any node fails node 0's step, naming that rank.
// tp_listen returns the port (master_port 0: a free one, chosen by the system).
int tp_listen(const std::string& master_addr, int master_port, int nnodes, int tp, int timeout_ms);
void tp_follow(const std::string& master_addr, int master_port, int nnodes, int node_rank, int tp, int timeout_ms);
void tp_shutdown();

class SessionState;
class QuantizerState;

// How far checkpoint loading has got, for progress bars: bytes of tensor data read so far and the
// bytes expected. Loads report to the LoadProgress their thread watches: call watch() on the
// thread that then constructs a Session (or Quantizer, or calls load_draft) and unwatch() on it
// afterwards (before destroying this); done() and total() may be read from any thread meanwhile.
// Per thread, so concurrent loads on other threads never count here.
class LoadProgress {
 public:
  LoadProgress();
  ~LoadProgress();
  LoadProgress(const LoadProgress&) = delete;
  LoadProgress& operator=(const LoadProgress&) = delete;

  void watch();
  void unwatch();
  int64_t done() const;
  int64_t total() const;

  struct State;

 private:
  std::unique_ptr<State> state_;
};

// Writes a weight-only quantized copy of a checkpoint (any format a Session reads): every Linear
// layer in GPT-Fast's int8 or int4 format (quantize as for Session), embeddings and norms as the
// checkpoint stores them. Step by step, so that a caller can show progress: the constructor reads
// the checkpoint, next() quantizes one layer (call it layers() times), save() writes the file.
class Quantizer {
 public:
  Quantizer(const std::string& checkpoint_path, const std::string& format, const ModelSpec& model,
            const std::string& quantize);
  ~Quantizer();
  Quantizer(const Quantizer&) = delete;
  Quantizer& operator=(const Quantizer&) = delete;

  int layers() const;
  int done() const;
  std::string quantization() const;  // "int8" or "int4:G" (the group made explicit)
  std::string next();                // quantizes the next layer and returns its name
  // Writes a torch.save zip (GPT-Fast's names) to a temporary file beside out_path and renames it
  // once complete, so a failure never leaves a half-written file. Needs every layer done.
  void save(const std::string& out_path);

 private:
  std::unique_ptr<QuantizerState> state_;
};

// One loaded model (and optionally a draft model for speculative decoding) with a static KV cache
// of `slots` independent sequences: the whole engine. Batch is a dimension: one slot is plain
// single-sequence generation, several slots are continuous batching, and each slot may decode
// speculatively or plainly. A sequence is started in a free slot with its prompt; each step()
// then advances every listed slot by what it needs next (a prefill chunk, one decode token, or
// a speculative draft/verify round) through one forward pass of the target model over all of
// them; the next tokens come back per slot. Not thread-safe: one thread drives a session.
class Session {
 public:
  // format: "pth" (GPT-Fast torch.save state dict), "safetensors" (a file or an index.json),
  // "llama2c" (llama2.c .bin, legacy or v1), "random" (seeded random weights, for benchmarks;
  // checkpoint_path is then the seed). dtype: "fp32" or "bf16", of the weights and the KV cache
  // (arithmetic on the CPU is fp32 either way). device: "cpu", "cuda[:N]" with a CUDA libtorch,
  // or "auto" (CUDA where usable, else the CPU, said on stderr).
  // threads: 0 = default_threads(). max_seq_len: KV cache length per slot, 0 means the model's
  // block_size. slots: sequences decoded together, 1..256.
  // prefill_chunk: most prompt tokens a slot feeds per step (0 = the whole prompt at once), so a
  // long prompt joining a running batch does not stall the other sequences. quantize: "" keeps
  // the checkpoint's weights (dense, or int8/int4 as a quantized checkpoint stores them);
  // "int8", "int4" (group 128) or "int4:G" quantizes a dense checkpoint's Linear layers as it
  // loads, in GPT-Fast's formats (the same as `gptfast quantize` writes). tp: tensor-parallel
  // ranks (1 = none): the model is split over tp native threads in this process, each holding
  // its shard of the weights and KV cache, joined by libtorch's c10d Gloo process group (two
  // all-reduces per layer); threads then counts intra-op threads per rank. A model whose heads,
  // KV heads or FFN width tp does not divide is refused, naming the sizes. The draft model
  // (load_draft) is sharded the same way.
  Session(const std::string& checkpoint_path, const std::string& format, const ModelSpec& model,
          const std::string& dtype, const std::string& device, int threads, int max_seq_len, int slots,
          int prefill_chunk, const std::string& quantize, int tp);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Loads a draft model (same dtype, device, slots and cache length; same vocabulary) so that
  // sequences can decode speculatively with up to max_speculate_k (1..64) draft tokens per round;
  // quantize as for the constructor, for the draft's own weights.
  void load_draft(const std::string& checkpoint_path, const std::string& format, const ModelSpec& model,
                  int max_speculate_k, const std::string& quantize);

  // Starts a sequence in a free slot: sampling parameters and seed, speculate_k (0 = plain
  // decoding; 1..max_speculate_k = speculative, which needs a draft and no penalties), and the
  // prompt, which the following steps prefill. Clears the slot's suppressed tokens.
  // reuse_cache: the slot's KV caches keep what its last sequence left in them (released, not
  // overwritten since), and the steps prefill only the prompt after cached_prefix(slot, ...)
  // tokens (position() says how many were kept). The kept keys and values are those computed when
  // the tokens were first run, by the same arithmetic, but a token the last sequence generated
  // was run alone (decode kernels) where a prefill runs it with others: its sums may round
  // differently, and so may the tokens that follow.
  void start(int slot, const SamplingSpec& sampling, int speculate_k, const int32_t* prompt, int n_tokens,
             bool reuse_cache = false);
  // Leading prompt tokens whose keys and values the free slot still holds from its last sequence
  // (the longest common prefix), at most n_tokens - 2: the last two prompt tokens always run, so
  // that the pass giving the first logits is a several-token pass like a whole prefill. 0 for a
  // slot that is busy or was never used.
  int cached_prefix(int slot, const int32_t* prompt, int n_tokens) const;
  // Tokens the slot may not sample until the next call (n = 0 clears), e.g. stop tokens before a
  // minimum number of new tokens.
  void suppress_tokens(int slot, const int32_t* ids, int n);
  // Advances n distinct active slots by one step each. Writes slot slots[i]'s new tokens to
  // out[i*stride ..] and their number to counts[i]: 0 while the slot's prompt is still being
  // prefilled, 1 for a plain step, 1..k+1 for a speculative round. stride >= max_tokens_per_step().
  void step(const int32_t* slots, int n, int32_t* out, int stride, int32_t* counts);
  // Frees a slot for the next sequence (any time, e.g. when its client went away).
  void release(int slot);
  // Runs the prompt through a free slot (then frees it again) and writes the fp32 logits of
  // every position to out[n_tokens * vocab].
  void prompt_logits(const int32_t* tokens, int n_tokens, float* out);

  int slots() const;
  int max_seq_len() const;  // cache length per slot
  int vocab_size() const;
  int max_speculate_k() const;      // 0 without a draft
  int max_tokens_per_step() const;  // most tokens one step returns for a slot
  // Bytes of the target's Linear weights (with scales), all of which one decode step reads: the
  // numerator of the memory roofline.
  int64_t weight_bytes() const;
  int tensor_parallel() const;       // tp ranks
  // Where the target model runs (rank 0 under TP), "auto" resolved: "cpu", "cuda" or "cuda:N".
  std::string device() const;
  // All-reduces the target model has run so far and their total wall time in nanoseconds, as
  // rank 0 saw them (0 without TP): bench divides them by the tokens generated.
  int64_t all_reduces() const;
  int64_t all_reduce_nanos() const;
  // Wall time of every model forward pass (target and draft) so far, in nanoseconds: the engine
  // step without sampling, step planning, JNI or Java, which the end-to-end overhead is measured
  // against (GenerationStats, bench).
  int64_t forward_nanos() const;
  // Test hook: rank `rank` of the target fails at its n-th all-reduce from now (n >= 1), as a
  // rank crashing mid-generation would, and every rank's collective timeout becomes timeout_ms
  // (so that the test is quick). The step that hits it throws, naming the rank, after at most
  // that timeout; every later step throws that the session must be recreated.
  void fail_rank_for_test(int rank, int n, int timeout_ms);
  // Why this session refuses every further step (its tensor-parallel group failed: it must be
  // recreated), or "" while it works.
  std::string broken() const;
  int position(int slot) const;     // tokens in the slot's cache
  // Speculative statistics of the slot's current (or last) sequence.
  int64_t rounds(int slot) const;    // verify passes
  int64_t proposed(int slot) const;  // draft tokens proposed
  int64_t accepted(int slot) const;  // draft tokens accepted
  std::string describe() const;

 private:
  std::unique_ptr<SessionState> state_;
};

}  // namespace gptfast
