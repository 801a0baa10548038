// Entry points of the blocked kernels, one namespace per ISA build of matvec_kernels.inc; rows
// [b, e) of y = W x for n vectors. Internal to matvec.cpp, which checks the CPU before calling one.
#pragma once

#include <cstdint>

#include "matvec.h"

namespace gptfast {

#define GPTFAST_DECLARE_KERNELS(isa)                                                                            \
  namespace isa {                                                                                              \
  void multi(const float* w, const float* x, float* y, int64_t b, int64_t e, int64_t rows, int64_t cols,      \
             int64_t n);                                                                                       \
  void multi(const uint16_t* w, const float* x, float* y, int64_t b, int64_t e, int64_t rows, int64_t cols,   \
             int64_t n);                                                                                       \
  void multi(const Int8Rows& w, const float* x, float* y, int64_t b, int64_t e, int64_t rows, int64_t cols,   \
             int64_t n);                                                                                       \
  void multi(const Int4Rows& w, const float* x, float* y, int64_t b, int64_t e, int64_t rows, int64_t cols,   \
             int64_t n);                                                                                       \
  }

GPTFAST_DECLARE_KERNELS(kernels_baseline)
GPTFAST_DECLARE_KERNELS(kernels_avx2)
GPTFAST_DECLARE_KERNELS(kernels_avx512)
GPTFAST_DECLARE_KERNELS(kernels_avx512_shape)

#undef GPTFAST_DECLARE_KERNELS

}  // namespace gptfast
