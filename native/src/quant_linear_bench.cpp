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

#include "gptfast/bench_api.h"
#include "linear_weight.h"

#if GPTFAST_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include "cuda/quant_linear.h"
#endif

namespace gptfast {

namespace {

#if GPTFAST_WITH_CUDA

std::string first_line(const std::exception& e) {
  const std::string what = e.what();
  return what.substr(0, what.find('\n'));
}

// A layer's weight in the engine's layout (linear_weight.h), random, and the same numbers in the
// layout libtorch's op takes.
struct Weight {
  LinearWeight own;
  at::Tensor aten_weight, aten_scales;
};

Weight random_weight(const QuantSpec& q, int64_t out, int64_t in, const at::Device& device) {
  const auto on = at::TensorOptions().device(device);
  Weight w;
  w.own.kind = q.kind;
  w.own.out = out;
  w.own.in = in;
  if (q.kind == WeightKind::int8) {
    w.own.weight = at::randint(-127, 128, {out, in}, on.dtype(at::kChar));
    w.own.scales = at::rand({out}, on.dtype(at::kFloat)) * 0.01 + 0.001;
  } else {
    w.own.group = q.group;
    const int64_t padded = int4_padded_in(in, q.group);
    w.own.weight = at::randint(0, 256, {out, padded / 2}, on.dtype(at::kByte));
    w.own.scales = (at::rand({out, padded / q.group, 2}, on.dtype(at::kFloat)) * 0.01).to(at::kBFloat16);
  }
  return w;
}

// libtorch's layouts: int8 scales in the activation dtype; int4 packed for its tensor-core kernel
// (inner k tiles as GPT-Fast picks them: 8 where the width allows) with scales/zeros [K/G, out, 2].
void add_aten_layout(Weight& w) {
  if (w.own.kind == WeightKind::int8) {
    w.aten_weight = w.own.weight;
    w.aten_scales = w.own.scales.to(at::kBFloat16);
    return;
  }
  const int64_t padded = w.own.weight.size(1) * 2;
  const int64_t tiles = padded % 128 == 0 ? 8 : padded % 64 == 0 ? 4 : 2;
  w.aten_weight = at::_convert_weight_to_int4pack(w.own.weight, tiles);
  w.aten_scales = w.own.scales.transpose(0, 1).contiguous();
}

at::Tensor aten_linear(const Weight& w, const at::Tensor& x, const at::Tensor& x_padded) {
  if (w.own.kind == WeightKind::int8) return at::_weight_int8pack_mm(x, w.aten_weight, w.aten_scales);
  return at::_weight_int4pack_mm(x_padded, w.aten_weight, w.own.group, w.aten_scales);
}

at::Tensor own_linear(const Weight& w, const at::Tensor& x) {
  at::Tensor y = cuda_quantized_linear(w.own, x);
  if (!y.defined()) throw std::runtime_error("the engine's gemv kernels do not take this batch (1..8 rows)");
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
  *mode = "graph";
  try {
    graph->capture_begin();
    try {
      step();
    } catch (...) {
      try {
        graph->capture_end();
      } catch (...) {
      }
      cudaGetLastError();
      throw;
    }
    graph->capture_end();
  } catch (const std::exception& e) {
    *mode = "eager (capture failed: " + first_line(e) + ")";
    graph.reset();
  }
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
  at::Tensor x_dim, x_dim_padded, x_ffn, x_ffn_padded;
  QuantSpec q;
  try {
    q = parse_quantize(quantize);
    if (q.kind == WeightKind::dense) throw std::runtime_error("quantize must be int8 or int4[:G]");
    if (!at::hasCUDA() || at::getNumGPUs() == 0) throw std::runtime_error("no CUDA device");
    t.aten_op = q.kind == WeightKind::int8 ? "_weight_int8pack_mm" : "_weight_int4pack_mm";
    const at::Device device(at::kCUDA, 0);
    c10::cuda::CUDAGuard on(device);
    const int64_t head_dim = dim / n_head, kv_dim = int64_t(n_kv_heads) * head_dim;
    for (int l = 0; l < n_layer; ++l) {
      weights.push_back(random_weight(q, dim + 2 * kv_dim, dim, device));  // wqkv
      weights.push_back(random_weight(q, dim, dim, device));               // wo
      weights.push_back(random_weight(q, ffn, dim, device));               // w1
      weights.push_back(random_weight(q, ffn, dim, device));               // w3
      weights.push_back(random_weight(q, dim, ffn, device));               // w2
    }
    weights.push_back(random_weight(q, vocab, dim, device));  // output
    const auto bf16 = at::TensorOptions().dtype(at::kBFloat16).device(device);
    x_dim = at::randn({batch, dim}, bf16);
    x_ffn = at::randn({batch, ffn}, bf16);
    auto padded = [&](const at::Tensor& x, int64_t in) {
      const int64_t width = q.kind == WeightKind::int4 ? int4_padded_in(in, q.group) : in;
      return at::constant_pad_nd(x, {0, width - in});
    };
    x_dim_padded = padded(x_dim, dim);
    x_ffn_padded = padded(x_ffn, ffn);
  } catch (const std::exception& e) {
    t.own_error = t.aten_error = first_line(e);
    return t;
  }
  // Each layer reads the activation of its input width (what it computes is not fed on: the
  // timing is of the weight streaming, which does not depend on the values).
  auto input = [&](const Weight& w, bool pad) {
    const bool wide = w.own.in == ffn;
    return wide ? (pad ? x_ffn_padded : x_ffn) : (pad ? x_dim_padded : x_dim);
  };
  try {
    t.own_us_per_step = time_step([&] {
      for (const Weight& w : weights) own_linear(w, input(w, false));
    }, &t.own_mode);
  } catch (const std::exception& e) {
    t.own_error = first_line(e);
  }
  try {
    for (Weight& w : weights) add_aten_layout(w);
    t.aten_us_per_step = time_step([&] {
      for (const Weight& w : weights) aten_linear(w, input(w, false), input(w, true));
    }, &t.aten_mode);
    // Same numbers both ways? (w1 of the first layer; the ops accumulate in different orders.)
    if (t.own_error.empty()) {
      const at::Tensor own = own_linear(weights[2], x_dim).to(at::kFloat);
      const at::Tensor aten = aten_linear(weights[2], x_dim, x_dim_padded).to(at::kFloat);
      t.max_relative_difference = ((own - aten).abs().max() / own.abs().max().clamp_min(1e-30)).item<double>();
    }
  } catch (const std::exception& e) {
    t.aten_error = first_line(e);
  }
#endif
  return t;
}

}  // namespace gptfast
