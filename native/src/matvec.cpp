#include "matvec.h"

#include <ATen/Parallel.h>

#include "matvec_kernels.h"
#include "matvec_vnni.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

namespace gptfast {

namespace {

bool cpu_has(MatvecKernel kernel) {
  switch (kernel) {
    case MatvecKernel::automatic:
    case MatvecKernel::baseline:
      return true;
    case MatvecKernel::avx2:
    case MatvecKernel::avx512_shape_on_avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case MatvecKernel::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case MatvecKernel::avx512_vnni:
      return cpu_has(MatvecKernel::avx512) && __builtin_cpu_supports("avx512vnni");
  }
  return false;
}

MatvecKernel best_kernel() {
  static const MatvecKernel best = cpu_has(MatvecKernel::avx512_vnni) ? MatvecKernel::avx512_vnni
                                   : cpu_has(MatvecKernel::avx512)    ? MatvecKernel::avx512
                                   : cpu_has(MatvecKernel::avx2) ? MatvecKernel::avx2
                                                                 : MatvecKernel::baseline;
  return best;
}

std::atomic<Int4Lanes> int4_lanes_mode{Int4Lanes::automatic};

// Subnormal nibbles where they cost no more than normal operands: measured on AMD Zen 3. Intel
// cores may take a microcode assist for subnormal multiply inputs, so they convert.
bool int4_subnormal_lanes() {
  switch (int4_lanes_mode.load(std::memory_order_relaxed)) {
    case Int4Lanes::converted: return false;
    case Int4Lanes::subnormal: return true;
    default: break;
  }
  static const bool amd = [] {
    __builtin_cpu_init();
    return __builtin_cpu_is("amd") != 0;
  }();
  return amd;
}

// Calls `call` in the namespace of `kernel`'s build (matvec_kernels.h); kernel is resolved (not automatic).
#define GPTFAST_ON_ISA(kernel, call)                                      \
  switch (kernel) {                                                       \
    case MatvecKernel::avx512:                                            \
    case MatvecKernel::avx512_vnni: return kernels_avx512::call;          \
    case MatvecKernel::avx2: return kernels_avx2::call;                   \
    case MatvecKernel::avx512_shape_on_avx2: return kernels_avx512_shape::call; \
    default: return kernels_baseline::call;                               \
  }

template <class W>
void multi(MatvecKernel kernel, const W& w, const float* x, float* y, int64_t b, int64_t e, int64_t rows,
           int64_t cols, int64_t n) {
  GPTFAST_ON_ISA(kernel, multi(w, x, y, b, e, rows, cols, n))
}

void multi(MatvecKernel kernel, const Int4Rows& w, const Int4Vectors& x, float* y, int64_t b, int64_t e,
           int64_t rows, int64_t n) {
  GPTFAST_ON_ISA(kernel, multi(w, x, y, b, e, rows, n))
}

void single(MatvecKernel kernel, const float* w, const float* x, float* y, int64_t b, int64_t e, int64_t cols) {
  GPTFAST_ON_ISA(kernel, single(w, x, y, b, e, cols))
}

// bf16: the kernel takes x split into even and odd columns (the whole 32-column steps), prepared
// here in a buffer of the calling thread that only grows.
void single(MatvecKernel kernel, const uint16_t* w, const float* x, float* y, int64_t b, int64_t e, int64_t cols) {
  thread_local std::vector<float> buffer;
  const int64_t half = cols / 32 * 16;
  if (buffer.size() < size_t(2 * half)) buffer.resize(size_t(2 * half));
  float* even = buffer.data();
  float* odd = even + half;
  for (int64_t j = 0; j < half; ++j) {
    even[j] = x[2 * j];
    odd[j] = x[2 * j + 1];
  }
  GPTFAST_ON_ISA(kernel, single(w, x, even, odd, y, b, e, cols))
}

// Lanes of the int4 nibble-lane kernel in each ISA's build (GPTFAST_INT4_LANES there).
int64_t int4_lane_width(MatvecKernel kernel) { return kernel == MatvecKernel::baseline ? 4 : 8; }

// The int4 kernels' view of x (matvec_kernels.h), in a buffer of the calling thread that only
// grows (so a decode step stays allocation-free once warm).
Int4Vectors prepare_int4(const float* x, int64_t cols, int64_t n, int64_t group, int64_t lane_width) {
  const bool subnormal = int4_subnormal_lanes();
  thread_local std::vector<float> buffer;
  const int64_t groups = (cols + group - 1) / group, half = groups * group / 2, width = 2 * half;
  const int64_t chunk = 8 * lane_width, unit = std::max(group, chunk), units = width / unit;
  const bool lanes = width % chunk == 0, split = !lanes || n >= kInt4TileMinVectors;
  const int64_t per_vector = (split ? 2 * half : 0) + groups + (lanes ? width + units * lane_width + 1 : 0);
  if (buffer.size() < size_t(n * per_vector)) buffer.resize(size_t(n * per_vector));
  float* even = split ? buffer.data() : nullptr;
  float* odd = split ? even + n * half : nullptr;
  float* sums = buffer.data() + (split ? 2 * n * half : 0);
  float* lane_x = sums + n * groups;
  float* lane_sums = lane_x + n * width;
  float* lane_unscale = lane_sums + n * units * lane_width;
  for (int64_t t = 0; t < n; ++t) {
    const float* xt = x + t * cols;
    for (int64_t j = 0; split && j < half; ++j) {
      even[t * half + j] = 2 * j < cols ? xt[2 * j] : 0.0f;
      odd[t * half + j] = 2 * j + 1 < cols ? xt[2 * j + 1] : 0.0f;
    }
    float* gs = sums + t * groups;
    float amax = 0.0f;  // for the subnormal reading below, in the same pass over x
    for (int64_t g = 0; g < groups; ++g) {
      float s = 0;
      for (int64_t c = g * group; c < std::min(cols, (g + 1) * group); ++c) {
        s += xt[c];
        amax = std::max(amax, std::fabs(xt[c]));
      }
      gs[g] = s;
    }
    if (!lanes) continue;
    // The kernel's nibble k is q * 16^(k % 4), converted, or read as a subnormal float:
    // q * 16^(k % 4) * 2^-149. x * 2^(-4 (k % 4)), times 2^(149 - S) for subnormals, makes every
    // product q * x * 2^-S exactly. S = 24 + e with max |x| < 2^e keeps these x finite and the
    // products of all but negligible x normal; the kernel multiplies each row's sum by 2^S.
    int shift = 0;
    if (subnormal) {
      int e = 0;
      if (std::isfinite(amax)) std::frexp(amax, &e);
      shift = 24 + e;
    }
    lane_unscale[t] = float(std::ldexp(1.0, shift));
    float* l = lane_x + t * width;
    for (int64_t c0 = 0; c0 < width; c0 += chunk) {
      for (int k = 0; k < 8; ++k) {
        // In double: the power of two alone may be past fp32's range (tiny x), the product is not.
        const double place = std::ldexp(1.0, -4 * (k % 4) + (subnormal ? 149 - shift : 0));
        for (int64_t j = 0; j < lane_width; ++j) {
          const int64_t c = c0 + 8 * j + (k ^ 1);
          *l++ = c < cols ? float(double(xt[c]) * place) : 0.0f;
        }
      }
    }
    const int64_t lanes_per_group = std::min(lane_width, group / 8);
    const double sum_place = std::ldexp(1.0, -shift) / double(lanes_per_group);
    float* ls = lane_sums + t * units * lane_width;
    for (int64_t u = 0; u < units; ++u) {
      for (int64_t j = 0; j < lane_width; ++j) {
        *ls++ = float(double(gs[(u * unit + 8 * j) / group]) * sum_place);
      }
    }
  }
  return Int4Vectors{even, odd, sums, half, groups, lanes ? lane_x : nullptr, lane_sums, lane_width,
                     lane_unscale, subnormal};
}

// Whether one vector times quantized weights takes the VNNI kernels (matvec_vnni.h); decided per
// matrix, so that a row's result does not depend on how the rows are split.
bool vnni_single(MatvecKernel kernel, int64_t rows, int64_t cols, int64_t n_vectors) {
  return n_vectors == 1 && kernel == MatvecKernel::avx512_vnni && vnni::worth_it(rows, cols);
}
bool vnni_single(MatvecKernel kernel, const Int4Rows& w, int64_t rows, int64_t cols, int64_t n_vectors) {
  return vnni_single(kernel, rows, cols, n_vectors) && vnni::int4_group(w.group);
}

// W: const float*, const uint16_t* (bf16), Int8Rows or Int4Rows. Rows [begin, end) on the
// calling thread; kernel already resolved (not automatic). multi_path: the blocked kernel.
template <class W>
void rows_range(MatvecKernel kernel, bool multi_path, const W& w, const float* x, float* y, int64_t rows,
                int64_t cols, int64_t n_vectors, int64_t begin, int64_t end) {
  constexpr bool dense = std::is_pointer_v<W>;
  if constexpr (std::is_same_v<W, Int4Rows>) {
    if (vnni_single(kernel, w, rows, cols, n_vectors)) {
      // x in fixed-point digits (matvec_vnni.h), in buffers of the calling thread that only grow.
      // (Here, not in matvec_vnni.cpp: std::vector code instantiated there is AVX-512 code, and
      // the linker may pick that copy for every translation unit.)
      thread_local std::vector<int8_t> digits;
      thread_local std::vector<float> group_x;
      const int64_t ld = vnni::int4_digits_ld(cols, w.group);
      if (digits.size() < size_t(2 * vnni::kDigits * ld)) digits.resize(size_t(2 * vnni::kDigits * ld));
      if (group_x.size() < size_t(2 * ld / w.group)) group_x.resize(size_t(2 * ld / w.group));
      vnni::Int4Digits view;
      if (vnni::to_digits(x, cols, w.group, digits.data(), group_x.data(), view)) {
        return vnni::single(w, view, y, begin, end, cols);
      }
    }
    multi(kernel, w, prepare_int4(x, cols, n_vectors, w.group, int4_lane_width(kernel)), y, begin, end, rows,
          n_vectors);
  } else if constexpr (!dense) {
    if (n_vectors == 1) {  // int8, one vector: a row at a time, like dense weights
      if (vnni_single(kernel, rows, cols, n_vectors)) {
        // x in fixed-point digits (matvec_vnni.h), in a buffer of the calling thread that only grows
        thread_local std::vector<int8_t> buffer;
        const int64_t ld = (cols + 63) / 64 * 64;
        if (buffer.size() < size_t(vnni::kDigits * ld)) buffer.resize(size_t(vnni::kDigits * ld));
        vnni::Int8Digits digits;
        if (vnni::to_digits(x, cols, buffer.data(), ld, digits)) return vnni::single(w, digits, y, begin, end, cols);
      }
      GPTFAST_ON_ISA(kernel, single(w, x, y, begin, end, cols))
    }
    multi(kernel, w, x, y, begin, end, rows, cols, n_vectors);
  } else if (multi_path) {
    multi(kernel, w, x, y, begin, end, rows, cols, n_vectors);
  } else {
    for (int64_t t = 0; t < n_vectors; ++t) single(kernel, w, x + t * cols, y + t * rows, begin, end, cols);
  }
}

// Empty products: y = 0 (no kernel runs). True when there is nothing left to do.
bool trivial(float* y, int64_t rows, int64_t cols, int64_t n_vectors) {
  if (rows <= 0 || n_vectors <= 0) return true;
  if (cols > 0) return false;
  for (int64_t t = 0; t < n_vectors; ++t) std::fill_n(y + t * rows, rows, 0.0f);
  return true;
}

// Quantized weights take the kernels that dequantize (the blocked one, or int8's own single-vector
// kernel, chosen in rows_range).
template <class W>
bool uses_multi(int64_t n_vectors) {
  return !std::is_pointer_v<W> || n_vectors >= 2;
}

// Rows are split over libtorch's intra-op threads in whole blocks of kMatvecRowBlock rows, so that
// no two tasks write into the same 64-byte line of y (when rows is a multiple of 16 and y is aligned).
template <class W>
void matmul(MatvecKernel kernel, const W& w, const float* x, float* y, int64_t rows, int64_t cols,
            int64_t n_vectors) {
  if (trivial(y, rows, cols, n_vectors)) return;
  const bool multi_path = uses_multi<W>(n_vectors);
  if (kernel == MatvecKernel::automatic) kernel = best_kernel();
  const int64_t blocks = (rows + kMatvecRowBlock - 1) / kMatvecRowBlock;
  const int64_t grain = matvec_grain_blocks(cols, n_vectors);
  if constexpr (std::is_same_v<W, Int4Rows>) {
    if (!vnni_single(kernel, w, rows, cols, n_vectors)) {
      const Int4Vectors xv = prepare_int4(x, cols, n_vectors, w.group, int4_lane_width(kernel));  // once, shared
      at::parallel_for(0, blocks, grain, [&](int64_t block_begin, int64_t block_end) {
        multi(kernel, w, xv, y, block_begin * kMatvecRowBlock, std::min(rows, block_end * kMatvecRowBlock), rows,
              n_vectors);
      });
      return;
    }
  }
  at::parallel_for(0, blocks, grain, [&](int64_t block_begin, int64_t block_end) {
    rows_range(kernel, multi_path, w, x, y, rows, cols, n_vectors, block_begin * kMatvecRowBlock,
               std::min(rows, block_end * kMatvecRowBlock));
  });
}

template <class W>
void matmul_range(const W& w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors,
                  int64_t begin, int64_t end) {
  if (begin >= end || trivial(y, rows, cols, n_vectors)) return;
  rows_range(best_kernel(), uses_multi<W>(n_vectors), w, x, y, rows, cols, n_vectors,
             begin, end);
}

}  // namespace

void matmul_rows(const float* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors) {
  matmul(MatvecKernel::automatic, w, x, y, rows, cols, n_vectors);
}

void matmul_rows(const uint16_t* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors) {
  matmul(MatvecKernel::automatic, w, x, y, rows, cols, n_vectors);
}

void matmul_rows(const Int8Rows& w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors) {
  matmul(MatvecKernel::automatic, w, x, y, rows, cols, n_vectors);
}

void matmul_rows(const Int4Rows& w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors) {
  matmul(MatvecKernel::automatic, w, x, y, rows, cols, n_vectors);
}

bool matvec_kernel_supported(MatvecKernel kernel) { return cpu_has(kernel); }

void set_int4_lanes(Int4Lanes mode) { int4_lanes_mode.store(mode, std::memory_order_relaxed); }

void exp_shifted(float* v, int64_t n, float shift) {
  const MatvecKernel kernel = best_kernel();
  GPTFAST_ON_ISA(kernel, exp_shifted(v, n, shift))
}

void attend(const float* q, const float* k, const float* v, int64_t hd, int64_t last, float scale, float* out) {
  const MatvecKernel kernel = best_kernel();
  GPTFAST_ON_ISA(kernel, attend(q, k, v, hd, last, scale, out))
}

void attend(const float* q, const uint16_t* k, const uint16_t* v, int64_t hd, int64_t last, float scale, float* out) {
  const MatvecKernel kernel = best_kernel();
  GPTFAST_ON_ISA(kernel, attend(q, k, v, hd, last, scale, out))
}

float sum_floats(const float* p, int64_t n) {
  const MatvecKernel kernel = best_kernel();
  GPTFAST_ON_ISA(kernel, sum_floats(p, n))
}

// Task size: the single-vector pass is memory-bound, ~32K weights per task pay for a thread
// hand-off; the blocked kernel is compute-bound and runs ~10x as many multiply-adds in that time.
int64_t matvec_grain_blocks(int64_t cols, int64_t n_vectors) {
  const int64_t min_work = n_vectors >= 2 ? (int64_t(1) << 18) : 32768;
  return std::max<int64_t>(1, min_work / std::max<int64_t>(kMatvecRowBlock * cols * n_vectors, 1));
}

void matmul_rows_range(const float* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors,
                       int64_t begin, int64_t end) {
  matmul_range(w, x, y, rows, cols, n_vectors, begin, end);
}
void matmul_rows_range(const uint16_t* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors,
                       int64_t begin, int64_t end) {
  matmul_range(w, x, y, rows, cols, n_vectors, begin, end);
}
void matmul_rows_range(const Int8Rows& w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors,
                       int64_t begin, int64_t end) {
  matmul_range(w, x, y, rows, cols, n_vectors, begin, end);
}
void matmul_rows_range(const Int4Rows& w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors,
                       int64_t begin, int64_t end) {
  matmul_range(w, x, y, rows, cols, n_vectors, begin, end);
}

void matmul_rows(MatvecKernel kernel, const float* w, const float* x, float* y, int64_t rows, int64_t cols,
                 int64_t n_vectors) {
  matmul(kernel, w, x, y, rows, cols, n_vectors);
}

const char* automatic_kernel_name() {
  switch (best_kernel()) {
    case MatvecKernel::avx512_vnni: return "avx512 (int8: vnni)";
    case MatvecKernel::avx512: return "avx512";
    case MatvecKernel::avx2: return "avx2";
    default: return "baseline";
  }
}

void matmul_rows(MatvecKernel kernel, const uint16_t* w, const float* x, float* y, int64_t rows, int64_t cols,
                 int64_t n_vectors) {
  matmul(kernel, w, x, y, rows, cols, n_vectors);
}

void matmul_rows(MatvecKernel kernel, const Int8Rows& w, const float* x, float* y, int64_t rows, int64_t cols,
                 int64_t n_vectors) {
  matmul(kernel, w, x, y, rows, cols, n_vectors);
}

void matmul_rows(MatvecKernel kernel, const Int4Rows& w, const float* x, float* y, int64_t rows, int64_t cols,
                 int64_t n_vectors) {
  matmul(kernel, w, x, y, rows, cols, n_vectors);
}

}  // namespace gptfast

