// Manual benchmark (not a test): GFLOP/s of matmul_rows on the linear-layer shapes of a
// stories110M-sized model, per vector count, on one thread, timed by the thread's CPU clock (best of
// several calls), so that other processes on the machine disturb it less than wall time would.
// First prints the machine limits (bench_api.h) for 1 and 2 threads, in wall time.
//   gptfast_matvec_bench [bf16]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "gptfast/bench_api.h"
#include "matvec.h"

namespace {

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

template <class W>
double gflops(const W* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n) {
  double best = 1e30;
  for (int rep = 0; rep < 15; ++rep) {
    const double start = cpu_seconds();
    gptfast::matmul_rows(w, x, y, rows, cols, n);
    best = std::min(best, cpu_seconds() - start);
  }
  return 2.0 * double(n * rows * cols) / best / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  const bool bf16 = argc > 1 && std::strcmp(argv[1], "bf16") == 0;
  for (int threads : {1, 2}) {
    const auto limits = gptfast::measure_machine_limits(threads);
    std::printf("threads %d: streaming read %.2f GB/s, fp32 at::mm %.1f GFLOP/s\n", threads,
                limits.read_bytes_per_second / 1e9, limits.matmul_flops_per_second / 1e9);
  }
  at::set_num_threads(1);
  const std::pair<int64_t, int64_t> shapes[] = {{768, 768}, {2048, 768}, {768, 2048}, {32000, 768}};
  std::vector<at::Tensor> weights;
  for (auto [rows, cols] : shapes) weights.push_back(at::randn({rows, cols}).to(bf16 ? at::kBFloat16 : at::kFloat));
  at::Tensor x = at::randn({64, 2048}), y = at::empty({64, 32000});
  for (int n : {1, 2, 3, 4, 8, 16, 64}) {
    std::printf("n=%2d", n);
    for (size_t i = 0; i < weights.size(); ++i) {
      const auto [rows, cols] = shapes[i];
      const double g = bf16 ? gflops(reinterpret_cast<const uint16_t*>(weights[i].data_ptr<at::BFloat16>()),
                                     x.data_ptr<float>(), y.data_ptr<float>(), rows, cols, n)
                            : gflops(weights[i].data_ptr<float>(), x.data_ptr<float>(), y.data_ptr<float>(), rows,
                                     cols, n);
      std::printf("  %5ldx%-4ld %6.1f", long(rows), long(cols), g);
    }
    std::printf("  GFLOP/s (%s, 1 thread, CPU time)\n", bf16 ? "bf16" : "fp32");
    std::fflush(stdout);
  }
}
