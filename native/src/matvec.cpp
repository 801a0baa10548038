#include "matvec.h"

#include <ATen/Parallel.h>

namespace gptfast {

namespace {

// One clone per ISA; the dynamic loader picks the best the CPU supports (GCC function
// multiversioning), so the library stays portable without -march flags.
__attribute__((target_clones("arch=skylake-avx512", "arch=haswell", "default")))
void matvec_rows(const float* w, const float* x, float* y, int64_t begin, int64_t end, int64_t cols) {
  for (int64_t r = begin; r < end; ++r) {
    const float* row = w + r * cols;
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int64_t c = 0; c < cols; ++c) acc += row[c] * x[c];
    y[r] = acc;
  }
}

}  // namespace

void matvec(const float* w, const float* x, float* y, int64_t rows, int64_t cols) {
  // ~32K multiply-adds per task: below that, threading costs more than it saves.
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(cols, 1));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) { matvec_rows(w, x, y, begin, end, cols); });
}

}  // namespace gptfast
