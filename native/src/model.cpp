#include "model.h"

#include "dist/follower.h"
#include "env_switch.h"
#include "host_memory.h"
#include "load_progress.h"
#include "mapped_file.h"

#include <ATen/Parallel.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <algorithm>
#include <iomanip>
#include <mutex>
#include <thread>
#include <sstream>

namespace gptfast {

namespace {

at::ScalarType parse_dtype(const std::string& dtype) {
  if (dtype == "fp32" || dtype == "float32") return at::kFloat;
  if (dtype == "bf16" || dtype == "bfloat16") return at::kBFloat16;
  throw Error("unknown dtype '" + dtype + "' (expected fp32 or bf16)");
}

constexpr const char* kNoCuda =
    "the loaded libtorch has no CUDA support, or no NVIDIA GPU and driver were found (`gptfast doctor` shows which)";

// "auto" is CUDA where this libtorch has it and sees a GPU, else the CPU; other names pass
// unchanged. *why (when given) is set to why auto chose the CPU.
std::string resolve_device(const std::string& device, std::string* why = nullptr) {
  if (device != "auto") return device;
  if (at::hasCUDA() && at::getNumGPUs() > 0) return "cuda";
  if (why) *why = kNoCuda;
  return "cpu";
}

// A device name as libtorch's, "auto" resolved (the one place device names are parsed).
at::Device device_of(const std::string& name) {
  try {
    return at::Device(resolve_device(name));
  } catch (const c10::Error&) {
    throw Error("unknown device '" + name + "' (expected cpu, cuda[:N] or auto)");
  }
}

at::Device parse_device(const std::string& device) {
  const at::Device d = device_of(device);
  if (d.is_cuda() && !at::hasCUDA()) {
    throw Error("device '" + device + "' requested, but CUDA is not usable here: " + kNoCuda);
  }
  if (d.is_cuda() && d.has_index() && int64_t(d.index()) >= int64_t(at::getNumGPUs())) {
    throw Error("device '" + device + "' requested, but there are only " + std::to_string(at::getNumGPUs()) +
                " CUDA device(s)");
  }
  if (!d.is_cpu() && !d.is_cuda()) throw Error("unsupported device '" + device + "'");
  return d;
}

int64_t cache_length(const ModelSpec& spec, const RuntimeSpec& runtime) {
  const int64_t len = runtime.max_seq_len == 0 ? spec.block_size : runtime.max_seq_len;
  if (len > spec.block_size) {
    throw Error("max_seq_len " + std::to_string(len) + " exceeds the model's block_size " +
                std::to_string(spec.block_size));
  }
  return len;
}

// Gloo announces every group it forms on stdout ("[Gloo] Rank 0 is connected to 1 peer ranks
// ..."), which would corrupt `generate --json` and anything else read from stdout; while a group
// forms (during loading, before any output), stdout goes to stderr. File descriptor 1 belongs to
// the process and several models may form groups at once (a server's workers): the first scope
// in saves and redirects it, the last one out restores it.
class StdoutToStderr {
 public:
  StdoutToStderr() {
    std::lock_guard<std::mutex> lock(mutex());
    if (state().depth++ > 0) return;
    flush();
    state().saved = dup(STDOUT_FILENO);
    if (state().saved >= 0) dup2(STDERR_FILENO, STDOUT_FILENO);
  }
  ~StdoutToStderr() {
    std::lock_guard<std::mutex> lock(mutex());
    if (--state().depth > 0 || state().saved < 0) return;
    flush();
    dup2(state().saved, STDOUT_FILENO);
    close(state().saved);
    state().saved = -1;
  }
  StdoutToStderr(const StdoutToStderr&) = delete;
  StdoutToStderr& operator=(const StdoutToStderr&) = delete;

 private:
  struct State {
    int depth = 0;
    int saved = -1;
  };
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static State& state() {  // guarded by mutex()
    static State s;
    return s;
  }
  static void flush() {
    std::cout.flush();
    std::fflush(stdout);
  }
};

bool use_fused(const Transformer& model) {
  // GPTFAST_FUSED_DECODE=0 forces the generic ATen path.
  return FusedDecodeStep::supports(model) && switched_on("GPTFAST_FUSED_DECODE");
}

}  // namespace

StateDict load_checkpoint(const std::string& path, const std::string& format, const ModelSpec& spec,
                          const at::TensorOptions& options) {
  if (format == "pth") return load_pth(path);
  if (format == "safetensors") return load_safetensors(path, spec);
  if (format == "llama2c") return load_llama2c(path, spec);
  if (format == "random") return random_weights(spec, path, options);
  throw Error("unknown checkpoint format '" + format + "' (expected pth, safetensors or llama2c)");
}

at::TensorOptions tensor_options(const std::string& dtype, const std::string& device) {
  return at::TensorOptions().dtype(parse_dtype(dtype)).device(parse_device(device));
}

int checked_slots(int slots) {
  if (slots < 1 || slots > 256) throw Error("batch size (slots) must be in [1, 256], got " + std::to_string(slots));
  return slots;
}

int checked_prefill_chunk(int prefill_chunk) {
  if (prefill_chunk < 0) {
    throw Error("prefill_chunk must be >= 0 (0 = the whole prompt at once), got " + std::to_string(prefill_chunk));
  }
  return prefill_chunk;
}

int checked_tp(int tp) {
  if (tp < 1 || tp > 64) throw Error("tp (tensor-parallel ranks) must be in [1, 64], got " + std::to_string(tp));
  return tp;
}

std::vector<at::Device> rank_devices(const std::string& device, int tp, int local_ranks, int visible_gpus,
                                     bool cuda_build) {
  const at::Device d = device_of(device);
  if (tp == 1 || d.is_cpu()) return std::vector<at::Device>(size_t(local_ranks), d);
  const std::string sizes = "tp " + std::to_string(tp) + " puts " + std::to_string(local_ranks) + " rank(s) on this node";
  if (!d.is_cuda()) throw Error("unsupported device '" + device + "' for tensor parallelism (expected cpu or cuda)");
  if (!cuda_build) {
    throw Error("tensor parallelism on CUDA (" + sizes + ", device '" + device +
                "') needs NCCL, which only the CUDA build of libgptfast has; this one was built without CUDA");
  }
  if (d.has_index()) {
    throw Error("device '" + device + "' names one GPU, but " + sizes +
                ", each on its own GPU: use --device cuda (local rank i on cuda:i)");
  }
  if (local_ranks > visible_gpus) {
    throw Error(sizes + ", but only " + std::to_string(visible_gpus) +
                " CUDA device(s) are visible (local rank i runs on cuda:i; see CUDA_VISIBLE_DEVICES)");
  }
  std::vector<at::Device> out;
  for (int r = 0; r < local_ranks; ++r) out.emplace_back(at::kCUDA, c10::DeviceIndex(r));
  return out;
}

bool cuda_build() {
#if GPTFAST_WITH_CUDA
  return true;
#else
  return false;
#endif
}

namespace {

// This machine's plan for `runtime`: the ranks of this process (its node's, in a Cluster).
// count_gpus = false leaves out the GPU count, for checks made before this process may have
// joined its Cluster (options are checked before --nnodes is known to the engine), when its
// number of local ranks is not known yet; a Model, which knows, always counts.
std::vector<at::Device> plan_devices(const RuntimeSpec& runtime, bool count_gpus) {
  const int tp = checked_tp(runtime.tp);
  const std::shared_ptr<Cluster> cluster = tp > 1 ? Cluster::current() : nullptr;
  const int local = cluster && cluster->spec().world == tp ? cluster->local_ranks() : tp;
  const std::string device = resolve_device(runtime.device);
  const bool cuda = device.rfind("cuda", 0) == 0;  // ask for the GPU count only then
  const int gpus = !count_gpus ? local : cuda && at::hasCUDA() ? int(at::getNumGPUs()) : 0;
  return rank_devices(device, tp, local, gpus, cuda_build());
}

// The runtime a model loads with: "auto" resolved, and said on stderr when that is the CPU, so
// that asking for a GPU never ends on the CPU silently.
RuntimeSpec with_device_resolved(RuntimeSpec runtime) {
  std::string why;
  runtime.device = resolve_device(runtime.device, &why);
  if (!why.empty()) std::fprintf(stderr, "gptfast4j: device auto: running on the CPU: %s\n", why.c_str());
  return runtime;
}

}  // namespace

int checked_speculate_k(int k) {
  if (k < 1 || k > 64) throw Error("speculate_k must be in [1, 64], got " + std::to_string(k));
  return k;
}

void check_options(const std::string& dtype, const std::string& device, int threads, int max_seq_len, int slots,
                   int prefill_chunk, int speculate_k, const std::string& quantize, int tp) {
  // The TP plan first: "a CPU build has no NCCL" says more than "CUDA is not usable here".
  RuntimeSpec runtime;
  runtime.dtype = dtype;
  runtime.device = device;
  runtime.tp = tp;
  plan_devices(runtime, /*count_gpus=*/Cluster::current() != nullptr);
  tensor_options(dtype, device);
  parse_quantize(quantize);
  if (threads < 0) throw Error("threads must be >= 0 (0 = the measured default), got " + std::to_string(threads));
  // More intra-op threads than this only oversubscribes the cores.
  const int max_threads = 4 * int(std::max(1u, std::thread::hardware_concurrency()));
  if (threads > max_threads) {
    throw Error("threads must be at most " + std::to_string(max_threads) + " (4 x the " +
                std::to_string(max_threads / 4) + " available processors), got " + std::to_string(threads));
  }
  if (max_seq_len < 0) throw Error("max_seq_len must be >= 0 (0 = the model's block_size), got " + std::to_string(max_seq_len));
  checked_slots(slots);
  checked_prefill_chunk(prefill_chunk);
  checked_speculate_k(speculate_k);
}

Model::Model(const std::string& path, const std::string& format, const ModelSpec& spec, const RuntimeSpec& runtime,
             int slots, int64_t follower_model)
    : runtime_(with_device_resolved(runtime)),
      slots_(checked_slots(slots)),
      devices_(plan_devices(runtime_, /*count_gpus=*/true)),
      options_(tensor_options(runtime_.dtype, runtime_.device)),
      cache_length_(cache_length(spec, runtime_)),
      spec_((shard_spec(spec, checked_tp(runtime_.tp)), spec)) {  // sizes that do not divide fail before loading
  const int tp = runtime.tp;
  if (tp > 1) cluster_ = Cluster::current();
  if (!cluster_) {
    build(path, format, spec);
    return;
  }
  if (tp != cluster_->spec().world) {
    throw Error("tp " + std::to_string(tp) + " differs from the " + std::to_string(cluster_->spec().world) +
                " ranks of this process's tensor-parallel group (tp counts the ranks of all nodes)");
  }
  first_rank_ = cluster_->first_rank();
  if (!cluster_->leader()) {
    cluster_model_ = follower_model;
    build(path, format, spec);
    return;
  }
  cluster_->await_nodes();
  cluster_model_ = cluster_->next_model_id();
  cluster_->send(create_request(cluster_model_, path, format, spec, runtime, slots));
  try {
    build(path, format, spec);
  } catch (...) {
    cluster_->send(destroy_request(cluster_model_));  // followers drop their half-built copy
    throw;
  }
}

Model::~Model() {
  if (!cluster_ || !cluster_->leader()) return;
  try {
    cluster_->send(destroy_request(cluster_model_));
  } catch (const std::exception&) {
    // The followers are gone already: nothing to tell.
  }
}

void Model::build(const std::string& path, const std::string& format, const ModelSpec& spec) {
  const int tp = runtime_.tp, local = cluster_ ? cluster_->local_ranks() : tp, slots = slots_;
  // The loader's progress counts the mapped bytes as ranks copy them; what no rank here copies
  // (other nodes' shards) is counted when this scope ends.
  struct Settle {
    ~Settle() { load_progress_settle(); }
  } settle;
  const QuantSpec quant = parse_quantize(runtime_.quantize);
  // Before anything is drawn or copied on the host, the sizes are checked against the memory
  // there: a load that cannot fit fails naming them instead of being OOM-killed half-way.
  auto check_memory = [&](const StateDict& w, bool random) {
    const at::ScalarType dtype = c10::typeMetaToScalarType(options_.dtype());
    const HostWeights plan = plan_host_weights(w, quant, dtype);
    const int64_t per_rank = (plan.resident - plan.replicated) / tp + plan.replicated;  // layers are split
    const int64_t cache =
        KVCache::planned_bytes(spec.n_layer, slots, spec.n_local_heads / tp, cache_length_, spec.head_dim, dtype);
    // Random weights are drawn whole (in fp32, one tensor at a time, then rounded); the last rank
    // frees each as it takes it, so it adds no copy of its own.
    const int64_t kept = random ? plan.source + (local - 1) * per_rank : local * per_rank;
    const int64_t transient = random ? std::max(plan.transient, plan.largest * int64_t(sizeof(float)) * 2)
                                     : plan.transient;
    const std::string drawn = !random                             ? ""
                              : plan.source == local * per_rank ? ", drawn at random first"
                                                                : ", drawn at random first as " + gib(plan.source);
    check_host_memory(kept + local * cache + transient,
                      "the weights (" + gib(local * per_rank) + drawn + ") and KV cache (" + gib(local * cache) +
                          " for " + std::to_string(slots) + " x " + std::to_string(cache_length_) + " positions)",
                      "quantize (--quantize int8 or int4), use bf16, lower --max-seq-len or --batch-size, or free memory");
  };
  const bool on_host = options_.device().is_cpu();
  StateDict weights;
  try {
    if (on_host && format == "random") check_memory(random_weights(spec, path, options_.device(at::kMeta)), true);
    weights = load_checkpoint(path, format, spec, options_);
    if (on_host && format != "random") check_memory(weights, false);
  } catch (const std::exception& e) {
    if (cluster_ && !cluster_->leader()) cluster_->loaded(cluster_model_, e.what());
    throw;
  }
  // Node 0 waits for every node to have loaded: joining the group first would time out on a slow load.
  if (cluster_) cluster_->loaded(cluster_model_);
  for (int r = 0; r < local; ++r) ranks_.push_back(std::make_unique<Rank>());
  if (tp > 1) {
    team_.emplace(local, first_rank_);
    auto store = cluster_ ? cluster_->group_store(cluster_model_) : in_process_store();
    // Each rank joins from its own thread: a Gloo group forms only when all ranks connect at once
    // (NCCL's on the first all-reduce, which the rank threads also enter at once).
    StdoutToStderr quiet;
    team_->run([&](int r) {
      ranks_[r]->comm = std::make_unique<Communicator>(store, first_rank_ + r, tp, runtime_.tp_timeout, devices_[r]);
    });
  }
  // On a GPU the cache has one slot more than the session uses: DeviceDecode's padding rows.
  const bool device_decode = options_.device().is_cuda();
  // TP ranks on GPUs decode eagerly, never in a captured CUDA graph: each all-reduce waits on the
  // host for NCCL with a timeout (so that a failed rank ends the pass instead of hanging it), and
  // a host wait, like the lazy creation of NCCL's communicator on the first all-reduce, cannot be
  // captured. Capturing would also need NCCL on the capture stream with no host-side timeout at all.
  const std::string eager_reason = tp > 1 ? "tensor parallelism: NCCL all-reduces run eagerly" : "";
  for (int r = 0; r < local; ++r) {
    Rank& rank = *ranks_[r];
    const at::TensorOptions options = options_.device(devices_[r]);
    // A shallow copy (tensors share storage, mostly views of the mapped checkpoint); each rank
    // copies out only its shards and the replicated tensors. The last rank takes the dict itself,
    // so the mapping is released when it is done with it.
    const int64_t copied = mapped_bytes_copied();
    rank.transformer = std::make_unique<Transformer>(spec, r + 1 == local ? std::move(weights) : weights, options,
                                                     quant, cache_length_, slots + (device_decode ? 1 : 0),
                                                     rank.comm.get());
    rank.copied_from_checkpoint = mapped_bytes_copied() - copied;
    if (device_decode) {
      rank.device = std::make_unique<DeviceDecode>(
          *rank.transformer, slots, /*scratch_slot=*/slots, eager_reason,
          runtime_.draft ? "a draft: the target's sampling state of each sequence draws its proposals" : "");
      rank.device_tokens.resize(slots);
      rank.device_slots.resize(slots);
      rank.device_positions.resize(slots);
      rank.device_logits.resize(slots);
      rank.device_sampled.resize(slots);
    }
  }
  if (use_fused(rank0())) {
    const bool aten_prefill = options_.dtype() == at::kFloat && rank0().quantization().empty();
    max_fused_segment_ = aten_prefill ? kMaxFusedSegmentFp32 : INT32_MAX;
    for (auto& rank : ranks_) {
      // threads per rank: each rank's fused step has its own persistent team
      rank->fused.emplace(*rank->transformer, kFusedCapacity, runtime_.threads > 0 ? runtime_.threads : at::get_num_threads());
      rank->group_tokens.resize(kFusedCapacity);
      rank->group_slots.resize(kFusedCapacity);
      rank->group_logit_rows.resize(kFusedCapacity);
      rank->group_positions.resize(kFusedCapacity);
      rank->group_logit_out.resize(kFusedCapacity);
    }
  }
}

void Model::check_token(int32_t token) const {
  if (token < 0 || token >= vocab()) {
    throw Error("token id " + std::to_string(token) + " is outside the vocabulary [0, " + std::to_string(vocab()) +
                ")");
  }
}

std::string Model::sampling_mode() const {
  return ranks_[0]->device ? ranks_[0]->device->sampling_mode() : "cpu (not a CUDA device)";
}

void Model::start_sampling(int slot, const SamplingSpec& spec, const int32_t* prompt, int n) {
  if (!device_sampling()) throw Error("this model samples on the CPU");
  ranks_[0]->device->start_sampling(slot, spec, prompt, n);
}

void Model::suppress_sampling(int slot, const int32_t* ids, int n) {
  if (!device_sampling()) throw Error("this model samples on the CPU");
  ranks_[0]->device->suppress(slot, ids, n);
}

int Model::speculate(Model& draft, const Segment& draft_feed, const Segment& target_feed, int k, int32_t* out,
                     int32_t* kept) {
  if (!device_sampling() || !draft.ranks_[0]->device) throw Error("speculation on the device needs device sampling");
  if (draft_feed.slot != target_feed.slot || target_feed.slot < 0 || target_feed.slot >= slots_) {
    throw Error("slot " + std::to_string(target_feed.slot) + " is outside [0, " + std::to_string(slots_) + ")");
  }
  if (!broken_.empty()) throw Error(broken_ + "; close this session and create a new one");
  Rank& rank = *ranks_[0];
  Rank& drafter = *draft.ranks_[0];
  return rank.device->speculate(*drafter.transformer, *drafter.device, target_feed.slot, draft_feed.tokens,
                                draft_feed.n, draft_feed.start, target_feed.tokens, target_feed.n, target_feed.start,
                                k, out, kept);
}

void Model::forward(const Segment* segments, int n) {
  for (int i = 0; i < n; ++i) {  // the one place positions are checked against the cache
    const Segment& s = segments[i];
    if (s.slot < 0 || s.slot >= slots_) throw Error("slot " + std::to_string(s.slot) + " is outside [0, " + std::to_string(slots_) + ")");
    if (s.n < 1 || s.start < 0 || s.start + s.n > max_seq_len()) {
      throw Error("context is full (" + std::to_string(max_seq_len()) + " tokens)");
    }
    if (s.n_logits < 0 || s.n_logits > s.n) throw Error("n_logits must be in [0, n]");
    if (s.token && (s.n_logits != 1 || !device_sampling())) {
      throw Error("a device-sampled segment needs n_logits 1 and device sampling");
    }
  }
  if (!broken_.empty()) throw Error(broken_ + "; close this session and create a new one");
  if (!team_) {
    forward_rank(*ranks_[0], true, segments, n);
    return;
  }
  if (cluster_ && cluster_->leader()) cluster_->send(forward_request(cluster_model_, segments, n));
  try {
    team_->run([&](int r) { forward_rank(*ranks_[r], first_rank_ + r == 0, segments, n); });
  } catch (const RankFailure& e) {
    std::string what = e.what();
    if (cluster_ && !cluster_->leader()) {
      cluster_->report_failure(cluster_model_, what, e.collective);
    } else if (cluster_ && e.collective) {
      // Node 0's ranks only saw the collective break: a follower's report names the cause.
      what = cluster_->remote_failure(cluster_model_, what);
    }
    // The other ranks may have left a collective half done: nothing guarantees the next one
    // pairs up, and the KV caches may disagree. Refuse rather than compute garbage.
    broken_ = "this session's tensor-parallel group failed earlier (" + what + ")";
    throw Error(what);
  }
}

void Model::forward_rank(Rank& rank, bool logits, const Segment* segments, int n) {
  // Short segments (decode tokens, verify passes, small chunks) share fused passes; long ones
  // (prompt chunks) go through ATen's GEMMs one by one. The two never touch the same slot.
  // Every rank runs the same sequence of passes, so their all-reduces pair up.
  // On a GPU, one-token segments (decode steps of any slots) share one graph replay first; the
  // rest (prompt chunks, verify passes) run eagerly after it.
  if (rank.device) {
    rank.device->within_stream([&] {
      forward_device(rank, logits, segments, n);
      for (int i = 0; i < n; ++i) {
        if (segments[i].n > 1) forward_aten(rank, logits, segments[i]);
      }
    });
    return;
  }
  if (rank.fused) forward_fused(rank, logits, segments, n);
  for (int i = 0; i < n; ++i) {
    if (segments[i].n > max_fused_segment_) forward_aten(rank, logits, segments[i]);
  }
}

void Model::forward_device(Rank& rank, bool logits, const Segment* segments, int n) {
  int64_t rows = 0;
  for (int i = 0; i < n; ++i) {
    const Segment& s = segments[i];
    if (s.n != 1) continue;
    rank.device_tokens[rows] = s.tokens[0];
    rank.device_slots[rows] = s.slot;
    rank.device_positions[rows] = s.start;
    // Only the rank that reports logits writes them (the others' rows are the same numbers).
    rank.device_logits[rows] = logits && s.n_logits == 1 ? s.logits : nullptr;
    rank.device_sampled[rows] = logits && s.n_logits == 1 ? s.token : nullptr;
    ++rows;
  }
  if (rows > 0) {
    rank.device->run(rank.device_tokens.data(), rank.device_slots.data(), rank.device_positions.data(), rows,
                     rank.device_logits.data(), rank.device_sampled.data());
  }
}

void Model::forward_fused(Rank& rank, bool logits, const Segment* segments, int n) {
  int64_t count = 0, outputs = 0;
  const int64_t vocab = this->vocab();
  auto flush = [&] {
    if (count == 0) return;
    const float* out = rank.fused->run(rank.group_tokens.data(), rank.group_slots.data(), rank.group_positions.data(),
                                       count, rank.group_logit_rows.data(), outputs);
    for (int64_t r = 0; r < outputs; ++r) std::copy_n(out + r * vocab, vocab, rank.group_logit_out[r]);
    count = outputs = 0;
  };
  for (int i = 0; i < n; ++i) {
    const Segment& s = segments[i];
    if (s.n > max_fused_segment_) continue;
    for (int32_t t = 0; t < s.n; ++t) {
      if (count == kFusedCapacity) flush();
      rank.group_tokens[count] = s.tokens[t];
      rank.group_slots[count] = s.slot;
      rank.group_positions[count] = s.start + t;
      const int32_t first_logit = s.n - s.n_logits;
      if (logits && t >= first_logit) {  // only the rank that reports logits runs the output head
        rank.group_logit_rows[outputs] = int32_t(count);
        rank.group_logit_out[outputs] = s.logits + int64_t(t - first_logit) * vocab;
        ++outputs;
      }
      ++count;
    }
  }
  flush();
}

void Model::forward_aten(Rank& rank, bool logits, const Segment& s) {
  Transformer& model = *rank.transformer;
  at::Tensor ids = at::from_blob(const_cast<int32_t*>(s.tokens), {1, s.n}, at::kInt)
                       .to(model.options().dtype(at::kLong));
  at::Tensor out = model.forward(ids, s.start, logits ? s.n_logits : 0, s.slot);
  if (!logits || s.n_logits == 0) return;
  if (s.token) {  // a prompt's last position, sampled where the logits are
    *s.token = rank.device->sample(out, s.slot);
    return;
  }
  out = out.cpu().contiguous();
  std::copy_n(out.data_ptr<float>(), out.numel(), s.logits);
}

int64_t Model::weight_bytes() const {
  // Only rank 0 runs the (replicated) output head.
  int64_t bytes = rank0().weight_bytes();
  for (size_t r = 1; r < ranks_.size(); ++r) {
    bytes += ranks_[r]->transformer->weight_bytes() - ranks_[r]->transformer->output().bytes();
  }
  return bytes;
}

int64_t Model::all_reduces() const { return ranks_[0]->comm ? ranks_[0]->comm->all_reduces() : 0; }
int64_t Model::all_reduce_nanos() const { return ranks_[0]->comm ? ranks_[0]->comm->all_reduce_nanos() : 0; }

void Model::fail_rank_after(int rank, int64_t n, std::chrono::milliseconds timeout) {
  if (rank < 0 || rank >= tp() || !ranks_[0]->comm) throw Error("no tensor-parallel rank " + std::to_string(rank));
  for (auto& r : ranks_) r->comm->set_timeout(timeout);
  const int local = rank - first_rank_;
  if (local >= 0 && local < int(ranks_.size())) {
    ranks_[local]->comm->fail_after(ranks_[local]->comm->all_reduces() + n);
  }
  if (cluster_ && cluster_->leader()) cluster_->send(fail_request(cluster_model_, rank, n, timeout));
}

std::string Model::describe() const {
  const ModelSpec& s = spec();
  std::string on_gpus;  // CUDA ranks each have their own GPU
  for (size_t r = 0; tp() > 1 && devices_[0].is_cuda() && r < devices_.size(); ++r) {
    on_gpus += (r == 0 ? " rank_devices=" : ",") + devices_[r].str();
  }
  int64_t kv_bytes = 0;  // every rank's shard of the heads
  for (const auto& r : ranks_) kv_bytes += r->transformer->cache().bytes();
  std::ostringstream out;
  out << "dim=" << s.dim << " n_layer=" << s.n_layer << " n_head=" << s.n_head << " n_local_heads=" << s.n_local_heads
      << " head_dim=" << s.head_dim << " intermediate_size=" << s.intermediate_size << " vocab_size=" << s.vocab_size
      << " cache=" << max_seq_len() << " slots=" << slots_ << " dtype=" << runtime_.dtype
      << " device=" << runtime_.device << on_gpus << " threads=" << at::get_num_threads() << (tp() > 1 ? "/rank" : "")
      << " weights=" << (rank0().quantization().empty() ? runtime_.dtype : rank0().quantization())
      << (rank0().quant_matmul().empty() ? "" : " quant_matmul=" + rank0().quant_matmul())
      << " tp=" << tp() << (cluster_ ? " nnodes=" + std::to_string(cluster_->spec().nnodes) : "")
      << " linear_weight_mib=" << std::fixed << std::setprecision(2) << double(weight_bytes()) / (1 << 20)
      << " kv_cache_mib=" << double(kv_bytes) / (1 << 20)
      << " decode=" << (fused() ? "fused" : ranks_[0]->device ? "device:" + ranks_[0]->device->mode() : "aten");
  if (ranks_[0]->device) out << " sampling=" << ranks_[0]->device->sampling_mode();
  return out.str();
}

}  // namespace gptfast
