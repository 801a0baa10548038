#include "matvec.h"

#include <ATen/Parallel.h>

#include <algorithm>

namespace gptfast {

namespace {

inline float widen(float w) { return w; }
inline float widen(uint16_t w) { return bf16_to_float(w); }

// Kernels are templates on the weight type (fp32 or bf16 bits) and are cloned per ISA: the
// dynamic loader picks the best the CPU supports (GCC function multiversioning), so the library
// stays portable without -march flags.

// One vector (plain decoding): one row at a time, the weights streamed straight through.
template <class W>
__attribute__((always_inline)) inline void single_vector(const W* w, const float* x, float* y, int64_t begin,
                                                         int64_t end, int64_t cols) {
  for (int64_t r = begin; r < end; ++r) {
    const W* row = w + r * cols;
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int64_t c = 0; c < cols; ++c) acc += widen(row[c]) * x[c];
    y[r] = acc;
  }
}

// Several vectors (a verify pass, a batch): rows go four at a time, so four independent
// accumulators keep the multiply-add pipeline busy and each chunk of a vector is loaded once for
// four rows; the four rows stay in L1 while the vectors go by, so the weights are streamed once.
template <class W>
__attribute__((always_inline)) inline void multi_vector(const W* w, const float* x, float* y, int64_t begin,
                                                        int64_t end, int64_t rows, int64_t cols, int64_t n_vectors) {
  int64_t r = begin;
  for (; r + 4 <= end; r += 4) {
    const W* w0 = w + r * cols;
    const W* w1 = w0 + cols;
    const W* w2 = w1 + cols;
    const W* w3 = w2 + cols;
    for (int64_t t = 0; t < n_vectors; ++t) {
      const float* xt = x + t * cols;
      float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
      for (int64_t c = 0; c < cols; ++c) {
        const float xc = xt[c];
        a0 += widen(w0[c]) * xc;
        a1 += widen(w1[c]) * xc;
        a2 += widen(w2[c]) * xc;
        a3 += widen(w3[c]) * xc;
      }
      float* yt = y + t * rows + r;
      yt[0] = a0;
      yt[1] = a1;
      yt[2] = a2;
      yt[3] = a3;
    }
  }
  for (; r < end; ++r) {
    for (int64_t t = 0; t < n_vectors; ++t) single_vector(w, x + t * cols, y + t * rows, r, r + 1, cols);
  }
}

__attribute__((target_clones("arch=skylake-avx512", "arch=haswell", "default")))
void single_f32(const float* w, const float* x, float* y, int64_t begin, int64_t end, int64_t cols) {
  single_vector(w, x, y, begin, end, cols);
}
__attribute__((target_clones("arch=skylake-avx512", "arch=haswell", "default")))
void single_bf16(const uint16_t* w, const float* x, float* y, int64_t begin, int64_t end, int64_t cols) {
  single_vector(w, x, y, begin, end, cols);
}
__attribute__((target_clones("arch=skylake-avx512", "arch=haswell", "default")))
void multi_f32(const float* w, const float* x, float* y, int64_t begin, int64_t end, int64_t rows, int64_t cols,
               int64_t n) {
  multi_vector(w, x, y, begin, end, rows, cols, n);
}
__attribute__((target_clones("arch=skylake-avx512", "arch=haswell", "default")))
void multi_bf16(const uint16_t* w, const float* x, float* y, int64_t begin, int64_t end, int64_t rows, int64_t cols,
                int64_t n) {
  multi_vector(w, x, y, begin, end, rows, cols, n);
}

inline void kernel(const float* w, const float* x, float* y, int64_t b, int64_t e, int64_t rows, int64_t cols,
                   int64_t n, bool multi) {
  if (multi) multi_f32(w, x, y, b, e, rows, cols, n);
  else for (int64_t t = 0; t < n; ++t) single_f32(w, x + t * cols, y + t * rows, b, e, cols);
}
inline void kernel(const uint16_t* w, const float* x, float* y, int64_t b, int64_t e, int64_t rows, int64_t cols,
                   int64_t n, bool multi) {
  if (multi) multi_bf16(w, x, y, b, e, rows, cols, n);
  else for (int64_t t = 0; t < n; ++t) single_bf16(w, x + t * cols, y + t * rows, b, e, cols);
}

template <class W>
void matmul(const W* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors) {
  // ~32K multiply-adds per task, in whole 4-row blocks: below that, threading costs more than it saves.
  int64_t grain = std::max<int64_t>(4, 32768 / std::max<int64_t>(cols * n_vectors, 1));
  grain = (grain + 3) / 4 * 4;
  // Measured on a 126M-weight fp32 pass: 1 vector 15.5 ms, 2 in the four-row kernel 37.8 ms but 31 ms
  // as two single passes, 5 vectors 52 ms (70 ms as single passes): below 4 vectors go one by one.
  const bool multi = n_vectors >= 4;
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    kernel(w, x, y, begin, end, rows, cols, n_vectors, multi);
  });
}

}  // namespace

void matmul_rows(const float* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors) {
  matmul(w, x, y, rows, cols, n_vectors);
}

void matmul_rows(const uint16_t* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors) {
  matmul(w, x, y, rows, cols, n_vectors);
}

}  // namespace gptfast
