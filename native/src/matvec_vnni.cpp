// int8 weights x one fp32 vector with AVX-512 VNNI (compiled with its flags; matvec.cpp calls it
// only where the CPU has them). See matvec_vnni.h for the arithmetic.
#include "matvec_vnni.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

namespace gptfast {
namespace vnni {

bool to_digits(const float* x, int64_t cols, int8_t* digits, int64_t ld, Int8Digits& out) {
  // max |x|, and x * 0 summed, which is NaN exactly when some x is an infinity or a NaN
  __m512 max = _mm512_setzero_ps(), poison = _mm512_setzero_ps();
  for (int64_t c = 0; c < cols; c += 16) {
    const __m512 v = _mm512_maskz_loadu_ps(__mmask16(cols - c >= 16 ? 0xffff : (1u << (cols - c)) - 1), x + c);
    max = _mm512_max_ps(max, _mm512_abs_ps(v));
    poison = _mm512_fmadd_ps(v, _mm512_setzero_ps(), poison);
  }
  if (std::isnan(_mm512_reduce_add_ps(poison))) return false;
  int exponent = 0;
  std::frexp(_mm512_reduce_max_ps(max), &exponent);  // max < 2^exponent
  out.exponent = exponent - kFixedBits;
  // 2^-exponent as an fp32 (all but x under ~1e-29 everywhere; those take the fp32 kernel)
  if (-out.exponent > 127) return false;
  out.digits = digits;
  out.ld = ld;
  out.unit = std::ldexp(1.0, out.exponent);
  // 16 columns a step: fixed = x * 2^-exponent (exact) rounded to nearest, |fixed| <= 2^kFixedBits.
  // Each digit is the low byte of what is left, read as signed (-128..127), and (fixed - digit)
  // / 256 is exact, so the top digit stays within -128..127 too.
  const __m512 scale = _mm512_set1_ps(std::ldexp(1.0f, -out.exponent));
  __m512i sums[kDigits];
  for (auto& v : sums) v = _mm512_setzero_si512();
  for (int64_t c = 0; c < ld; c += 16) {
    const int64_t n = std::min<int64_t>(16, std::max<int64_t>(0, cols - c));
    const __m512 xs = _mm512_maskz_loadu_ps(__mmask16((1u << n) - 1), x + c);
    __m512i fixed = _mm512_cvtps_epi32(_mm512_mul_ps(xs, scale));
#pragma GCC unroll 4
    for (int k = 0; k < kDigits; ++k) {
      const __m512i d = _mm512_srai_epi32(_mm512_slli_epi32(fixed, 24), 24);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(digits + k * ld + c), _mm512_cvtepi32_epi8(d));
      sums[k] = _mm512_add_epi32(sums[k], d);
      fixed = _mm512_srai_epi32(_mm512_sub_epi32(fixed, d), 8);
    }
  }
  out.offset = 0;  // sum (q + 128) * fixed - sum q * fixed
  for (int k = kDigits - 1; k >= 0; --k) {
    out.digit_sums[k] = _mm512_reduce_add_epi32(sums[k]);  // |sum| <= 128 * kMaxCols
    out.offset = out.offset * 256 + 128 * out.digit_sums[k];
  }
  return true;
}

// kRows rows at a time against each load of the digits (as many bytes as fp32 x). Each row: the
// weights as unsigned bytes (q + 128, one XOR per 64), one vpdpbusd per digit per 64 columns into
// 16 int32 lanes (4 products a lane). The int32 sums cannot overflow: |q + 128| <= 255, |digit|
// <= 128 and cols <= kMaxCols. The remainder (cols % 64) is read with a masked load, which cannot
// fault past the matrix; the digits there are zero.
// Measured on Zen 4 (134M int8 decode, 1 thread): 4 rows 160-170 tok/s, 2 rows 90-107, 1 row
// 150-175 (the fp32-widening kernel: 128-165). Rows side by side are streams the hardware
// prefetcher does not follow (4 rows without software prefetch: 7 GB/s from memory), so the next
// block of kRows rows is requested in address order, kRows lines per step (two blocks ahead: no
// better).
namespace {
constexpr int kRows = 4;
constexpr int64_t kAheadBlocks = 1;

template <int R>
__attribute__((always_inline)) inline void rows(const Int8Rows& w, const Int8Digits& x, float* y, int64_t r0,
                                                int64_t cols) {
  const __m512i flip = _mm512_set1_epi8(char(0x80));
  const int8_t* d = x.digits;
  const int64_t ld = x.ld;
  __m512i acc[R][kDigits];
#pragma GCC unroll 4
  for (int i = 0; i < R; ++i) {
#pragma GCC unroll 4
    for (int k = 0; k < kDigits; ++k) acc[i][k] = _mm512_setzero_si512();
  }
  const int8_t* row = w.q + r0 * cols;
  for (int64_t c = 0; c < cols; c += 64) {
    // whole steps load plainly (a masked byte load is slower); the last, partial one masked
    const bool partial = c + 64 > cols;
    const __mmask64 mask = partial ? ~uint64_t(0) >> (64 - cols % 64) : 0;
    __m512i digit[kDigits];
#pragma GCC unroll 4
    for (int k = 0; k < kDigits; ++k) digit[k] = _mm512_loadu_si512(d + k * ld + c);
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) {
      const int8_t* p = row + i * cols + c;
      _mm_prefetch(reinterpret_cast<const char*>(row) + (kAheadBlocks * cols + c) * R + 64 * i, _MM_HINT_T0);
      const __m512i u = _mm512_xor_si512(partial ? _mm512_maskz_loadu_epi8(mask, p) : _mm512_loadu_si512(p), flip);
#pragma GCC unroll 4
      for (int k = 0; k < kDigits; ++k) acc[i][k] = _mm512_dpbusd_epi32(acc[i][k], u, digit[k]);
    }
  }
  // sum q * fixed = sum_k 256^k sum (q + 128) * digit_k - offset: per lane in double (each
  // lane's sum is an integer below 2^50, exact), then across lanes
#pragma GCC unroll 4
  for (int i = 0; i < R; ++i) {
    __m512d lanes[2];
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      __m512d t = _mm512_setzero_pd();
#pragma GCC unroll 4
      for (int k = kDigits - 1; k >= 0; --k) {
        const __m256i half = h ? _mm512_extracti64x4_epi64(acc[i][k], 1) : _mm512_castsi512_si256(acc[i][k]);
        t = _mm512_fmadd_pd(t, _mm512_set1_pd(256.0), _mm512_cvtepi32_pd(half));
      }
      lanes[h] = t;
    }
    const double total = _mm512_reduce_add_pd(_mm512_add_pd(lanes[0], lanes[1])) - double(x.offset);
    y[r0 + i] = float(total * x.unit * double(w.scales[r0 + i]));
  }
}
}  // namespace

void single(const Int8Rows& w, const Int8Digits& x, float* y, int64_t begin, int64_t end, int64_t cols) {
  int64_t r = begin;
  for (; r + kRows <= end; r += kRows) rows<kRows>(w, x, y, r, cols);
  for (; r < end; ++r) rows<1>(w, x, y, r, cols);
}

}  // namespace vnni
}  // namespace gptfast
