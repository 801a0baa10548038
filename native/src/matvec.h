// fp32 products with a row-major weight matrix W [rows, cols] for the fused decode step:
// y[t] = W x[t] for a few vectors t at once. Each weight row is read once for all vectors, so
// verifying k+1 speculative tokens streams the weights once, like a single decode step.
// Compiled for several ISAs (AVX-512, AVX2+FMA, baseline) with the best picked at load time;
// rows are split across libtorch's intra-op threads. Allocation-free.
#pragma once

#include <cstdint>

namespace gptfast {

// x: [n_vectors, cols], y: [n_vectors, rows]. Weights fp32, or bf16 (raw uint16 bits, widened to
// fp32 as they are read: half the memory traffic, fp32 arithmetic).
void matmul_rows(const float* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors);
void matmul_rows(const uint16_t* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors);

inline float bf16_to_float(uint16_t bits) {
  const uint32_t wide = uint32_t(bits) << 16;
  float f;
  __builtin_memcpy(&f, &wide, sizeof(f));
  return f;
}

}  // namespace gptfast
