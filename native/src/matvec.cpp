#include "matvec.h"

// The generic vectors below are only ever passed between always-inline functions inside one ISA's
// function, so the ABI note about wide vectors without that ISA does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>

namespace gptfast {

namespace {

inline float widen(float w) { return w; }
inline float widen(uint16_t w) { return bf16_to_float(w); }

// ---------------------------------------------------------------------------------------------
// One vector (plain decoding): one row at a time, the weights streamed straight through. This is
// memory-bound; it is cloned per ISA by GCC function multiversioning (the dynamic loader picks the
// best clone the CPU supports), so the library stays portable without -march flags.

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

__attribute__((target_clones("arch=skylake-avx512", "arch=haswell", "default")))
void single_f32(const float* w, const float* x, float* y, int64_t begin, int64_t end, int64_t cols) {
  single_vector(w, x, y, begin, end, cols);
}
__attribute__((target_clones("arch=skylake-avx512", "arch=haswell", "default")))
void single_bf16(const uint16_t* w, const float* x, float* y, int64_t begin, int64_t end, int64_t cols) {
  single_vector(w, x, y, begin, end, cols);
}

// ---------------------------------------------------------------------------------------------
// Several vectors (a verify pass, a batch, a prefill chunk): a register-blocked weights x vectors
// kernel. The micro-kernel keeps an R x V block of accumulators (R weight rows against V vectors)
// in SIMD registers of L fp32 lanes; each L-wide chunk of a weight row is loaded (and, for bf16,
// widened in-register) once and multiplied into all V vectors, each chunk of a vector is loaded
// once and used for all R rows, so there are R*V multiply-adds per R+V loads. Columns are tiled
// (kc) so the R-row weight tile and the vectors' column tiles stay in L1/L2 while the vectors go
// by; the weights are streamed from memory once per call. Accumulation is fp32 throughout
// (multiply-adds, contracted to FMA where the ISA has it); the lanes are summed per tile and the
// tile sums added into y in column order.
//
// The body is one template instantiated per ISA with its own width and blocking, each in a
// function compiled for that ISA (target attribute) and picked once at load time:
//   AVX-512: 32 zmm -> R=4 x V=6 accumulators (24) + 6 vector chunks + 1 weight chunk
//   AVX2:    16 ymm -> R=4 x V=3 accumulators (12) + 3 vector chunks + 1 weight chunk
//   baseline SSE2: 16 xmm, same blocking as AVX2 on 4 lanes.

template <int L>
struct Lanes {
  typedef float F __attribute__((vector_size(4 * L)));
  typedef uint16_t H __attribute__((vector_size(2 * L)));
  typedef uint32_t U __attribute__((vector_size(4 * L)));
};

template <int L>
__attribute__((always_inline)) inline typename Lanes<L>::F load(const float* p) {
  typename Lanes<L>::F v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// bf16 -> fp32 in register: zero-extend the 16-bit halves to 32 bits and shift them to the top.
template <int L>
__attribute__((always_inline)) inline typename Lanes<L>::F load(const uint16_t* p) {
  typename Lanes<L>::H h;
  std::memcpy(&h, p, sizeof(h));
  const typename Lanes<L>::U u = __builtin_convertvector(h, typename Lanes<L>::U) << 16;
  typename Lanes<L>::F v;
  std::memcpy(&v, &u, sizeof(v));
  return v;
}

template <int L>
__attribute__((always_inline)) inline float lane_sum(typename Lanes<L>::F v) {
  float t[L];
  std::memcpy(t, &v, sizeof(t));
#pragma GCC unroll 8
  for (int width = L / 2; width >= 1; width /= 2) {
#pragma GCC unroll 16
    for (int i = 0; i < width; ++i) t[i] += t[i + width];
  }
  return t[0];
}

// Lane sums of four vectors a0..a3 as one 4-lane vector (transposing pairwise adds), so a block of
// four rows ends in one 4-float add/store per vector instead of four horizontal sums.
typedef float F4 __attribute__((vector_size(16)));
template <int L>
__attribute__((always_inline)) inline F4 lane_sums4(typename Lanes<L>::F a0, typename Lanes<L>::F a1,
                                                     typename Lanes<L>::F a2, typename Lanes<L>::F a3) {
  if constexpr (L == 4) {
    const F4 s01 = __builtin_shufflevector(a0, a1, 0, 4, 2, 6) + __builtin_shufflevector(a0, a1, 1, 5, 3, 7);
    const F4 s23 = __builtin_shufflevector(a2, a3, 0, 4, 2, 6) + __builtin_shufflevector(a2, a3, 1, 5, 3, 7);
    return __builtin_shufflevector(s01, s23, 0, 1, 4, 5) + __builtin_shufflevector(s01, s23, 2, 3, 6, 7);
  } else if constexpr (L == 8) {
    typedef typename Lanes<8>::F F;
    const F s01 = __builtin_shufflevector(a0, a1, 0, 8, 2, 10, 4, 12, 6, 14) +
                  __builtin_shufflevector(a0, a1, 1, 9, 3, 11, 5, 13, 7, 15);
    const F s23 = __builtin_shufflevector(a2, a3, 0, 8, 2, 10, 4, 12, 6, 14) +
                  __builtin_shufflevector(a2, a3, 1, 9, 3, 11, 5, 13, 7, 15);
    const F t = __builtin_shufflevector(s01, s23, 0, 1, 8, 9, 4, 5, 12, 13) +
                __builtin_shufflevector(s01, s23, 2, 3, 10, 11, 6, 7, 14, 15);
    return __builtin_shufflevector(t, t, 0, 1, 2, 3) + __builtin_shufflevector(t, t, 4, 5, 6, 7);
  } else {
    static_assert(L == 16, "4, 8 or 16 lanes");
    typedef typename Lanes<16>::F F;
    typedef typename Lanes<8>::F F8;
    const F s01 = __builtin_shufflevector(a0, a1, 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30) +
                  __builtin_shufflevector(a0, a1, 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31);
    const F s23 = __builtin_shufflevector(a2, a3, 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30) +
                  __builtin_shufflevector(a2, a3, 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31);
    const F t = __builtin_shufflevector(s01, s23, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29) +
                __builtin_shufflevector(s01, s23, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
    const F8 u = __builtin_shufflevector(t, t, 0, 1, 2, 3, 4, 5, 6, 7) +
                 __builtin_shufflevector(t, t, 8, 9, 10, 11, 12, 13, 14, 15);
    return __builtin_shufflevector(u, u, 0, 1, 2, 3) + __builtin_shufflevector(u, u, 4, 5, 6, 7);
  }
}

// y[v * ldy + r] (+)= sum_c w[r * ldw + c] * x[v * ldx + c] for r < R, v < V, c < k.
// prefetch: the same columns of the next R rows are requested into L2 while these are computed
// (the first vector group of a row block streams the weights from memory).
template <int L, int R, int V, class W>
__attribute__((always_inline)) inline void micro(const W* w, int64_t ldw, const float* x, int64_t ldx, float* y,
                                                 int64_t ldy, int64_t k, bool first, bool prefetch) {
  typedef typename Lanes<L>::F F;
  F acc[R][V];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) acc[r][v] = F{};
  int64_t c = 0;
  if (prefetch) {
    constexpr int64_t kLine = 64 / sizeof(W);
    for (; c + kLine <= k; c += kLine) {
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) __builtin_prefetch(w + (R + r) * ldw + c, 0, 2);
#pragma GCC unroll 4
      for (int64_t cl = c; cl < c + kLine; cl += L) {
        F xv[V];
#pragma GCC unroll 8
        for (int v = 0; v < V; ++v) xv[v] = load<L>(x + v * ldx + cl);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const F wv = load<L>(w + r * ldw + cl);
#pragma GCC unroll 8
          for (int v = 0; v < V; ++v) acc[r][v] += wv * xv[v];
        }
      }
    }
  }
  for (; c + L <= k; c += L) {
    F xv[V];
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) xv[v] = load<L>(x + v * ldx + c);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const F wv = load<L>(w + r * ldw + c);
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) acc[r][v] += wv * xv[v];
    }
  }
  if constexpr (R == 4) {
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) {
      F4 s = lane_sums4<L>(acc[0][v], acc[1][v], acc[2][v], acc[3][v]);
      if (c < k) {
        F4 tail = {};
        for (int r = 0; r < 4; ++r)
          for (int64_t cc = c; cc < k; ++cc) tail[r] += widen(w[r * ldw + cc]) * x[v * ldx + cc];
        s += tail;
      }
      float* out = y + v * ldy;
      if (!first) {
        F4 old;
        std::memcpy(&old, out, sizeof(old));
        s += old;
      }
      std::memcpy(out, &s, sizeof(s));
    }
    return;
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) {
      float s = lane_sum<L>(acc[r][v]);
      for (int64_t cc = c; cc < k; ++cc) s += widen(w[r * ldw + cc]) * x[v * ldx + cc];
      float& out = y[v * ldy + r];
      out = first ? s : out + s;
    }
  }
}

// Dispatch of the vector tail (n_vectors not a multiple of V) to compile-time micro-kernels.
template <int L, int R, int V, class W>
__attribute__((always_inline)) inline void micro_v(int v, const W* w, int64_t ldw, const float* x, int64_t ldx,
                                                   float* y, int64_t ldy, int64_t k, bool first, bool prefetch) {
  if constexpr (V > 1) {
    if (v < V) return micro_v<L, R, V - 1>(v, w, ldw, x, ldx, y, ldy, k, first, prefetch);
  }
  micro<L, R, V>(w, ldw, x, ldx, y, ldy, k, first, prefetch);
}

// Column tile: ~kMaxTile columns, in equal multiples of L (the last tile takes the remainder).
constexpr int64_t kMaxTile = 1024;

template <int L, int R, int V, class W>
__attribute__((always_inline)) inline void multi_block(const W* w, const float* x, float* y, int64_t begin,
                                                       int64_t end, int64_t rows, int64_t cols, int64_t n) {
  const int64_t tiles = std::max<int64_t>(1, (cols + kMaxTile - 1) / kMaxTile);
  const int64_t kc = ((cols + tiles - 1) / tiles + L - 1) / L * L;
  for (int64_t r = begin; r < end;) {
    // Whole blocks of R rows; the row tail (rare: model dimensions are multiples of 16) one by one.
    const bool whole = end - r >= R;
    for (int64_t c0 = 0; c0 < cols; c0 += kc) {
      const int64_t k = std::min(kc, cols - c0);
      for (int64_t t = 0; t < n; t += V) {
        const int vv = int(std::min<int64_t>(V, n - t));
        const W* wt = w + r * cols + c0;
        const float* xt = x + t * cols + c0;
        float* yt = y + t * rows + r;
        const bool prefetch = t == 0 && end - r >= 2 * R;
        if (whole) micro_v<L, R, V>(vv, wt, cols, xt, cols, yt, rows, k, c0 == 0, prefetch);
        else micro_v<L, 1, V>(vv, wt, cols, xt, cols, yt, rows, k, c0 == 0, false);
      }
    }
    r += whole ? R : 1;
  }
}

#define GPTFAST_MULTI(name, target, L, R, V)                                                                  \
  target void name(const float* w, const float* x, float* y, int64_t b, int64_t e, int64_t rows, int64_t cols, \
                   int64_t n) {                                                                                \
    multi_block<L, R, V>(w, x, y, b, e, rows, cols, n);                                                        \
  }                                                                                                            \
  target void name(const uint16_t* w, const float* x, float* y, int64_t b, int64_t e, int64_t rows,            \
                   int64_t cols, int64_t n) {                                                                  \
    multi_block<L, R, V>(w, x, y, b, e, rows, cols, n);                                                        \
  }

#define GPTFAST_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
#define GPTFAST_AVX2 __attribute__((target("avx2,fma")))

GPTFAST_MULTI(multi_baseline, , 4, 4, 3)
GPTFAST_MULTI(multi_avx2, GPTFAST_AVX2, 8, 4, 3)
GPTFAST_MULTI(multi_avx512, GPTFAST_AVX512, 16, 4, 6)
// The AVX-512 blocking compiled for AVX2 (the generic vectors split in two): lets the tests check
// that instantiation's arithmetic on machines without AVX-512.
GPTFAST_MULTI(multi_avx512_shape, GPTFAST_AVX2, 16, 4, 6)

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
  }
  return false;
}

MatvecKernel best_kernel() {
  static const MatvecKernel best = cpu_has(MatvecKernel::avx512) ? MatvecKernel::avx512
                                   : cpu_has(MatvecKernel::avx2) ? MatvecKernel::avx2
                                                                 : MatvecKernel::baseline;
  return best;
}

template <class W>
void multi(MatvecKernel kernel, const W* w, const float* x, float* y, int64_t b, int64_t e, int64_t rows,
           int64_t cols, int64_t n) {
  switch (kernel) {
    case MatvecKernel::avx512: return multi_avx512(w, x, y, b, e, rows, cols, n);
    case MatvecKernel::avx2: return multi_avx2(w, x, y, b, e, rows, cols, n);
    case MatvecKernel::avx512_shape_on_avx2: return multi_avx512_shape(w, x, y, b, e, rows, cols, n);
    default: return multi_baseline(w, x, y, b, e, rows, cols, n);
  }
}

inline void single(const float* w, const float* x, float* y, int64_t b, int64_t e, int64_t cols) {
  single_f32(w, x, y, b, e, cols);
}
inline void single(const uint16_t* w, const float* x, float* y, int64_t b, int64_t e, int64_t cols) {
  single_bf16(w, x, y, b, e, cols);
}

// Rows are split over libtorch's intra-op threads in whole blocks of 16 rows, so that no two tasks
// write into the same 64-byte line of y (when rows is a multiple of 16 and y is aligned).
constexpr int64_t kRowBlock = 16;

template <class W>
void matmul(MatvecKernel kernel, const W* w, const float* x, float* y, int64_t rows, int64_t cols,
            int64_t n_vectors) {
  if (rows <= 0 || n_vectors <= 0) return;
  if (cols <= 0) {
    for (int64_t t = 0; t < n_vectors; ++t) std::fill_n(y + t * rows, rows, 0.0f);
    return;
  }
  const bool multi_path = kernel != MatvecKernel::automatic || n_vectors >= 2;
  if (kernel == MatvecKernel::automatic) kernel = best_kernel();
  // Task size: the single-vector pass is memory-bound, ~32K weights per task pay for a thread
  // hand-off; the blocked kernel is compute-bound and runs ~10x as many multiply-adds in that time.
  const int64_t min_work = multi_path ? (int64_t(1) << 18) : 32768;
  const int64_t blocks = (rows + kRowBlock - 1) / kRowBlock;
  const int64_t grain = std::max<int64_t>(1, min_work / std::max<int64_t>(kRowBlock * cols * n_vectors, 1));
  at::parallel_for(0, blocks, grain, [&](int64_t block_begin, int64_t block_end) {
    const int64_t begin = block_begin * kRowBlock, end = std::min(rows, block_end * kRowBlock);
    if (multi_path) {
      multi(kernel, w, x, y, begin, end, rows, cols, n_vectors);
    } else {
      for (int64_t t = 0; t < n_vectors; ++t) single(w, x + t * cols, y + t * rows, begin, end, cols);
    }
  });
}

}  // namespace

void matmul_rows(const float* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors) {
  matmul(MatvecKernel::automatic, w, x, y, rows, cols, n_vectors);
}

void matmul_rows(const uint16_t* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors) {
  matmul(MatvecKernel::automatic, w, x, y, rows, cols, n_vectors);
}

bool matvec_kernel_supported(MatvecKernel kernel) { return cpu_has(kernel); }

void matmul_rows(MatvecKernel kernel, const float* w, const float* x, float* y, int64_t rows, int64_t cols,
                 int64_t n_vectors) {
  matmul(kernel, w, x, y, rows, cols, n_vectors);
}

void matmul_rows(MatvecKernel kernel, const uint16_t* w, const float* x, float* y, int64_t rows, int64_t cols,
                 int64_t n_vectors) {
  matmul(kernel, w, x, y, rows, cols, n_vectors);
}

}  // namespace gptfast
