// Manual benchmark (not a test): matmul_rows on the linear-layer shapes of a stories110M-sized
// model, for one weight storage (fp32, bf16, int8, int4 with group 32), per vector count, on one
// thread, timed by the thread's CPU clock (best of several passes), so that other processes on the
// machine disturb it less than wall time would. Each pass streams many copies of the matrix
// (over 256 MB in all), so the weights come from memory, not from cache, as in a real decode step.
// Prints GFLOP/s and the weight bytes streamed per second, after the machine limits (bench_api.h).
//   gptfast_matvec_bench [fp32|bf16|int8|int4[:G]] [vector counts, e.g. 1,2 (default 1,2,4,8,16,64)]
// GPTFAST_BENCH_MIB=N streams N MiB per pass instead of 256 (1: each matrix once, from cache).
// GPTFAST_INT4_LANES=converted|subnormal picks how the int4 decode kernel reads nibbles (matvec.h).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "gptfast/bench_api.h"
#include "linear_weight.h"
#include "mapped_file.h"
#include "matvec.h"

namespace {

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

void run(const gptfast::LinearWeight& w, const float* x, float* y, int64_t n) {
  switch (w.kind) {
    case gptfast::WeightKind::int8:
      gptfast::matmul_rows(gptfast::Int8Rows{w.weight.data_ptr<int8_t>(), w.scales.data_ptr<float>()}, x, y, w.out,
                           w.in, n);
      return;
    case gptfast::WeightKind::int4:
      gptfast::matmul_rows(gptfast::Int4Rows{w.weight.data_ptr<uint8_t>(), w.weight.size(1),
                                             reinterpret_cast<const uint16_t*>(w.scales.data_ptr<at::BFloat16>()),
                                             w.scales.size(1) * 2, w.group},
                           x, y, w.out, w.in, n);
      return;
    case gptfast::WeightKind::dense:
      if (w.weight.scalar_type() == at::kBFloat16) {
        gptfast::matmul_rows(reinterpret_cast<const uint16_t*>(w.weight.data_ptr<at::BFloat16>()), x, y, w.out, w.in, n);
      } else {
        gptfast::matmul_rows(w.weight.data_ptr<float>(), x, y, w.out, w.in, n);
      }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "fp32";
  if (const char* lanes = std::getenv("GPTFAST_INT4_LANES")) {
    gptfast::set_int4_lanes(std::string(lanes) == "subnormal"   ? gptfast::Int4Lanes::subnormal
                            : std::string(lanes) == "converted" ? gptfast::Int4Lanes::converted
                                                                : gptfast::Int4Lanes::automatic);
  }
  for (int threads : {1, 2}) {
    const auto limits = gptfast::measure_machine_limits(threads);
    std::printf("threads %d: streaming read %.2f GB/s, fp32 at::mm %.1f GFLOP/s\n", threads,
                limits.read_bytes_per_second / 1e9, limits.matmul_flops_per_second / 1e9);
  }
  at::set_num_threads(1);
  // GPTFAST_BENCH_MIB=1: one copy of each matrix, read from cache (the kernel's compute rate).
  const char* mib = std::getenv("GPTFAST_BENCH_MIB");
  const int64_t stream_mib = mib ? std::max(1, std::atoi(mib)) : 256;
  const std::pair<int64_t, int64_t> shapes[] = {{768, 768}, {2048, 768}, {768, 2048}, {32000, 768}};
  std::vector<std::vector<gptfast::LinearWeight>> weights;
  for (auto [rows, cols] : shapes) {
    const at::Tensor dense = at::randn({rows, cols}) * 0.02;
    gptfast::LinearWeight w;
    if (mode == "int8" || mode.rfind("int4", 0) == 0) {
      w = gptfast::quantize(dense, gptfast::parse_quantize(mode == "int4" ? "int4:32" : mode));
    } else {
      w.weight = dense.to(mode == "bf16" ? at::kBFloat16 : at::kFloat).contiguous();
      w.out = rows;
      w.in = cols;
    }
    const int64_t copies = std::max<int64_t>(1, (stream_mib << 20) / w.bytes());
    std::vector<gptfast::LinearWeight> set;
    for (int64_t c = 0; c < copies; ++c) {
      gptfast::LinearWeight copy = w;
      // in 2 MiB pages where the kernel gives them, as the engine's weights are (mapped_file.h)
      copy.weight = gptfast::new_weights(w.weight.sizes(), w.weight.options(), true).copy_(w.weight);
      if (w.scales.defined()) copy.scales = w.scales.clone();
      set.push_back(copy);
    }
    weights.push_back(std::move(set));
  }
  at::Tensor x = at::randn({64, 2048}), y = at::empty({64, 32000});
  std::vector<int> counts;
  for (std::string list = argc > 2 ? argv[2] : "1,2,4,8,16,64"; !list.empty();) {
    const size_t comma = list.find(',');
    counts.push_back(std::clamp(std::stoi(list.substr(0, comma)), 1, 64));
    list = comma == std::string::npos ? "" : list.substr(comma + 1);
  }
  for (int n : counts) {
    std::printf("n=%2d", n);
    for (const auto& set : weights) {
      double best = 1e30;
      for (int rep = 0; rep < (stream_mib < 64 ? 500 : 5); ++rep) {
        const double start = cpu_seconds();
        for (const auto& w : set) run(w, x.data_ptr<float>(), y.data_ptr<float>(), n);
        best = std::min(best, cpu_seconds() - start);
      }
      const auto& w = set.front();
      const double calls = double(set.size());
      std::printf("  %5ldx%-4ld %6.1f GFLOP/s %5.1f GB/s", long(w.out), long(w.in),
                  2.0 * double(n * w.out * w.in) * calls / best / 1e9, double(w.bytes()) * calls / best / 1e9);
    }
    std::printf("  (%s, 1 thread, CPU time)\n", mode.c_str());
    std::fflush(stdout);
  }
}
