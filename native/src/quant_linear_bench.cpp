// time_quantized_linears (bench_api.h): the engine's int8/int4 gemv kernels against libtorch's
// weight-only ops on one decode step's Linear shapes, so a GPU run says which is faster.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"
#include "gptfast/bench_api.h"
#include "linear_weight.h"

#if GPTFAST_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include "cuda/graph_capture.h"
#include "cuda/quant_linear.h"
#endif

namespace gptfast {

namespace {

#if GPTFAST_WITH_CUDA

// A layer's weight, random, in the engine's layout (own) and with libtorch's layout added
// (aten, made by the engine's add_aten_layout): both run through cuda_quantized_linear, the
// engine's decode path under GPTFAST_CUDA_QUANT_MATMUL=own and =aten.
struct Weight {
  LinearWeight own, aten;
};

LinearWeight random_weight(const QuantSpec& q, int64_t out, int64_t in, const at::Device& device) {
  const auto on = at::TensorOptions().device(device);
  LinearWeight w;
  w.kind = q.kind;
  w.out = out;
  w.in = in;
  if (q.kind == WeightKind::int8) {
    w.weight = at::randint(-127, 128, {out, in}, on.dtype(at::kChar));
    w.scales = at::rand({out}, on.dtype(at::kFloat)) * 0.01 + 0.001;
  } else {
    w.group = q.group;
    const int64_t padded = int4_padded_in(in, q.group);
    w.weight = at::randint(0, 256, {out, padded / 2}, on.dtype(at::kByte));
    w.scales = (at::rand({out, padded / q.group, 2}, on.dtype(at::kFloat)) * 0.01).to(at::kBFloat16);
  }
  return w;
}

at::Tensor quantized_linear(const LinearWeight& w, const at::Tensor& x) {
  at::Tensor y = cuda_quantized_linear(w, x);
  if (!y.defined()) throw std::runtime_error("the engine's quantized decode path does not take this batch (1..8 rows)");
  return y;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Microseconds per call of step on a private stream: replays of a CUDA graph of it, or (when the
// capture fails) eager calls; *mode says which.
double time_step(const std::function<void()>& step, std::string* mode) {
  c10::cuda::CUDAStream stream = c10::cuda::getStreamFromPool();
  c10::cuda::CUDAStreamGuard guard(stream);
  step();
  step();
  stream.synchronize();
  auto graph = std::make_unique<at::cuda::CUDAGraph>();
  const std::string failed = cuda::try_capture(*graph, step);
  *mode = failed.empty() ? "graph" : "eager (capture failed: " + failed + ")";
  if (!failed.empty()) graph.reset();
  auto run = [&] {
    if (graph) {
      graph->replay();
    } else {
      step();
    }
  };
  run();
  stream.synchronize();
  const int iterations = 20;
  std::vector<double> us;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i) run();
    stream.synchronize();
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / iterations);
  }
  return median(us);
}

#endif

}  // namespace

QuantLinearTiming time_quantized_linears(const std::string& quantize, int batch, int dim, int n_layer, int n_head,
                                         int n_kv_heads, int ffn, int vocab) {
  QuantLinearTiming t;
#if !GPTFAST_WITH_CUDA
  (void)quantize, (void)batch, (void)dim, (void)n_layer, (void)n_head, (void)n_kv_heads, (void)ffn, (void)vocab;
  t.own_error = t.aten_error = "this libgptfast was built without CUDA";
#else
  std::vector<Weight> weights;
  at::Tensor x_dim, x_ffn;
  QuantSpec q;
  try {
    q = parse_quantize(quantize);
    if (q.kind == WeightKind::dense) throw std::runtime_error("quantize must be int8 or int4[:G]");
    if (!at::hasCUDA() || at::getNumGPUs() == 0) throw std::runtime_error("no CUDA device");
    t.aten_op = q.kind == WeightKind::int8 ? "_weight_int8pack_mm" : "_weight_int4pack_mm";
    const at::Device device(at::kCUDA, 0);
    c10::cuda::CUDAGuard on(device);
    const int64_t head_dim = dim / n_head, kv_dim = int64_t(n_kv_heads) * head_dim;
    auto add = [&](int64_t out, int64_t in) { weights.push_back({random_weight(q, out, in, device), {}}); };
    for (int l = 0; l < n_layer; ++l) {
      add(dim + 2 * kv_dim, dim);  // wqkv
      add(dim, dim);               // wo
      add(ffn, dim);               // w1
      add(ffn, dim);               // w3
      add(dim, ffn);               // w2
    }
    add(vocab, dim);  // output
    const auto bf16 = at::TensorOptions().dtype(at::kBFloat16).device(device);
    x_dim = at::randn({batch, dim}, bf16);
    x_ffn = at::randn({batch, ffn}, bf16);
  } catch (const std::exception& e) {
    t.own_error = t.aten_error = first_line(e.what());
    return t;
  }
  // Each layer reads the activation of its input width (what it computes is not fed on: the
  // timing is of the weight streaming, which does not depend on the values).
  auto input = [&](const LinearWeight& w) { return w.in == ffn ? x_ffn : x_dim; };
  try {
    t.own_us_per_step = time_step([&] {
      for (const Weight& w : weights) quantized_linear(w.own, input(w.own));
    }, &t.own_mode);
  } catch (const std::exception& e) {
    t.own_error = first_line(e.what());
  }
  try {
    for (Weight& w : weights) {
      w.aten = w.own;
      add_aten_layout(w.aten, "benchmark", at::kBFloat16);
    }
    t.aten_us_per_step = time_step([&] {
      for (const Weight& w : weights) quantized_linear(w.aten, input(w.aten));
    }, &t.aten_mode);
    // Same numbers both ways? (w1 of the first layer; the ops accumulate in different orders.)
    if (t.own_error.empty()) {
      const at::Tensor own = quantized_linear(weights[2].own, x_dim).to(at::kFloat);
      const at::Tensor aten = quantized_linear(weights[2].aten, x_dim).to(at::kFloat);
      t.max_relative_difference = ((own - aten).abs().max() / own.abs().max().clamp_min(1e-30)).item<double>();
    }
  } catch (const std::exception& e) {
    t.aten_error = first_line(e.what());
  }
#endif
  return t;
}

}  // namespace gptfast
