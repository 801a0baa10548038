// fp32 products with a row-major weight matrix W [rows, cols] for the fused decode step:
// y[t] = W x[t] for a few vectors t at once. Each weight row is read once for all vectors, so
// verifying k+1 speculative tokens streams the weights once, like a single decode step.
// Compiled for several ISAs (AVX-512, AVX2+FMA, baseline: one translation unit each, built from
// matvec_kernels.inc) with the best the CPU supports picked at run time by its features. (Not GCC's
// target_clones("arch=..."): its resolver asks whether the CPU *is* that model, so every AMD and
// most Intel CPUs ran the SSE2 clone.) Rows are split across libtorch's intra-op threads.
// Allocation-free. One vector streams the weights row by row; two or more go through a
// register-blocked weights x vectors kernel, whose accumulation is fp32 like the single-vector path.
#pragma once

#include <cstdint>

namespace gptfast {

// Weight-only quantized rows (formats: linear_weight.h), dequantized in registers as they are
// read, so memory traffic is the quantized size; the arithmetic stays fp32.
// int8: q [rows, cols] row-major, w = q * scales[r].
struct Int8Rows {
  const int8_t* q;
  const float* scales;
};
// int4: row r's bytes start at q + r * ld (two columns per byte, column 2j in the high nibble);
// its (scale, zero) bf16 pairs for groups of `group` columns start at scale_zero + r * sz_ld,
// w = (nibble - 8) * scale + zero. group: a multiple of 32. Each row must be readable up to its
// last whole group (ceil(cols / group) * group / 2 bytes), as GPT-Fast's padding guarantees;
// nibbles past cols are read but multiply zeros.
struct Int4Rows {
  const uint8_t* q;
  int64_t ld;
  const uint16_t* scale_zero;
  int64_t sz_ld;
  int64_t group;
};

// x: [n_vectors, cols], y: [n_vectors, rows]. Weights fp32, or bf16 (raw uint16 bits, widened to
// fp32 as they are read: half the memory traffic, fp32 arithmetic), or quantized as above.
void matmul_rows(const float* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors);
void matmul_rows(const uint16_t* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors);
void matmul_rows(const Int8Rows& w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors);
void matmul_rows(const Int4Rows& w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors);

// Rows [begin, end) of the same products on the calling thread only, for a caller that splits the
// rows among its own threads (the fused decode step's team). Each row's result is the same as
// matmul_rows gives it, whatever the split, as long as begin and end are multiples of
// kMatvecRowBlock (end may be rows): the kernels' row tiles then start at the same rows.
constexpr int64_t kMatvecRowBlock = 16;
// The fewest blocks of kMatvecRowBlock rows worth one thread's task.
int64_t matvec_grain_blocks(int64_t cols, int64_t n_vectors);
void matmul_rows_range(const float* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors,
                       int64_t begin, int64_t end);
void matmul_rows_range(const uint16_t* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors,
                       int64_t begin, int64_t end);
void matmul_rows_range(const Int8Rows& w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors,
                       int64_t begin, int64_t end);
void matmul_rows_range(const Int4Rows& w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors,
                       int64_t begin, int64_t end);

// For tests and benchmarks: the kernels of one ISA (its single-vector kernel for one vector of
// dense weights, its blocked kernel otherwise). `automatic` is what matmul_rows above does. A
// kernel may only be run where it is supported.
enum class MatvecKernel {
  automatic,
  baseline,              // SSE2 (any x86-64), 4 lanes
  avx2,                  // AVX2 + FMA, 8 lanes
  avx512,                // AVX-512, 16 lanes
  avx512_shape_on_avx2,  // the AVX-512 instantiation (16 lanes, its blocking) compiled for AVX2
  avx512_vnni,           // avx512, with int8 x one vector on VNNI (matvec_vnni.h)
};
bool matvec_kernel_supported(MatvecKernel kernel);
// How the int4 decode kernel turns a nibble into a float: converted (one int -> float conversion
// per 8 weights) or read in place as a subnormal float (no conversion; chosen on AMD, where
// subnormal operands cost nothing extra). Same products either way. For tests and benchmarks;
// process-wide, takes effect at the next call.
enum class Int4Lanes { automatic, converted, subnormal };
void set_int4_lanes(Int4Lanes mode);
// The kernel `automatic` runs on this CPU, by name ("avx512 (int8: vnni)", "avx512", "avx2", "baseline").
const char* automatic_kernel_name();
void matmul_rows(MatvecKernel kernel, const float* w, const float* x, float* y, int64_t rows, int64_t cols,
                 int64_t n_vectors);
void matmul_rows(MatvecKernel kernel, const uint16_t* w, const float* x, float* y, int64_t rows, int64_t cols,
                 int64_t n_vectors);
void matmul_rows(MatvecKernel kernel, const Int8Rows& w, const float* x, float* y, int64_t rows, int64_t cols,
                 int64_t n_vectors);
void matmul_rows(MatvecKernel kernel, const Int4Rows& w, const float* x, float* y, int64_t rows, int64_t cols,
                 int64_t n_vectors);

// The decode step's other vector loops, in the best ISA build for this CPU:
// v[j] = exp(v[j] - shift) for attention scores (all <= shift), within ~2 ulp of expf;
void exp_shifted(float* v, int64_t n, float shift);
// out[hd] = softmax over keys 0..last of (q . k[j]) * scale, weighting v[j] (k, v: rows of hd);
void attend(const float* q, const float* k, const float* v, int64_t hd, int64_t last, float scale, float* out);
// the same over a bf16 cache (k, v: bf16 bits), each key and value widened to fp32 as it is read;
void attend(const float* q, const uint16_t* k, const uint16_t* v, int64_t hd, int64_t last, float scale, float* out);
// and the sum of n floats with independent accumulators (memory-bound: the read-bandwidth probe).
float sum_floats(const float* p, int64_t n);

inline float bf16_to_float(uint16_t bits) {
  const uint32_t wide = uint32_t(bits) << 16;
  float f;
  __builtin_memcpy(&f, &wide, sizeof(f));
  return f;
}

// fp32 -> bf16 bits, rounded to nearest even, NaN kept a (quiet) NaN: what at::BFloat16's
// conversion gives, so keys the fused step stores equal those the ATen path stores.
inline uint16_t float_to_bf16(float f) {
  uint32_t bits;
  __builtin_memcpy(&bits, &f, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
  return uint16_t((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

}  // namespace gptfast
