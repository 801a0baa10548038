// int8 and int4 weights x one fp32 vector on AVX-512 VNNI (vpdpbusd: bytes x bytes summed into
// int32), without rounding the activations to int8. x is written in fixed point, fixed = x *
// 2^-exponent rounded to an integer of kFixedBits bits (exponent set by max |x|), and fixed in
// kDigits signed base-256 digits; sum q * fixed is then exact integer arithmetic, one vpdpbusd
// per digit per 64 int8 weights, where widening each weight to fp32 took three ops per 8 (the
// int8 decode ceiling, ~25 GB/s a core on Zen 4). The one approximation is x's fixed point: each
// x off by at most 2^(exponent - 1) <= 2^-kFixedBits max |x|, so |error| <= 2^-30 max |x| sum
// |q| |scale| plus the final rounding to fp32 (int4: plus one fp32 rounding per 8 columns):
// finer than fp32 accumulation (the kernel tests' 1e-5 bound). Internal to matvec.cpp.
#pragma once

#include <cstdint>

#include "matvec.h"

namespace gptfast {
namespace vnni {

constexpr int kDigits = 4;
constexpr int kFixedBits = 30;
// Longest row: the int32 lane sums hold 255 * 128 * cols / 16 * 4 and a row's total
// 255 * 128 * cols without overflow.
constexpr int64_t kMaxCols = int64_t(1) << 15;

// Whether a rows x cols matrix takes this kernel: short rows spend more on each row's final sum
// and on x's digits than they save (stories260K's 64- and 172-column rows decoded 20 % slower).
// Decided per matrix, not per range of rows, so a row's result does not depend on the split.
inline bool worth_it(int64_t rows, int64_t cols) { return cols >= 256 && cols <= kMaxCols && rows >= 64; }
// int4 takes it for GPT-Fast's group sizes (the kernel is compiled for each).
inline bool int4_group(int64_t group) { return group == 32 || group == 64 || group == 128 || group == 256; }

constexpr int64_t kInt8StepBytes = kDigits * 64;
struct Int8Digits {
  // Per 64 columns (kInt8StepBytes), their kDigits digits (least significant first) in 64 bytes
  // each, one after the other, zero past cols: one stream. (Four digit rows of ld bytes each were
  // 4 KiB apart at 4,096 columns; one stream read long rows 0-10 % faster from memory on Zen 5.)
  const int8_t* digits;
  int64_t ld;  // cols rounded up to 64 (the buffer holds kDigits * ld bytes)
  int64_t digit_sums[kDigits];
  int64_t offset;  // sum_k 256^k * 128 * digit_sums[k]: what the weights' + 128 adds to a row's sum
  int exponent;  // x = fixed * 2^exponent
  double unit;   // 2^exponent
};

// int4 (w = (nibble - 8) * scale + zero per group, Int4Rows): the nibbles are unsigned bytes
// already, so each 64 bytes of a row (128 columns) are two vpdpbusd per digit, the high nibbles
// (even columns) against the even columns' digits and the low against the odd; each step's 16
// lanes (8 columns each, within one group) are converted to fp32 and multiplied by their group's
// scale; (zero - 8 scale) * the group's sum of x is added once per row and group.
struct Int4Digits {
  // Per 64-byte step of a row (128 columns), 8 x 64 bytes in the order the kernel reads them:
  // digit k of the even columns x[0], x[2], ... at (2k) * 64, of the odd ones at (2k + 1) * 64
  // (zero past cols), so one pointer walks them.
  const int8_t* digits;
  int64_t steps;         // the padded row's bytes / 64 (int4_digits_ld / 64)
  const float* group_x;  // each group's sum of x
  double unit;           // 2^exponent
};
constexpr int64_t kInt4StepBytes = 2 * kDigits * 64;
// Buffers: digits 2 * kDigits * ld bytes, group_x 2 * ld / group floats, ld = int4_digits_ld(cols, group).
inline int64_t int4_digits_ld(int64_t cols, int64_t group) {
  return ((cols + group - 1) / group * group / 2 + 63) / 64 * 64;
}
bool to_digits(const float* x, int64_t cols, int64_t group, int8_t* digits, float* group_x, Int4Digits& out);
void single(const Int4Rows& w, const Int4Digits& x, float* y, int64_t begin, int64_t end, int64_t cols);

// x [cols] -> digits (kDigits * ld bytes, ld >= cols, a multiple of 64). False when x holds an
// infinity or NaN (the fp32 kernel then gives the IEEE result).
bool to_digits(const float* x, int64_t cols, int8_t* digits, int64_t ld, Int8Digits& out);
// y[r] = scales[r] * sum_c q[r][c] x[c] for rows [begin, end); cols <= kMaxCols.
void single(const Int8Rows& w, const Int8Digits& x, float* y, int64_t begin, int64_t end, int64_t cols);

}  // namespace vnni
}  // namespace gptfast
