// In-process A/B of the one-vector matvec kernels of several libgptfast.so builds (built and run by
// benchmarks/kernel-ab.sh). This VM class drifts by tens of percent within minutes, so kernels
// built into separate processes do not compare below ~15 %. Here every library is dlopen'ed into
// one process (RTLD_LOCAL | RTLD_DEEPBIND: each keeps its own copy of the kernels), and each round
// runs every library once over the same weights (in huge pages, as the engine stores them), in
// rotated order; the summary gives each library's median GB/s and the median (quartiles) of its
// per-round speed against the first. Pass the baseline twice: two identical libraries have read
// 6-12 % apart in a two-library run, never more than 1-4 % apart beside a third.
//   kernel_ab fp32|bf16|int8|int4 ROWS COLS GROUP COPIES ROUNDS LIB...
// COPIES > 1 stream from memory (e.g. 100 x 1.5 MiB), 1 from cache. GROUP: int4's (else ignored).
#include <dlfcn.h>
#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "matvec.h"

using gptfast::Int4Rows;
using gptfast::Int8Rows;

namespace {
typedef void (*F32)(const float*, const float*, float*, int64_t, int64_t, int64_t, int64_t, int64_t);
typedef void (*B16)(const uint16_t*, const float*, float*, int64_t, int64_t, int64_t, int64_t, int64_t);
typedef void (*I8)(const Int8Rows&, const float*, float*, int64_t, int64_t, int64_t, int64_t, int64_t);
typedef void (*I4)(const Int4Rows&, const float*, float*, int64_t, int64_t, int64_t, int64_t, int64_t);

// Random bytes in 2 MiB huge pages.
void* huge(size_t n) {
  n = (n + (2 << 20) - 1) / (2 << 20) * (2 << 20);
  void* p = aligned_alloc(2 << 20, n);
  if (p == nullptr) {
    std::fprintf(stderr, "out of memory\n");
    std::exit(1);
  }
  madvise(p, n, MADV_HUGEPAGE);
  std::mt19937 g(1);
  for (size_t i = 0; i < n / 4; ++i) static_cast<uint32_t*>(p)[i] = g();
  return p;
}

double now() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 8) {
    std::fprintf(stderr, "usage: %s fp32|bf16|int8|int4 ROWS COLS GROUP COPIES ROUNDS LIB...\n", argv[0]);
    return 2;
  }
  const std::string kind = argv[1];
  const int64_t rows = atol(argv[2]), cols = atol(argv[3]), group = atol(argv[4]), copies = atol(argv[5]),
                rounds = atol(argv[6]);
  const char* symbol = kind == "fp32"   ? "_ZN7gptfast17matmul_rows_rangeEPKfS1_Pflllll"
                       : kind == "bf16" ? "_ZN7gptfast17matmul_rows_rangeEPKtPKfPflllll"
                       : kind == "int8" ? "_ZN7gptfast17matmul_rows_rangeERKNS_8Int8RowsEPKfPflllll"
                       : kind == "int4" ? "_ZN7gptfast17matmul_rows_rangeERKNS_8Int4RowsEPKfPflllll"
                                        : nullptr;
  if (symbol == nullptr || rows < 1 || cols < 1 || copies < 1 || rounds < 1 ||
      (kind == "int4" && (group < 32 || group % 32 != 0 || cols % group != 0))) {
    std::fprintf(stderr, "bad arguments (int4: COLS a multiple of GROUP, GROUP a multiple of 32)\n");
    return 2;
  }
  const int libs = argc - 7;
  std::vector<void*> fn(static_cast<size_t>(libs), nullptr);
  for (int i = 0; i < libs; ++i) {
    void* h = dlopen(argv[7 + i], RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (h == nullptr || (fn[size_t(i)] = dlsym(h, symbol)) == nullptr) {
      std::fprintf(stderr, "%s: %s\n", argv[7 + i], dlerror());
      return 1;
    }
  }
  std::vector<float> x(static_cast<size_t>(cols)), y(static_cast<size_t>(rows)), y0;
  std::mt19937 g(2);
  std::normal_distribution<float> normal;
  for (float& v : x) v = normal(g);
  const size_t bytes = size_t(rows * cols) * (kind == "fp32" ? 4 : kind == "bf16" ? 2 : 1) / (kind == "int4" ? 2 : 1);
  std::vector<void*> w(static_cast<size_t>(copies)), aux(static_cast<size_t>(copies));
  for (int64_t c = 0; c < copies; ++c) {
    w[size_t(c)] = huge(bytes);
    if (kind == "bf16") {  // finite values: bf16 bits of +-1.0..2.0
      auto* p = static_cast<uint16_t*>(w[size_t(c)]);
      for (int64_t i = 0; i < rows * cols; ++i) p[i] = uint16_t(0x3f80 + (p[i] & 0x807f));
    } else if (kind == "int8") {
      auto* s = static_cast<float*>(huge(size_t(rows) * 4));
      for (int64_t i = 0; i < rows; ++i) s[i] = 0.01f;
      aux[size_t(c)] = s;
    } else if (kind == "int4") {
      auto* s = static_cast<uint16_t*>(huge(size_t(rows * cols / group) * 4));
      for (int64_t i = 0; i < rows * cols / group * 2; ++i) s[i] = uint16_t(0x3c00 + i % 7);  // bf16 ~0.008
      aux[size_t(c)] = s;
    } else {  // fp32: small normal-range values
      auto* p = static_cast<uint32_t*>(w[size_t(c)]);
      for (int64_t i = 0; i < rows * cols; ++i) p[i] = 0x3c000000u | (p[i] & 0x807fffffu);
    }
  }
  auto run = [&](int i) {
    for (int64_t c = 0; c < copies; ++c) {
      void* f = fn[size_t(i)];
      if (kind == "fp32") {
        reinterpret_cast<F32>(f)(static_cast<float*>(w[size_t(c)]), x.data(), y.data(), rows, cols, 1, 0, rows);
      } else if (kind == "bf16") {
        reinterpret_cast<B16>(f)(static_cast<uint16_t*>(w[size_t(c)]), x.data(), y.data(), rows, cols, 1, 0, rows);
      } else if (kind == "int8") {
        const Int8Rows q{static_cast<int8_t*>(w[size_t(c)]), static_cast<float*>(aux[size_t(c)])};
        reinterpret_cast<I8>(f)(q, x.data(), y.data(), rows, cols, 1, 0, rows);
      } else {
        const Int4Rows q{static_cast<uint8_t*>(w[size_t(c)]), cols / 2, static_cast<uint16_t*>(aux[size_t(c)]),
                         cols / group * 2, group};
        reinterpret_cast<I4>(f)(q, x.data(), y.data(), rows, cols, 1, 0, rows);
      }
    }
  };
  // The libraries should agree (to rounding: a kernel may sum in another order).
  for (int i = 0; i < libs; ++i) {
    run(i);
    if (i == 0) {
      y0 = y;
      continue;
    }
    double worst = 0, scale = 0;
    for (int64_t r = 0; r < rows; ++r) scale = std::max(scale, double(std::fabs(y0[size_t(r)])));
    for (int64_t r = 0; r < rows; ++r) worst = std::max(worst, double(std::fabs(y[size_t(r)] - y0[size_t(r)])));
    if (worst > 1e-4 * scale) std::printf("%s differs from the first: max |dy| %g of max |y| %g\n", argv[7 + i], worst, scale);
  }
  std::vector<std::vector<double>> seconds(static_cast<size_t>(libs)), speed(static_cast<size_t>(libs));
  for (int64_t r = 0; r < rounds; ++r) {
    std::vector<double> t(static_cast<size_t>(libs));
    for (int j = 0; j < libs; ++j) {
      const int i = int((j + r) % libs);
      const double t0 = now();
      run(i);
      t[size_t(i)] = now() - t0;
      seconds[size_t(i)].push_back(t[size_t(i)]);
    }
    for (int i = 0; i < libs; ++i) speed[size_t(i)].push_back(t[0] / t[size_t(i)]);
  }
  for (int i = 0; i < libs; ++i) {
    std::vector<double> s = seconds[size_t(i)], v = speed[size_t(i)];
    std::sort(s.begin(), s.end());
    std::sort(v.begin(), v.end());
    std::printf("%-40s %s %ldx%ld x%ld: %.1f GB/s (median), speed vs first %.3f [%.3f..%.3f]\n", argv[7 + i],
                kind.c_str(), long(rows), long(cols), long(copies), double(bytes * size_t(copies)) / s[s.size() / 2] / 1e9,
                v[v.size() / 2], v[v.size() / 4], v[3 * v.size() / 4]);
  }
  return 0;
}
