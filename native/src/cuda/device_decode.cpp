#include "cuda/device_decode.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <optional>

#include "env_switch.h"
#include "errors.h"
#include "sampler.h"
#include "transformer.h"

#if GPTFAST_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include "cuda/device_sampler.h"
#include "cuda/graph_capture.h"
#endif

namespace gptfast {

struct DeviceDecode::Impl {
  Transformer& model;
  const int64_t max_batch, scratch_slot, vocab;
  std::string eager_reason;  // empty while graphs are used
  std::string cpu_sampling_reason;  // empty while sampling runs on the device
  bool no_sampler = false;          // a draft's decoder: cpu_sampling_reason says whose state it uses
  // pinned int64 [4, max_batch]: tokens, cache slots, positions, sampling slots (sampling_slot()).
  at::Tensor host_in;
  at::Tensor device_in;      // the same on the device: the graphs' static inputs
  at::Tensor host_logits;    // pinned fp32 [max_batch, vocab]
  at::Tensor host_tokens;    // pinned int32 [max_batch]: the sampled ids
#if GPTFAST_WITH_CUDA
  std::unique_ptr<cuda::DeviceSampler> sampler;  // slots: scratch_slot + max_batch
  at::Tensor sample_slots;   // int32 [max_batch] on the device: row 3 of device_in, narrowed
  at::Tensor device_tokens;  // int32 [max_batch] on the device: what the sampling writes
  struct Captured {
    at::cuda::CUDAGraph graph;
    at::Tensor logits;  // [bucket, vocab], allocated in the graph's pool, rewritten by each replay
    at::Tensor sampled_logits;  // fp32 view or copy of logits the captured sampling reads
  };
  std::optional<c10::cuda::CUDAStream> stream;  // a CUDA device only
  at::cuda::MempoolId_t pool{0, 0};
  std::map<int64_t, std::unique_ptr<Captured>> graphs;  // by batch bucket
  // Speculative rounds (speculate()): buffers allocated on the first round, again only for a
  // larger k. Draft and target ids are row 0 and row 1 of `ids`; `result` is the emitted ids
  // (k + 1), their count and the proposals kept, read back in one copy.
  struct Speculation {
    int k = 0;
    at::Tensor host_ids;     // pinned int64 [2, max_seq_len + k]
    at::Tensor ids;          // the same on the device: the draft's and the target's inputs
    at::Tensor q, p;         // fp32 [k, vocab] (the draft's), [k + 1, vocab] (the target's)
    at::Tensor proposals;    // int32 [k]
    at::Tensor slot_rows;    // int32 [k + 1], every entry the round's slot
    at::Tensor result;       // int32 [k + 3]
    at::Tensor host_result;  // pinned
    // Orders the draft decoder's queued work before the round (a raw event: ATen's CUDAEvent
    // header needs CUDA library headers this build does not have).
    struct Event {
      cudaEvent_t event = nullptr;
      ~Event() {
        if (event) cudaEventDestroy(event);
      }
    } draft_done;
  };
  std::unique_ptr<Speculation> speculation;
#endif

  Impl(Transformer& m, int64_t max_b, int64_t scratch, const std::string& forced_eager,
       const std::string& no_sampler_reason)
      : model(m),
        max_batch(max_b),
        scratch_slot(scratch),
        vocab(m.full_spec().vocab_size) {
    const at::Device device = m.options().device();
    // Pinned host buffers make the copies asynchronous DMA; a CPU device needs none.
    const auto host = at::TensorOptions().pinned_memory(device.is_cuda());
    host_in = at::empty({4, max_batch}, host.dtype(at::kLong));
    device_in = at::zeros({4, max_batch}, at::TensorOptions().dtype(at::kLong).device(device));
    host_logits = at::empty({max_batch, vocab}, host.dtype(at::kFloat));
    host_tokens = at::empty({max_batch}, host.dtype(at::kInt));
#if GPTFAST_WITH_CUDA
    if (!device.is_cuda()) {
      eager_reason = "device " + device.str() + " is not a CUDA device";
      cpu_sampling_reason = eager_reason;
    } else {
      stream = c10::cuda::getStreamFromPool(false, device.index());  // capture needs a non-default stream
      // GPTFAST_CUDA_GRAPHS=0: eager decoding; GPTFAST_DEVICE_SAMPLING=0: logits to the CPU Sampler.
      if (!switched_on("GPTFAST_CUDA_GRAPHS")) eager_reason = "GPTFAST_CUDA_GRAPHS=0";
      if (!forced_eager.empty()) eager_reason = forced_eager;
      pool = at::cuda::graph_pool_handle();
      // Under tensor parallelism every rank decodes eagerly and rank 0's logits go to the CPU
      // Sampler (device sampling there is not built: each rank would hold sampler state).
      if (!forced_eager.empty()) {
        cpu_sampling_reason = forced_eager;
      } else if (!no_sampler_reason.empty()) {
        cpu_sampling_reason = no_sampler_reason;
        no_sampler = true;
      } else if (switched_on("GPTFAST_DEVICE_SAMPLING")) {
        c10::cuda::CUDAGuard on(device);
        sampler = std::make_unique<cuda::DeviceSampler>(int(scratch_slot + max_batch), int(vocab), stream->stream());
        const auto ints = at::TensorOptions().dtype(at::kInt).device(device);
        sample_slots = at::zeros({max_batch}, ints);
        device_tokens = at::zeros({max_batch}, ints);
      } else {
        cpu_sampling_reason = "GPTFAST_DEVICE_SAMPLING=0";
      }
    }
#else
    eager_reason = "this libgptfast was built without CUDA";
    cpu_sampling_reason = eager_reason;
#endif
  }

  // Asynchronous copies only where this code synchronises the stream itself.
  bool async() const {
#if GPTFAST_WITH_CUDA
    return stream.has_value();
#else
    return false;
#endif
  }

  int64_t bucket(int64_t n) const {
    int64_t b = 1;
    while (b < n) b *= 2;
    return std::min(b, max_batch);
  }

  // Rows n..bucket-1 decode token 0 into the scratch slot at position 0: same shapes, harmless.
  void fill_inputs(const int32_t* tokens, const int32_t* slots, const int64_t* positions, int64_t n, int64_t rows,
                   int32_t* const* sampled) {
    int64_t* in = host_in.data_ptr<int64_t>();
    for (int64_t b = 0; b < rows; ++b) {
      in[b] = b < n ? tokens[b] : 0;
      in[max_batch + b] = b < n ? slots[b] : scratch_slot;
      in[2 * max_batch + b] = b < n ? positions[b] : 0;
      in[3 * max_batch + b] = sampling_slot(b, n, slots, sampled, scratch_slot);
    }
  }

  // The decode of `rows` rows from device_in, then (device sampling) their draws into
  // device_tokens; *sampled_logits keeps what the sampling reads alive (the graph's pool).
  at::Tensor decode_eager(int64_t rows, at::Tensor* sampled_logits = nullptr) {
    at::Tensor logits = model.decode(device_in[0].narrow(0, 0, rows), device_in[1].narrow(0, 0, rows),
                                     device_in[2].narrow(0, 0, rows));
#if GPTFAST_WITH_CUDA
    if (sampler) {
      sample_slots.narrow(0, 0, rows).copy_(device_in[3].narrow(0, 0, rows));
      at::Tensor l = logits.to(at::kFloat).contiguous();
      sampler->sample(l.data_ptr<float>(), int(rows), sample_slots.data_ptr<int32_t>(), device_tokens.data_ptr<int32_t>(),
                      stream->stream());
      if (sampled_logits) *sampled_logits = l;
    }
#endif
    return logits;
  }

#if GPTFAST_WITH_CUDA
  // Captures the decode of `rows` rows. Warm-up runs first, eagerly, so that cuBLAS handles and
  // lazily initialised kernels are set up outside the capture; the inputs then point every row
  // at the scratch slot, so the warm-up writes nothing a sequence reads.
  Captured* capture(int64_t rows) {
    cudaDeviceSynchronize();  // loading may have left work (weights drawn, quantized) on other streams
    fill_inputs(nullptr, nullptr, nullptr, 0, rows, nullptr);
    device_in.copy_(host_in, /*non_blocking=*/false);
    for (int i = 0; i < 2; ++i) decode_eager(rows);
    stream->synchronize();
    auto captured = std::make_unique<Captured>();
    const std::string failed = cuda::try_capture(
        captured->graph, [&] { captured->logits = decode_eager(rows, &captured->sampled_logits); }, pool);
    if (!failed.empty()) {
      eager_reason = "CUDA graph capture failed: " + failed;
      std::fprintf(stderr, "gptfast: %s; decoding eagerly\n", eager_reason.c_str());
      return nullptr;
    }
    Captured* raw = captured.get();
    graphs[rows] = std::move(captured);
    return raw;
  }
#endif

  void run(const int32_t* tokens, const int32_t* slots, const int64_t* positions, int64_t n, float* const* logits,
           int32_t* const* sampled) {
    if (n < 1 || n > max_batch) {
      throw Error("device decode: " + std::to_string(n) + " rows, expected 1.." + std::to_string(max_batch));
    }
    bool want_logits = false, want_tokens = false;
    for (int64_t b = 0; b < n; ++b) {
      want_tokens = want_tokens || (sampled && sampled[b]);
      want_logits = want_logits || (logits[b] && !(sampled && sampled[b]));
    }
    if (want_tokens && !cpu_sampling_reason.empty()) {
      throw Error("device decode: a row asks for a device-sampled token, but sampling is on the CPU (" +
                  cpu_sampling_reason + ")");
    }
    const int64_t rows = bucket(n);
#if GPTFAST_WITH_CUDA
    std::optional<c10::cuda::CUDAStreamGuard> guard;
    if (stream) guard.emplace(*stream);
    Captured* graph = nullptr;
    if (eager_reason.empty()) {
      auto it = graphs.find(rows);
      graph = it != graphs.end() ? it->second.get() : capture(rows);
    }
#endif
    fill_inputs(tokens, slots, positions, n, rows, sampled);
    device_in.copy_(host_in, /*non_blocking=*/async());
    at::Tensor out;
#if GPTFAST_WITH_CUDA
    if (graph) {
      graph->graph.replay();
      out = graph->logits;
    } else {
      out = decode_eager(rows);
    }
#else
    out = decode_eager(rows);
#endif
#if GPTFAST_WITH_CUDA
    if (want_tokens) host_tokens.narrow(0, 0, rows).copy_(device_tokens.narrow(0, 0, rows), /*non_blocking=*/async());
#endif
    if (want_logits) host_logits.narrow(0, 0, rows).copy_(out, /*non_blocking=*/async());
#if GPTFAST_WITH_CUDA
    // The one wait per token: the ids (or logits) are back, and host_in is free for reuse.
    if (stream) stream->synchronize();
#endif
    const float* host = host_logits.data_ptr<float>();
    const int32_t* ids = host_tokens.data_ptr<int32_t>();
    for (int64_t b = 0; b < n; ++b) {
      if (sampled && sampled[b]) {
        if (ids[b] < 0) throw Error(kNothingToSample);
        *sampled[b] = ids[b];
      } else if (logits[b]) {
        std::memcpy(logits[b], host + b * vocab, sizeof(float) * size_t(vocab));
      }
    }
  }

  void require_sampler(int slot) const {
    if (!cpu_sampling_reason.empty()) throw Error("device sampling is off: " + cpu_sampling_reason);
    if (slot < 0 || slot >= scratch_slot) {
      throw Error("device sampling: slot " + std::to_string(slot) + " is outside [0, " + std::to_string(scratch_slot) +
                  ")");
    }
  }

#if GPTFAST_WITH_CUDA
  Speculation& speculation_buffers(int k) {
    if (speculation && speculation->k >= k) return *speculation;
    const at::Device device = model.options().device();
    const auto ints = at::TensorOptions().dtype(at::kInt).device(device);
    const auto pinned = at::TensorOptions().pinned_memory(true);
    auto b = std::make_unique<Speculation>();
    b->k = k;
    b->host_ids = at::empty({2, model.max_seq_len() + k}, pinned.dtype(at::kLong));
    b->ids = at::zeros({2, model.max_seq_len() + k}, ints.dtype(at::kLong));
    b->q = at::zeros({k, vocab}, ints.dtype(at::kFloat));
    b->p = at::zeros({k + 1, vocab}, ints.dtype(at::kFloat));
    b->proposals = at::zeros({k}, ints);
    b->slot_rows = at::zeros({k + 1}, ints);
    b->result = at::zeros({k + 3}, ints);
    b->host_result = at::empty({k + 3}, pinned.dtype(at::kInt));
    cuda::check_cuda(cudaEventCreateWithFlags(&b->draft_done.event, cudaEventDisableTiming), "device speculation",
                     "cudaEventCreateWithFlags");
    speculation = std::move(b);
    return *speculation;
  }

  int speculate(Transformer& draft, Impl& draft_impl, int slot, const int32_t* draft_tokens, int64_t draft_n,
                int64_t draft_start, const int32_t* target_tokens, int64_t target_n, int64_t target_start, int k,
                int32_t* out, int32_t* kept) {
    require_sampler(slot);
    const int64_t len = model.max_seq_len();
    if (k < 1 || draft_n < 1 || target_n < 1 || draft_start < 0 || target_start < 0 ||
        draft_start + draft_n + k - 1 > len || target_start + target_n + k > len) {
      throw Error("device speculation: bad round (k " + std::to_string(k) + ", draft " + std::to_string(draft_n) +
                  " tokens at " + std::to_string(draft_start) + ", target " + std::to_string(target_n) + " at " +
                  std::to_string(target_start) + ", context " + std::to_string(len) + ")");
    }
    if (!draft_impl.stream || draft.options().device() != model.options().device()) {
      throw Error("device speculation: the draft model must be on the target's device");
    }
    c10::cuda::CUDAStreamGuard guard(*stream);
    Speculation& b = speculation_buffers(k);
    // The draft's earlier passes (prompt chunks) were queued on its own stream.
    cuda::check_cuda(cudaEventRecord(b.draft_done.event, draft_impl.stream->stream()), "device speculation",
                     "cudaEventRecord");
    cuda::check_cuda(cudaStreamWaitEvent(stream->stream(), b.draft_done.event, 0), "device speculation",
                     "cudaStreamWaitEvent");
    // Inputs: one asynchronous copy per model from pinned memory (free again after the read below).
    int64_t* host = b.host_ids.data_ptr<int64_t>();
    const int64_t width = b.host_ids.size(1);
    std::copy_n(draft_tokens, draft_n, host);
    std::copy_n(target_tokens, target_n, host + width);
    at::Tensor draft_ids = b.ids[0], target_ids = b.ids[1];
    draft_ids.narrow(0, 0, draft_n).copy_(b.host_ids[0].narrow(0, 0, draft_n), /*non_blocking=*/true);
    target_ids.narrow(0, 0, target_n).copy_(b.host_ids[1].narrow(0, 0, target_n), /*non_blocking=*/true);
    b.slot_rows.fill_(slot);
    const int32_t* slot_rows = b.slot_rows.data_ptr<int32_t>();
    int32_t* proposals = b.proposals.data_ptr<int32_t>();
    float* q = b.q.data_ptr<float>();
    const cudaStream_t s = stream->stream();
    // The draft: catch up (last position's logits), then one position per proposal. Proposal j
    // is drawn from q_j with the slot's generator and fed back from device memory; the draft
    // never needs its own last proposal.
    at::Tensor logits = draft.forward(draft_ids.narrow(0, 0, draft_n).view({1, draft_n}), draft_start, 1, slot);
    for (int j = 0; j < k; ++j) {
      const at::Tensor row = logits.reshape({1, vocab}).to(at::kFloat).contiguous();
      sampler->distribution(row.data_ptr<float>(), 1, slot_rows, q + int64_t(j) * vocab, s);
      sampler->draw(q + int64_t(j) * vocab, 1, slot_rows, proposals + j, s);
      if (j + 1 == k) break;
      const int64_t at = draft_n + j;  // the proposal's place after the catch-up tokens
      draft_ids.narrow(0, at, 1).copy_(b.proposals.narrow(0, j, 1));
      logits = draft.forward(draft_ids.narrow(0, at, 1).view({1, 1}), draft_start + at, 1, slot);
    }
    // The target's verify pass: its tokens, then the proposals; k + 1 distributions.
    target_ids.narrow(0, target_n, k).copy_(b.proposals.narrow(0, 0, k));
    const at::Tensor verify =
        model.forward(target_ids.narrow(0, 0, target_n + k).view({1, target_n + k}), target_start, k + 1, slot)
            .reshape({k + 1, vocab})
            .to(at::kFloat)
            .contiguous();
    float* p = b.p.data_ptr<float>();
    sampler->distribution(verify.data_ptr<float>(), k + 1, slot_rows, p, s);
    int32_t* result = b.result.data_ptr<int32_t>();
    sampler->accept(p, q, proposals, 1, k, slot_rows, result, result + k + 1, result + k + 2, s);
    b.host_result.narrow(0, 0, k + 3).copy_(b.result.narrow(0, 0, k + 3), /*non_blocking=*/true);
    // The one wait per round: the emitted ids are back (and host_ids is free for reuse).
    stream->synchronize();
    const int32_t* r = b.host_result.data_ptr<int32_t>();
    const int n = r[k + 1];
    if (n < 1 || n > k + 1) throw Error("device speculation: accept_reject emitted " + std::to_string(n) + " ids");
    for (int i = 0; i < n; ++i) {
      if (r[i] < 0) throw Error(kNothingToSample);
      out[i] = r[i];
    }
    *kept = r[k + 2];
    return n;
  }
#endif
};

DeviceDecode::DeviceDecode(Transformer& model, int64_t max_batch, int64_t scratch_slot, const std::string& eager_reason,
                           const std::string& no_sampler_reason)
    : impl_(std::make_unique<Impl>(model, max_batch, scratch_slot, eager_reason, no_sampler_reason)) {}

DeviceDecode::~DeviceDecode() = default;

void DeviceDecode::run(const int32_t* tokens, const int32_t* slots, const int64_t* positions, int64_t n,
                       float* const* logits, int32_t* const* sampled) {
  impl_->run(tokens, slots, positions, n, logits, sampled);
}

bool DeviceDecode::device_sampling() const { return impl_->cpu_sampling_reason.empty(); }

std::string DeviceDecode::sampling_mode() const {
  if (device_sampling()) return "device";
  return (impl_->no_sampler ? "none (" : "cpu (") + impl_->cpu_sampling_reason + ")";
}

int DeviceDecode::speculate(Transformer& draft, DeviceDecode& draft_decoder, int slot, const int32_t* draft_tokens,
                            int64_t draft_n, int64_t draft_start, const int32_t* target_tokens, int64_t target_n,
                            int64_t target_start, int k, int32_t* out, int32_t* kept) {
#if GPTFAST_WITH_CUDA
  return impl_->speculate(draft, *draft_decoder.impl_, slot, draft_tokens, draft_n, draft_start, target_tokens,
                          target_n, target_start, k, out, kept);
#else
  (void)draft, (void)draft_decoder, (void)slot, (void)draft_tokens, (void)draft_n, (void)draft_start;
  (void)target_tokens, (void)target_n, (void)target_start, (void)k, (void)out, (void)kept;
  throw Error("device speculation: " + impl_->cpu_sampling_reason);
#endif
}

void DeviceDecode::start_sampling(int slot, const SamplingSpec& spec, const int32_t* prompt, int n) {
  impl_->require_sampler(slot);
#if GPTFAST_WITH_CUDA
  impl_->sampler->start(slot, spec, prompt, n, impl_->stream->stream());
#endif
}

void DeviceDecode::suppress(int slot, const int32_t* ids, int n) {
  impl_->require_sampler(slot);
#if GPTFAST_WITH_CUDA
  impl_->sampler->suppress(slot, ids, n, impl_->stream->stream());
#endif
}

int32_t DeviceDecode::sample(const at::Tensor& logits, int slot) {
  Impl& m = *impl_;
  m.require_sampler(slot);
  int32_t token = -1;
#if GPTFAST_WITH_CUDA
  c10::cuda::CUDAStreamGuard guard(*m.stream);
  const at::Tensor l = logits.reshape({1, m.vocab}).to(at::kFloat).contiguous();
  const at::Tensor slot_of_row = at::full({1}, slot, m.sample_slots.options());
  m.sampler->sample(l.data_ptr<float>(), 1, slot_of_row.data_ptr<int32_t>(), m.device_tokens.data_ptr<int32_t>(),
                    m.stream->stream());
  m.host_tokens.narrow(0, 0, 1).copy_(m.device_tokens.narrow(0, 0, 1), /*non_blocking=*/true);
  m.stream->synchronize();
  token = m.host_tokens.data_ptr<int32_t>()[0];
#endif
  if (token < 0) throw Error(kNothingToSample);
  return token;
}

void DeviceDecode::within_stream(void (*fn)(void*), void* f) {
#if GPTFAST_WITH_CUDA
  std::optional<c10::cuda::CUDAStreamGuard> guard;
  if (impl_->stream) guard.emplace(*impl_->stream);
#endif
  fn(f);
}

std::string DeviceDecode::mode() const {
  return impl_->eager_reason.empty() ? "graphs" : "eager (" + impl_->eager_reason + ")";
}

}  // namespace gptfast
