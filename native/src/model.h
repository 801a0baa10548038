// One loaded model on one device: the transformer with its KV cache of N slots and, on CPU, the
// fused step, behind a single forward entry point. Like GPT-Fast's model(x, input_pos): a
// prefill chunk, one decode token and a speculative verify pass are all the same call, and
// batch is a dimension: any set of slots, any number of tokens each.
#pragma once

#include <ATen/ATen.h>

#include <chrono>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cuda/device_decode.h"
#include "decode_step.h"
#include "dist/cluster.h"
#include "dist/communicator.h"
#include "dist/rank_team.h"
#include "transformer.h"

namespace gptfast {

struct RuntimeSpec {
  std::string dtype, device;
  int threads = 0, max_seq_len = 0;
  std::string quantize;  // --quantize: "" or parse_quantize()'s values
  int tp = 1;            // tensor-parallel ranks in all (threads, over the nodes of a Cluster), 1 = none
  // How long a rank waits for the others in an all-reduce before the generation fails.
  std::chrono::milliseconds tp_timeout{30000};
  // A speculative draft: on a GPU its decoder holds no sampling state (the target's state of each
  // sequence draws the proposals: Model::speculate).
  bool draft = false;
};

// n tokens of the sequence in cache slot `slot`, at positions start..start+n-1 (the slot holds
// its keys/values before start). The fp32 logits of the last n_logits positions (0..n) are
// written to logits[n_logits * vocab], unless `token` is set (n_logits 1, device sampling, see
// Model::start_sampling): then the last position is sampled on the device with the slot's
// sampling state and only the id comes back, to *token.
struct Segment {
  int32_t slot = 0;
  const int32_t* tokens = nullptr;
  int32_t n = 0;
  int64_t start = 0;
  int32_t n_logits = 0;
  float* logits = nullptr;
  int32_t* token = nullptr;
};

// Checks of single options, shared by check_options() and the constructors.
at::TensorOptions tensor_options(const std::string& dtype, const std::string& device);
int checked_slots(int slots);
int checked_prefill_chunk(int prefill_chunk);
int checked_speculate_k(int k);
int checked_tp(int tp);

// The device of each of a node's `local_ranks` tensor-parallel ranks (tp in all, over every node)
// for --device `device`: all on the CPU for "cpu"; for "cuda", local rank i on cuda:i. Refused,
// naming the sizes: CUDA ranks in a build without CUDA (no NCCL), one GPU named for several
// ranks ("cuda:N"), more ranks on the node than `visible_gpus`. Pure, so tests can pass any
// machine; Model passes this one's (at::getNumGPUs(), cuda_build()).
std::vector<at::Device> rank_devices(const std::string& device, int tp, int local_ranks, int visible_gpus,
                                     bool cuda_build);
// Whether this libgptfast was built with CUDA (and so NCCL for CUDA ranks).
bool cuda_build();

// Under tensor parallelism (runtime.tp > 1) a Model is tp ranks in this process: each a native
// thread with its own shard of the weights and KV cache (a Transformer built with a Communicator)
// and its own fused step (CPU) or device decoder (CUDA: rank i on cuda:i, see rank_devices),
// joined by a Gloo (CPU) or NCCL (CUDA) group over an in-process store. forward() runs the
// same segments on every rank (the tokens are shared memory, so nothing is broadcast); the
// ranks' residual streams agree after every all-reduce, and rank 0 alone runs the output head
// and writes the logits, which the session samples once. With tp = 1 there is one rank, run on
// the calling thread, and no collective.
//
// When this process joined a multi-process group (Cluster::current()), a Model with tp > 1
// spans it: this process holds its node's ranks only. On node 0 the constructor, forward(),
// fail_rank_after() and the destructor first send the same request to the other nodes, whose
// follower loop (dist/follower.h) builds and runs the same Model there.
class Model {
 public:
  // Most tokens one fused call takes; longer runs of fused segments are split into such groups.
  static constexpr int64_t kFusedCapacity = 64;
  // fp32 segments longer than this (long prompt chunks) go through ATen's GEMMs instead of the
  // fused step; bf16 and quantized ones never do (ATen would dequantize whole matrices). Measured with the batched kernel (2 vCPU EPYC, 1 thread):
  // 32-token prompts prefill 3x faster fused on stories260K (26.7k vs 8.8k tok/s) and 1.3x on a
  // 134M model (311 vs 239), but a 200-token one 2x slower fused there (222 vs 437); ATen's bf16
  // GEMM is slow on CPUs without bf16 instructions (200 tokens: 42 tok/s vs 143 fused).
  static constexpr int64_t kMaxFusedSegmentFp32 = 64;

  // follower_model: on a follower node, the id node 0 gave this model (-1 elsewhere).
  Model(const std::string& path, const std::string& format, const ModelSpec& spec, const RuntimeSpec& runtime,
        int slots, int64_t follower_model = -1);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // Runs every segment; slots must be distinct within one call. Allocation-free on the fused path.
  void forward(const Segment* segments, int n);

  void check_token(int32_t token) const;
  // Sampling on the device (a CUDA device unless GPTFAST_DEVICE_SAMPLING=0; DeviceDecode): whether
  // it is on, and the slot's sampling state, set when its sequence starts and when its
  // suppressed ids change. Segments with `token` set are then sampled with it.
  bool device_sampling() const { return ranks_[0]->device && ranks_[0]->device->device_sampling(); }
  // "device", or "cpu (<why>)".
  std::string sampling_mode() const;
  void start_sampling(int slot, const SamplingSpec& spec, const int32_t* prompt, int n);
  void suppress_sampling(int slot, const int32_t* ids, int n);
  // A speculative round of the sequence in `slot` entirely on the device (DeviceDecode::speculate;
  // device_sampling() only): `draft` (loaded with RuntimeSpec::draft, same device) catches up on
  // draft_feed and proposes k ids, this model verifies target_feed plus the proposals, and the
  // accept/reject rule runs on the device. The feeds' slot must be `slot`; their n_logits and
  // outputs are unused. Writes the emitted ids to out, returns how many; *kept: proposals kept.
  int speculate(Model& draft, const Segment& draft_feed, const Segment& target_feed, int k, int32_t* out,
                int32_t* kept);
  int64_t max_seq_len() const { return rank0().max_seq_len(); }
  int vocab() const { return spec_.vocab_size; }
  int slots() const { return slots_; }
  const ModelSpec& spec() const { return spec_; }  // the whole model's sizes
  const RuntimeSpec& runtime() const { return runtime_; }
  // Where rank 0 runs, "auto" resolved: "cpu", "cuda" or "cuda:N".
  std::string device() const { return devices_[0].str(); }
  bool fused() const { return ranks_[0]->fused.has_value(); }
  // Linear weight bytes one decode step reads, over this process's ranks (each its shards, rank 0
  // the head): all ranks unless the model spans several processes.
  int64_t weight_bytes() const;
  int tp() const { return runtime_.tp; }  // all ranks, over every node
  // All-reduces so far and their total time (rank 0's view), for bench.
  int64_t all_reduces() const;
  int64_t all_reduce_nanos() const;
  // Test hook: rank `rank`'s n-th all-reduce from now on throws (see Communicator::fail_after),
  // and every rank's collective timeout becomes `timeout`, so that a test ends quickly.
  void fail_rank_after(int rank, int64_t n, std::chrono::milliseconds timeout);
  // Bytes local rank `r` (of this process's) copied out of the mapped checkpoint while loading:
  // its shards and the replicated tensors (tests check it is about 1/tp of the Linear layers).
  int64_t copied_from_checkpoint(int r) const { return ranks_.at(r)->copied_from_checkpoint; }
  std::string describe() const;
  // Why this model refuses further work (its tensor-parallel group failed), or "".
  const std::string& broken() const { return broken_; }

 private:
  struct Rank {
    std::unique_ptr<Communicator> comm;  // null without TP
    std::unique_ptr<Transformer> transformer;
    std::optional<FusedDecodeStep> fused;
    std::unique_ptr<DeviceDecode> device;  // on a CUDA device: decode tokens of all slots at once
    // Device decode: one row per decode segment, sized slots_ once (per rank: ranks run at once).
    std::vector<int32_t> device_tokens, device_slots;
    std::vector<int64_t> device_positions;
    std::vector<float*> device_logits;
    std::vector<int32_t*> device_sampled;  // ids sampled on the device (rank 0), or null
    int64_t copied_from_checkpoint = 0;    // bytes this rank copied out of the checkpoint's mapping
    // One fused group, sized kFusedCapacity once: token, slot, position, and which rows need logits.
    std::vector<int32_t> group_tokens, group_slots, group_logit_rows;
    std::vector<int64_t> group_positions;
    std::vector<float*> group_logit_out;
  };
  const Transformer& rank0() const { return *ranks_[0]->transformer; }
  void forward_rank(Rank& rank, bool logits, const Segment* segments, int n);
  void forward_fused(Rank& rank, bool logits, const Segment* segments, int n);
  void forward_aten(Rank& rank, bool logits, const Segment& segment);
  void forward_device(Rank& rank, bool logits, const Segment* segments, int n);
  void build(const std::string& path, const std::string& format, const ModelSpec& spec);

  RuntimeSpec runtime_;
  // Checked before the checkpoint is read (members initialise in this order), so a bad
  // option fails at once rather than after loading the weights.
  int slots_;
  std::vector<at::Device> devices_;  // of this process's ranks
  at::TensorOptions options_;
  int64_t cache_length_;
  ModelSpec spec_;
  std::vector<std::unique_ptr<Rank>> ranks_;
  std::optional<RankTeam> team_;  // tp > 1: this process's ranks
  std::shared_ptr<Cluster> cluster_;  // tp > 1 over several processes
  int64_t cluster_model_ = -1;        // this model's id there
  int first_rank_ = 0;                // of this process's ranks
  // Set when a rank failed: its group may be mid-collective, so the model refuses further work.
  std::string broken_;
  int64_t max_fused_segment_ = 0;  // 0 without the fused step
};

}  // namespace gptfast
