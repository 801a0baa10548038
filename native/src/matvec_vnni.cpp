// int8 and int4 weights x one fp32 vector with AVX-512 VNNI (compiled with its flags; matvec.cpp
// calls it only where the CPU has them). See matvec_vnni.h for the arithmetic.
#include "matvec_vnni.h"

// GCC 12's AVX-512 intrinsics (reductions, masked loads, casts) read _mm*_undefined_*() values,
// which -W(maybe-)uninitialized reports at each inlined use (fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

namespace gptfast {
namespace vnni {

namespace {
// The fixed point's exponent: max |x| < 2^(exponent + kFixedBits). False when x holds an
// infinity or a NaN, or only values under ~1e-29 (2^-exponent past fp32's range); the fp32
// kernels take those.
bool fixed_exponent(const float* x, int64_t cols, int& exponent) {
  // max |x|, and x * 0 summed, which is NaN exactly when some x is an infinity or a NaN
  __m512 max = _mm512_setzero_ps(), poison = _mm512_setzero_ps();
  for (int64_t c = 0; c < cols; c += 16) {
    const __m512 v = _mm512_maskz_loadu_ps(__mmask16(cols - c >= 16 ? 0xffff : (1u << (cols - c)) - 1), x + c);
    max = _mm512_max_ps(max, _mm512_abs_ps(v));
    poison = _mm512_fmadd_ps(v, _mm512_setzero_ps(), poison);
  }
  if (std::isnan(_mm512_reduce_add_ps(poison))) return false;
  int e = 0;
  std::frexp(_mm512_reduce_max_ps(max), &e);  // max < 2^e
  exponent = e - kFixedBits;
  return -exponent <= 127;
}

// fixed (16 lanes) -> its kDigits digits at out + k * ld (16 bytes each), summed into sums.
__attribute__((always_inline)) inline void write_digits(__m512i fixed, int8_t* out, int64_t ld, __m512i* sums) {
  // Each digit is the low byte of what is left, read as signed (-128..127), and (fixed -
  // digit) / 256 is exact, so the top digit stays within -128..127 too.
#pragma GCC unroll 4
  for (int k = 0; k < kDigits; ++k) {
    const __m512i d = _mm512_srai_epi32(_mm512_slli_epi32(fixed, 24), 24);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + k * ld), _mm512_cvtepi32_epi8(d));
    if (sums) sums[k] = _mm512_add_epi32(sums[k], d);
    fixed = _mm512_srai_epi32(_mm512_sub_epi32(fixed, d), 8);
  }
}

// 16 of x from p (n of them, zeros after) in fixed point: x * 2^-exponent (exact) rounded to
// nearest, |fixed| <= 2^kFixedBits.
__attribute__((always_inline)) inline __m512i fixed16(const float* p, int64_t n, __m512 scale) {
  const __m512 v = _mm512_maskz_loadu_ps(__mmask16(n >= 16 ? 0xffff : (1u << std::max<int64_t>(n, 0)) - 1), p);
  return _mm512_cvtps_epi32(_mm512_mul_ps(v, scale));
}
}  // namespace

bool to_digits(const float* x, int64_t cols, int8_t* digits, int64_t ld, Int8Digits& out) {
  if (!fixed_exponent(x, cols, out.exponent)) return false;
  out.digits = digits;
  out.ld = ld;
  out.unit = std::ldexp(1.0, out.exponent);
  const __m512 scale = _mm512_set1_ps(std::ldexp(1.0f, -out.exponent));
  __m512i sums[kDigits];
  for (auto& v : sums) v = _mm512_setzero_si512();
  for (int64_t c = 0; c < ld; c += 16) {
    write_digits(fixed16(x + c, cols - c, scale), digits + c / 64 * kInt8StepBytes + c % 64, 64, sums);
  }
  out.offset = 0;  // sum (q + 128) * fixed - sum q * fixed
  for (int k = kDigits - 1; k >= 0; --k) {
    out.digit_sums[k] = _mm512_reduce_add_epi32(sums[k]);  // |sum| <= 128 * kMaxCols
    out.offset = out.offset * 256 + 128 * out.digit_sums[k];
  }
  return true;
}

bool to_digits(const float* x, int64_t cols, int64_t group, int8_t* digits, float* group_x, Int4Digits& out) {
  int exponent = 0;
  if (!fixed_exponent(x, cols, exponent)) return false;
  const int64_t ld = int4_digits_ld(cols, group);
  out.digits = digits;
  out.steps = ld / 64;
  out.group_x = group_x;
  out.unit = std::ldexp(1.0, exponent);
  const __m512 scale = _mm512_set1_ps(std::ldexp(1.0f, -exponent));
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  for (int64_t j = 0; j < ld; j += 16) {  // column pairs j..j+15: columns 2j..2j+31
    const __m512i a = fixed16(x + 2 * j, cols - 2 * j, scale), b = fixed16(x + 2 * j + 16, cols - 2 * j - 16, scale);
    int8_t* step = digits + j / 64 * kInt4StepBytes + j % 64;
    write_digits(_mm512_permutex2var_epi32(a, even, b), step, 128, nullptr);
    write_digits(_mm512_permutex2var_epi32(a, odd, b), step + 64, 128, nullptr);
  }
  // each group's sum of x (zero past cols), for the zero points: sum_g (zero - 8 scale) * sum
  const int64_t groups = 2 * ld / group;
  for (int64_t g = 0; g < groups; ++g) {
    double sum = 0;
    for (int64_t c = g * group; c < std::min(cols, (g + 1) * group); ++c) sum += double(x[c]);
    group_x[g] = float(sum);
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
// block of kRows rows (or, for short rows, the block kAheadBytes on) is requested in address
// order, kRows lines per step. Long rows too: on Zen 5, 4,096-16,384 columns without the request
// read 15-18 GB/s from memory against 30-36 for rows under 4,096, and 25-36 with it. (On Zen 4,
// with the digits then in rows of ld bytes, long rows had done better without it: 13-15 -> 15-18
// GB/s; unmeasured there since.)
namespace {
constexpr int kRows = 4;
// Requests go at least kAheadBytes ahead, in whole blocks of rows (block_bytes each). One block
// of four 768-column int4 rows is 1.5 KiB, about 60 ns of the stream at 26 GB/s, less than a
// memory latency: on Zen 5 the rows' loads then waited (a fifth of the kernel's samples), and
// 3, 6 and 12 KiB ahead read 768-column rows from memory at 28-29, 30-32 and 31-33 GB/s against
// 24-26 (int4), 29-30 -> 34-36 (int8); 134M int4:32 decode on one thread 279-286 -> 335 tok/s.
constexpr int64_t kAheadBytes = 6144;
inline int64_t blocks_ahead(int64_t block_bytes) {  // block_bytes > 0 (worth_it: cols >= 256)
  return std::max<int64_t>(1, (kAheadBytes + block_bytes - 1) / block_bytes);
}

template <int R>
__attribute__((always_inline)) inline void rows(const Int8Rows& w, const Int8Digits& x, float* y, int64_t r0,
                                                int64_t cols) {
  const __m512i flip = _mm512_set1_epi8(char(0x80));
  const int8_t* d = x.digits;
  __m512i acc[R][kDigits];
#pragma GCC unroll 4
  for (int i = 0; i < R; ++i) {
#pragma GCC unroll 4
    for (int k = 0; k < kDigits; ++k) acc[i][k] = _mm512_setzero_si512();
  }
  const int8_t* row = w.q + r0 * cols;
  const char* ahead = reinterpret_cast<const char*>(row) + blocks_ahead(R * cols) * R * cols;
  for (int64_t c = 0; c < cols; c += 64) {
    // whole steps load plainly (a masked byte load is slower); the last, partial one masked
    const bool partial = c + 64 > cols;
    const __mmask64 mask = partial ? ~uint64_t(0) >> (64 - cols % 64) : 0;
    __m512i digit[kDigits];
#pragma GCC unroll 4
    for (int k = 0; k < kDigits; ++k) digit[k] = _mm512_loadu_si512(d + c / 64 * kInt8StepBytes + 64 * k);
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) {
      const int8_t* p = row + i * cols + c;
      _mm_prefetch(ahead + R * c + 64 * i, _MM_HINT_T0);
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

namespace {
// Rows r0 .. r0 + R - 1 of the int4 product, groups of G columns. Per 64-byte step, each digit's
// nibbles x digits in int32 lanes (two vpdpbusd: 8 products of <= 15 * 128 a lane), the top two
// digits and the bottom two joined exactly in int32 (the lower's sums accumulate onto the
// higher's times 256), the pair joined in fp32 (one rounding, as fp32 accumulation has) and
// multiplied by the lane's group scale. The zero points, sum_g (zero - 8 scale) sum_g x, once
// per row over its groups.
// The steps inside the row and its groups take plain loads and no per-step tests; the scalar
// work of the general step (group index, masks, per-row addresses) had cost a quarter of the
// time on Zen 5 (its vector pipes are not the bound: two vpdpbusd a cycle). A tail step, where
// the row's bytes or groups end within it, is read with masked loads (which cannot fault past
// the matrix).
template <int R, int G>
__attribute__((always_inline)) inline void rows4(const Int4Rows& w, const Int4Digits& x, float* y, int64_t r0,
                                                 int64_t cols) {
  static_assert(G == 32 || G == 64 || G == 128 || G == 256, "GPT-Fast's group sizes");
  constexpr int kLanesPerGroup = G / 8 < 16 ? G / 8 : 16;  // lane l: columns 8 l .. 8 l + 7 of the step
  constexpr int kPairsPerStep = G <= 128 ? 128 / G : 1;
  constexpr int kGroupShift = __builtin_ctz(G);
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const __m512i top = _mm512_set1_epi32(int32_t(0xffff0000u));
  const __m512i pick = _mm512_srli_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                         __builtin_ctz(kLanesPerGroup));
  const int64_t groups = (cols + G - 1) / G, steps = x.steps;
  const int64_t row_bytes = std::min(w.ld, 64 * steps);
  // steps whose 64 bytes and whose groups all lie within the row
  const int64_t whole = std::min(row_bytes / 64, G <= 128 ? groups / kPairsPerStep : 2 * groups);
  const uint8_t* q[R];
  const uint16_t* sz[R];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
    q[i] = w.q + (r0 + i) * w.ld;
    sz[i] = w.scale_zero + (r0 + i) * w.sz_ld;
  }
  // the next block of R rows, requested in address order, R lines per step
  const char* ahead = reinterpret_cast<const char*>(w.q + (r0 + blocks_ahead(R * w.ld) * R) * w.ld);
  __m512 facc[R];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) facc[i] = _mm512_setzero_ps();
  const auto step = [&](int64_t s, auto tail) {
    constexpr bool kTail = decltype(tail)::value;
    const int64_t c = 64 * s, g0 = (128 * s) >> kGroupShift;
    const int8_t* d = x.digits + s * kInt4StepBytes;
    __m512i de[kDigits], dd[kDigits];
#pragma GCC unroll 4
    for (int k = 0; k < kDigits; ++k) {
      de[k] = _mm512_loadu_si512(d + 128 * k);
      dd[k] = _mm512_loadu_si512(d + 128 * k + 64);
    }
    __mmask64 bytes = 0;
    __mmask8 pairs = 0;
    if constexpr (kTail) {
      const int64_t left = row_bytes - c;
      bytes = left >= 64 ? ~uint64_t(0) : left <= 0 ? 0 : ~uint64_t(0) >> (64 - left);
      pairs = __mmask8((1u << std::max<int64_t>(0, std::min<int64_t>(kPairsPerStep, groups - g0))) - 1);
    }
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      _mm_prefetch(ahead + R * c + 64 * i, _MM_HINT_T0);
      const __m512i b = kTail ? _mm512_maskz_loadu_epi8(bytes, q[i] + c) : _mm512_loadu_si512(q[i] + c);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(b, 4), low4), lo = _mm512_and_si512(b, low4);
      const auto dot = [&](__m512i acc, int k) {
        return _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(acc, hi, de[k]), lo, dd[k]);
      };
      const __m512i high = dot(_mm512_slli_epi32(dot(_mm512_setzero_si512(), 3), 8), 2);  // |.| < 2^22
      const __m512i low = dot(_mm512_slli_epi32(dot(_mm512_setzero_si512(), 1), 8), 0);
      const __m512 t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(high), _mm512_set1_ps(65536.0f), _mm512_cvtepi32_ps(low));
      // the step's (scale, zero) words to their lanes; the scale is the low half
      const uint16_t* z = sz[i] + 2 * g0;
      __m512i words;
      if constexpr (kTail) {
        words = _mm512_permutexvar_epi32(pick, _mm512_castsi128_si512(_mm_maskz_loadu_epi32(pairs, z)));
      } else if constexpr (kPairsPerStep == 4) {
        words = _mm512_permutexvar_epi32(pick, _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(z))));
      } else if constexpr (kPairsPerStep == 2) {
        words = _mm512_permutexvar_epi32(pick, _mm512_castsi128_si512(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(z))));
      } else {
        int32_t word;
        __builtin_memcpy(&word, z, sizeof(word));
        words = _mm512_set1_epi32(word);
      }
      facc[i] = _mm512_fmadd_ps(t, _mm512_castsi512_ps(_mm512_slli_epi32(words, 16)), facc[i]);
    }
  };
  int64_t s = 0;
  for (; s < whole; ++s) step(s, std::false_type{});
  for (; s < steps; ++s) step(s, std::true_type{});
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
    __m512 macc = _mm512_setzero_ps();
    for (int64_t g = 0; g < groups; g += 16) {
      const __mmask16 m = __mmask16(groups - g >= 16 ? 0xffff : (1u << (groups - g)) - 1);
      const __m512i words = _mm512_maskz_loadu_epi32(m, sz[i] + 2 * g);
      const __m512 sc = _mm512_castsi512_ps(_mm512_slli_epi32(words, 16));
      const __m512 zero = _mm512_castsi512_ps(_mm512_and_si512(words, top));
      macc = _mm512_fmadd_ps(_mm512_fmadd_ps(sc, _mm512_set1_ps(-8.0f), zero), _mm512_maskz_loadu_ps(m, x.group_x + g), macc);
    }
    y[r0 + i] = float(double(_mm512_reduce_add_ps(facc[i])) * x.unit + double(_mm512_reduce_add_ps(macc)));
  }
}

template <int G>
void single4(const Int4Rows& w, const Int4Digits& x, float* y, int64_t begin, int64_t end, int64_t cols) {
  int64_t r = begin;
  for (; r + kRows <= end; r += kRows) rows4<kRows, G>(w, x, y, r, cols);
  for (; r < end; ++r) rows4<1, G>(w, x, y, r, cols);
}
}  // namespace

void single(const Int4Rows& w, const Int4Digits& x, float* y, int64_t begin, int64_t end, int64_t cols) {
  switch (w.group) {  // the group sizes worth_it admits
    case 32: return single4<32>(w, x, y, begin, end, cols);
    case 64: return single4<64>(w, x, y, begin, end, cols);
    case 128: return single4<128>(w, x, y, begin, end, cols);
    default: return single4<256>(w, x, y, begin, end, cols);
  }
}

}  // namespace vnni
}  // namespace gptfast
