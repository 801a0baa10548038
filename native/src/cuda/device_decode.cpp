#include "cuda/device_decode.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>

#include "errors.h"
#include "transformer.h"

#if GPTFAST_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

namespace gptfast {

#if GPTFAST_WITH_CUDA
namespace {

// Graph capture is on unless GPTFAST_CUDA_GRAPHS=0 (eager decoding, for comparisons and debugging).
bool graphs_requested() {
  const char* v = std::getenv("GPTFAST_CUDA_GRAPHS");
  return !(v && std::string(v) == "0");
}

}  // namespace
#endif

struct DeviceDecode::Impl {
  Transformer& model;
  const int64_t max_batch, scratch_slot, vocab;
  std::string eager_reason;  // empty while graphs are used
  at::Tensor host_in;        // pinned int64 [3, max_batch]: tokens, slots, positions
  at::Tensor device_in;      // the same on the device: the graphs' static inputs
  at::Tensor host_logits;    // pinned fp32 [max_batch, vocab]
#if GPTFAST_WITH_CUDA
  struct Captured {
    at::cuda::CUDAGraph graph;
    at::Tensor logits;  // [bucket, vocab], allocated in the graph's pool, rewritten by each replay
  };
  std::optional<c10::cuda::CUDAStream> stream;  // a CUDA device only
  at::cuda::MempoolId_t pool{0, 0};
  std::map<int64_t, std::unique_ptr<Captured>> graphs;  // by batch bucket
#endif

  Impl(Transformer& m, int64_t max_b, int64_t scratch, const std::string& forced_eager)
      : model(m),
        max_batch(max_b),
        scratch_slot(scratch),
        vocab(m.full_spec().vocab_size) {
    const at::Device device = m.options().device();
    // Pinned host buffers make the copies asynchronous DMA; a CPU device needs none.
    const auto host = at::TensorOptions().pinned_memory(device.is_cuda());
    host_in = at::empty({3, max_batch}, host.dtype(at::kLong));
    device_in = at::zeros({3, max_batch}, at::TensorOptions().dtype(at::kLong).device(device));
    host_logits = at::empty({max_batch, vocab}, host.dtype(at::kFloat));
#if GPTFAST_WITH_CUDA
    if (!device.is_cuda()) {
      eager_reason = "device " + device.str() + " is not a CUDA device";
    } else {
      stream = c10::cuda::getStreamFromPool(false, device.index());  // capture needs a non-default stream
      if (!graphs_requested()) eager_reason = "GPTFAST_CUDA_GRAPHS=0";
      if (!forced_eager.empty()) eager_reason = forced_eager;
      pool = at::cuda::graph_pool_handle();
    }
#else
    eager_reason = "this libgptfast was built without CUDA";
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
  void fill_inputs(const int32_t* tokens, const int32_t* slots, const int64_t* positions, int64_t n, int64_t rows) {
    int64_t* in = host_in.data_ptr<int64_t>();
    for (int64_t b = 0; b < rows; ++b) {
      in[b] = b < n ? tokens[b] : 0;
      in[max_batch + b] = b < n ? slots[b] : scratch_slot;
      in[2 * max_batch + b] = b < n ? positions[b] : 0;
    }
  }

  at::Tensor decode_eager(int64_t rows) {
    return model.decode(device_in[0].narrow(0, 0, rows), device_in[1].narrow(0, 0, rows),
                        device_in[2].narrow(0, 0, rows));
  }

#if GPTFAST_WITH_CUDA
  // Captures the decode of `rows` rows. Warm-up runs first, eagerly, so that cuBLAS handles and
  // lazily initialised kernels are set up outside the capture; the inputs then point every row
  // at the scratch slot, so the warm-up writes nothing a sequence reads.
  Captured* capture(int64_t rows) {
    cudaDeviceSynchronize();  // loading may have left work (weights drawn, quantized) on other streams
    fill_inputs(nullptr, nullptr, nullptr, 0, rows);
    device_in.copy_(host_in, /*non_blocking=*/false);
    for (int i = 0; i < 2; ++i) decode_eager(rows);
    stream->synchronize();
    auto captured = std::make_unique<Captured>();
    try {
      captured->graph.capture_begin(pool);
      try {
        captured->logits = decode_eager(rows);
      } catch (...) {
        // Leave capture mode (capture_end also stops routing this stream's allocations to the
        // graph's pool; it throws for the invalidated capture), then report the op that failed.
        try {
          captured->graph.capture_end();
        } catch (...) {
        }
        cudaGetLastError();
        throw;
      }
      captured->graph.capture_end();
    } catch (const std::exception& e) {
      std::string what = e.what();
      what = what.substr(0, what.find('\n'));
      eager_reason = "CUDA graph capture failed: " + what;
      std::fprintf(stderr, "gptfast: %s; decoding eagerly\n", eager_reason.c_str());
      return nullptr;
    }
    Captured* raw = captured.get();
    graphs[rows] = std::move(captured);
    return raw;
  }
#endif

  void run(const int32_t* tokens, const int32_t* slots, const int64_t* positions, int64_t n, float* const* logits) {
    if (n < 1 || n > max_batch) {
      throw Error("device decode: " + std::to_string(n) + " rows, expected 1.." + std::to_string(max_batch));
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
    fill_inputs(tokens, slots, positions, n, rows);
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
    host_logits.narrow(0, 0, rows).copy_(out, /*non_blocking=*/async());
#if GPTFAST_WITH_CUDA
    if (stream) stream->synchronize();  // the one wait per token: the logits, and host_in free for reuse
#endif
    const float* host = host_logits.data_ptr<float>();
    for (int64_t b = 0; b < n; ++b) {
      if (logits[b]) std::memcpy(logits[b], host + b * vocab, sizeof(float) * size_t(vocab));
    }
  }
};

DeviceDecode::DeviceDecode(Transformer& model, int64_t max_batch, int64_t scratch_slot, const std::string& eager_reason)
    : impl_(std::make_unique<Impl>(model, max_batch, scratch_slot, eager_reason)) {}

DeviceDecode::~DeviceDecode() = default;

void DeviceDecode::run(const int32_t* tokens, const int32_t* slots, const int64_t* positions, int64_t n,
                       float* const* logits) {
  impl_->run(tokens, slots, positions, n, logits);
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
