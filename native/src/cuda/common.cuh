// What the kernels share: host-side argument checks and CUDA error reporting (as gptfast::Error,
// never an abort), and the block-wide building blocks of the sampling kernels (reductions, a
// radix select over 32-bit keys, a draw from fixed-point weights).
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <string>

#include "cuda/kernels.h"
#include "cuda/philox.h"
#include "errors.h"

namespace gptfast::cuda {

// ---- host --------------------------------------------------------------------------------------

inline void require(bool ok, const char* kernel, const std::string& what) {
  if (!ok) throw Error(std::string(kernel) + ": " + what);
}

// After a launch: a bad configuration or a missing device surfaces here (launches are
// asynchronous, so faults inside the kernel surface at the caller's next synchronisation).
inline void check_launch(const char* kernel) { check_cuda(cudaGetLastError(), kernel, "CUDA launch failed"); }

// ---- device ------------------------------------------------------------------------------------

// Weights as unsigned 2^-40 fixed point: integer sums are exact and independent of the order of
// the additions, so a block reduces them with atomics and still draws reproducibly. Inputs are
// clamped to [0, 1] (probabilities, or softmax weights relative to the maximum), so a row of up to
// 2^23 entries cannot overflow 64 bits.
__device__ __forceinline__ uint64_t to_fixed(float w) {
  return __float2ull_rn(fminf(fmaxf(w, 0.0f), 1.0f) * 0x1.0p40f);  // fmaxf maps NaN to 0
}

// Monotone map of a float to uint32 (a < b as floats <=> key(a) < key(b)); -0 and +0 share a key
// because they compare equal, as in the CPU sampler's comparisons.
__device__ __forceinline__ uint32_t order_key(float f) {
  if (f == 0.0f) f = 0.0f;
  const uint32_t bits = __float_as_uint(f);
  return (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
}

__device__ __forceinline__ float key_to_float(uint32_t key) {
  return __uint_as_float((key & 0x80000000u) ? key & 0x7fffffffu : ~key);
}

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ uint64_t warp_inclusive_scan(uint64_t v) {
  const int lane = threadIdx.x & 31;
  for (int offset = 1; offset < 32; offset *= 2) {
    const uint64_t other = __shfl_up_sync(0xffffffffu, v, offset);
    if (lane >= offset) v += other;
  }
  return v;
}

// Shared memory of one block of the sampling kernels.
struct BlockScratch {
  uint64_t warp[32];
  uint64_t hist[256];
  float best[32];
  int best_index[32];
  int result;
  uint32_t selected_digit;
  uint64_t selected_target;
};

// Exclusive prefix sum over the threads of the block, in thread order; *total gets the block's
// sum. Every thread of the block must call it.
template <int kThreads>
__device__ uint64_t block_exclusive_scan(uint64_t v, BlockScratch& s, uint64_t* total) {
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "whole warps, one block");
  constexpr int kWarps = kThreads / 32;
  const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
  const uint64_t inclusive = warp_inclusive_scan(v);
  if (lane == 31) s.warp[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {
    const uint64_t w = lane < kWarps ? s.warp[lane] : 0;
    s.warp[lane] = warp_inclusive_scan(w);
  }
  __syncthreads();
  const uint64_t before = (warp == 0 ? 0 : s.warp[warp - 1]) + inclusive - v;
  *total = s.warp[kWarps - 1];
  __syncthreads();  // s.warp is reused by the next call
  return before;
}

template <int kThreads>
__device__ uint64_t block_sum(uint64_t v, BlockScratch& s) {
  uint64_t total;
  block_exclusive_scan<kThreads>(v, s, &total);
  return total;
}

// The block's largest value and its lowest index (index INT_MAX and -inf when no thread has one).
template <int kThreads>
__device__ void block_argmax(float& best, int& index, BlockScratch& s) {
  constexpr int kWarps = kThreads / 32;
  const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
  auto combine = [&] {
    for (int offset = 16; offset > 0; offset /= 2) {
      const float b = __shfl_xor_sync(0xffffffffu, best, offset);
      const int i = __shfl_xor_sync(0xffffffffu, index, offset);
      if (b > best || (b == best && i < index)) {
        best = b;
        index = i;
      }
    }
  };
  combine();
  if (lane == 0) {
    s.best[warp] = best;
    s.best_index[warp] = index;
  }
  __syncthreads();
  if (warp == 0) {
    best = lane < kWarps ? s.best[lane] : -INFINITY;
    index = lane < kWarps ? s.best_index[lane] : INT_MAX;
    combine();
    if (lane == 0) {
      s.best[0] = best;
      s.best_index[0] = index;
    }
  }
  __syncthreads();
  best = s.best[0];
  index = s.best_index[0];
  __syncthreads();
}

// Radix select, descending: among the n elements, where weigh(i, &key) gives element i's weight
// (0 = not a candidate) and 32-bit key, finds the largest key K whose elements together with all
// larger ones weigh at least `target` (0 < target <= total weight), i.e.
// weight(key > K) < target <= weight(key >= K). *remaining = target - weight(key > K). With unit
// weights K is the target-th largest key; with probability mass it is the edge of a nucleus.
// Four passes of 8-bit digits, each a 256-bin histogram in shared memory.
template <int kThreads, class Weigh>
__device__ uint32_t select_descending(int n, const Weigh& weigh, uint64_t target, BlockScratch& s,
                                      uint64_t* remaining) {
  uint32_t prefix = 0, mask = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int j = threadIdx.x; j < 256; j += kThreads) s.hist[j] = 0;
    if (threadIdx.x == 0) {  // defaults if target exceeded the total (a caller bug)
      s.selected_digit = 0;
      s.selected_target = target;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += kThreads) {
      uint32_t key;
      const uint64_t w = weigh(i, &key);
      if (w != 0 && (key & mask) == prefix) atomicAdd(reinterpret_cast<unsigned long long*>(&s.hist[(key >> shift) & 255u]), w);
    }
    __syncthreads();
    if (threadIdx.x < 32) {  // one warp finds the bin where the running mass (from the top) reaches target
      const int lane = threadIdx.x;
      uint64_t mine = 0;
      for (int t = 0; t < 8; ++t) mine += s.hist[255 - 8 * lane - t];
      const uint64_t inclusive = warp_inclusive_scan(mine);
      uint64_t above = inclusive - mine;
      if (above < target && target <= inclusive) {
        for (int t = 0; t < 8; ++t) {
          const int bin = 255 - 8 * lane - t;
          if (above + s.hist[bin] >= target) {
            s.selected_digit = uint32_t(bin);
            s.selected_target = target - above;
            break;
          }
          above += s.hist[bin];
        }
      }
    }
    __syncthreads();
    prefix |= s.selected_digit << shift;
    mask |= 0xffu << shift;
    target = s.selected_target;
    __syncthreads();  // s.hist is cleared by the next pass
  }
  *remaining = target;
  return prefix;
}

// Draws index i with probability weight(i) / sum of weights (weights in fixed point), from 64
// random bits. The order of the cumulative sum is thread-major (thread t's elements t, t + T, ...
// then thread t + 1's): any fixed order gives the same distribution, and this one needs a single
// block scan. Returns -1 if every weight is 0. weight(i) must return the same value each time.
template <int kThreads, class Weight>
__device__ int draw_fixed(int n, const Weight& weight, uint64_t bits, BlockScratch& s) {
  uint64_t mine = 0;
  for (int i = threadIdx.x; i < n; i += kThreads) mine += weight(i);
  uint64_t total;
  const uint64_t before = block_exclusive_scan<kThreads>(mine, s, &total);
  if (threadIdx.x == 0) s.result = -1;
  __syncthreads();
  if (total != 0) {
    const uint64_t r = __umul64hi(bits, total);  // uniform in [0, total)
    if (before <= r && r < before + mine) {      // exactly one thread holds r
      // One thread walks its elements again: eight weights at a time, so that their loads are in
      // flight together instead of one latency per element.
      constexpr int kUnroll = 8;
      uint64_t cumulative = before;
      int chosen = -1, last_positive = -1;
      for (int base = threadIdx.x; base < n && chosen < 0; base += kUnroll * kThreads) {
        uint64_t w[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) w[u] = base + u * kThreads < n ? weight(base + u * kThreads) : 0;
        for (int u = 0; u < kUnroll && chosen < 0; ++u) {
          if (w[u] == 0) continue;
          last_positive = base + u * kThreads;
          cumulative += w[u];
          if (cumulative > r) chosen = last_positive;
        }
      }
      s.result = chosen >= 0 ? chosen : last_positive;  // unreachable unless weight() changed between passes
    }
  }
  __syncthreads();
  const int result = s.result;
  __syncthreads();
  return result;
}

}  // namespace gptfast::cuda
