// Entry points of the CPU kernels, one namespace per ISA build of matvec_kernels.inc: rows [b, e)
// of y = W x for n vectors (multi: blocked, single: one vector), and the decode step's other loops. Internal to matvec.cpp, which checks the CPU before calling one.
#pragma once

#include <cstdint>

#include "matvec.h"

namespace gptfast {

// From this many vectors on, int4 goes through dequantized tiles; below it, through the nibble
// lanes whenever x has them (only the tiles and the fallback read even/odd).
constexpr int64_t kInt4TileMinVectors = 4;

// The vectors prepared for the int4 kernels (by matvec.cpp, once per call): x[t][2j] and x[t][2j+1]
// split into even[t * half + j] and odd[t * half + j] (zero past cols; nullptr when the lanes
// serve, see kInt4TileMinVectors), and the sum of x[t] over
// each group of columns, group_sums[t * groups + g]. half = groups * group / 2.
// `lanes` (nullptr when the padded width 2 * half is not a multiple of 8 * lane_width): x in the
// order the nibble-lane kernel consumes it. Per chunk of 8 * lane_width columns, 8 vectors of
// lane_width floats: vector k, lane j holds x[t][c0 + 8j + (k ^ 1)] * 2^(-4 (k % 4)) * p[t] (lane
// j of a packed row's chunk is one 32-bit word: 8 nibbles, nibble k = column 8j + (k ^ 1)), with
// p[t] = 1 when converting nibbles and 2^(149 - S[t]) when reading them as subnormals. Vector t
// starts at lanes + t * 2 * half. lane_sums: per unit of u = max(group, 8 * lane_width) columns,
// lane_width floats: lane j holds the group sum of the group lane j reads, divided by the lanes
// that read it (a power of two: exact), times 2^-S[t]; vector t starts at
// lane_sums + t * (2 * half / u) * lane_width. lane_unscale[t] = 2^S[t] (S = 0 when converting).
struct Int4Vectors {
  const float* even;
  const float* odd;
  const float* group_sums;
  int64_t half, groups;
  const float* lanes;
  const float* lane_sums;
  int64_t lane_width;
  // Per vector, the power of two each row's lane sum is multiplied by (see prepare_int4).
  const float* lane_unscale;
  bool subnormal;  // the kernel reads nibbles as subnormal floats (Int4Lanes::subnormal)
};

#define GPTFAST_DECLARE_KERNELS(isa)                                                                            \
  namespace isa {                                                                                              \
  void multi(const float* w, const float* x, float* y, int64_t b, int64_t e, int64_t rows, int64_t cols,      \
             int64_t n);                                                                                       \
  void multi(const uint16_t* w, const float* x, float* y, int64_t b, int64_t e, int64_t rows, int64_t cols,   \
             int64_t n);                                                                                       \
  void multi(const Int8Rows& w, const float* x, float* y, int64_t b, int64_t e, int64_t rows, int64_t cols,   \
             int64_t n);                                                                                       \
  void multi(const Int4Rows& w, const Int4Vectors& x, float* y, int64_t b, int64_t e, int64_t rows,         \
             int64_t n);                                                                                       \
  void single(const float* w, const float* x, float* y, int64_t b, int64_t e, int64_t cols);                  \
  void single(const uint16_t* w, const float* x, const float* x_even, const float* x_odd, float* y, int64_t b, \
              int64_t e, int64_t cols);                                                                        \
  void single(const Int8Rows& w, const float* x, float* y, int64_t b, int64_t e, int64_t cols);             \
  void exp_shifted(float* v, int64_t n, float shift);                                                          \
  void attend(const float* q, const float* k, const float* v, int64_t hd, int64_t last, float scale, float* out); \
  void attend(const float* q, const uint16_t* k, const uint16_t* v, int64_t hd, int64_t last, float scale,     \
              float* out);                                                                                     \
  float sum_floats(const float* p, int64_t n);                                                                 \
  }

GPTFAST_DECLARE_KERNELS(kernels_baseline)
GPTFAST_DECLARE_KERNELS(kernels_avx2)
GPTFAST_DECLARE_KERNELS(kernels_avx512)
GPTFAST_DECLARE_KERNELS(kernels_avx512_shape)

#undef GPTFAST_DECLARE_KERNELS

}  // namespace gptfast
