#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "gptfast/bench_api.h"
#include "matvec.h"
#include "thread_team.h"

namespace gptfast {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Sets the intra-op thread count (libtorch's and OpenBLAS's: at::mm runs on OpenBLAS's) for a
// scope and restores the previous one.
class ThreadScope {
 public:
  explicit ThreadScope(int threads) : previous_(at::get_num_threads()) {
    if (threads < 1) throw std::runtime_error("threads must be at least 1, got " + std::to_string(threads));
    set_intra_op_threads(threads);
  }
  ~ThreadScope() { set_intra_op_threads(previous_); }
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int previous_;
};

double matmul_peak() {
  constexpr int64_t n = 1024;
  at::Tensor a = at::randn({n, n}, at::kFloat), b = at::randn({n, n}, at::kFloat);
  at::Tensor c = at::empty({n, n}, at::kFloat);
  at::mm_out(c, a, b);  // warm-up: packing buffers, thread pool
  std::vector<double> rates;
  for (int rep = 0; rep < 7; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    at::mm_out(c, a, b);
    const double s = seconds_since(start);
    if (s > 0) rates.push_back(2.0 * n * n * n / s);
  }
  if (rates.empty()) throw std::runtime_error("matmul timing failed");
  return median(rates);
}

}  // namespace

double measure_read_bandwidth(int threads) {
  ThreadScope scope(threads);
  // 512 MiB: far beyond any last-level cache; best of 4 passes.
  ThreadTeam team(threads);
  return ReadProbe(int64_t(512) << 20).rate(team, 4);
}

MachineLimits measure_machine_limits(int threads) {
  MachineLimits limits;
  limits.threads = threads;
  limits.read_bytes_per_second = measure_read_bandwidth(threads);
  ThreadScope scope(threads);
  limits.matmul_flops_per_second = matmul_peak();
  return limits;
}

double matmul_rows_flops(int threads, int n_vectors, int64_t rows, int64_t cols) {
  if (n_vectors < 1 || rows < 1 || cols < 1) {
    throw std::runtime_error("matmul_rows_flops: sizes must be positive, got n_vectors=" + std::to_string(n_vectors) +
                             " rows=" + std::to_string(rows) + " cols=" + std::to_string(cols));
  }
  ThreadScope scope(threads);
  at::Tensor w = at::randn({rows, cols}, at::kFloat), x = at::randn({n_vectors, cols}, at::kFloat);
  at::Tensor y = at::empty({n_vectors, rows}, at::kFloat);
  const double flops = 2.0 * double(n_vectors) * double(rows) * double(cols);
  // Enough calls for ~0.2 s in all (at least 3), after one warm-up call.
  const auto first = std::chrono::steady_clock::now();
  matmul_rows(w.data_ptr<float>(), x.data_ptr<float>(), y.data_ptr<float>(), rows, cols, n_vectors);
  const double once = std::max(seconds_since(first), 1e-6);
  const int reps = int(std::clamp(0.2 / once, 3.0, 1000.0));
  std::vector<double> rates;
  for (int rep = 0; rep < reps; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    matmul_rows(w.data_ptr<float>(), x.data_ptr<float>(), y.data_ptr<float>(), rows, cols, n_vectors);
    const double s = seconds_since(start);
    if (s > 0) rates.push_back(flops / s);
  }
  if (rates.empty()) throw std::runtime_error("matmul_rows timing failed");
  return median(rates);
}

}  // namespace gptfast
