// Weight-only quantized (int8, int4) and bf16 matrix-vector products for decode, batch 1..8.
// Decode is bound by reading the weights once, so the design is about bytes in flight: each warp
// owns R consecutive output rows and streams them with 16-byte loads (lane l takes chunks l,
// l + 32, ...), the activations (small, L1/L2-resident) are loaded once per chunk and reused for
// the R rows and the batch, and the warp reduces its fp32 partial sums with shuffles at the end.
// Weights are decoded to fp32 exactly (int8 and int4 by the 2^23 float trick: one byte-permute and
// one subtraction, no int-to-float conversion), so the result is the fp32 dot product of the
// dequantized weights. Shapes or pointers that do not allow 16-byte loads take an element-wise
// kernel with the same arithmetic.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "cuda/common.cuh"
#include "cuda/kernels.h"

namespace gptfast::cuda {
namespace {

constexpr int kWarps = 4;  // per block
constexpr int kThreads = kWarps * 32;

// ---- activations ---------------------------------------------------------------------------------

__device__ __forceinline__ float bf16_bits_to_float(uint32_t bits16) { return __uint_as_float(bits16 << 16); }

__device__ __forceinline__ float load1(const float* p) { return __ldg(p); }
__device__ __forceinline__ float load1(const uint16_t* p) { return bf16_bits_to_float(__ldg(p)); }

// Four consecutive activations starting at column c of a row of `in`; columns >= in read as 0
// (the padded tail of an int4 weight).
__device__ __forceinline__ float4 load4(const float* row, int c, int in) {
  if (c + 4 <= in) return __ldg(reinterpret_cast<const float4*>(row + c));
  return make_float4(c < in ? row[c] : 0.0f, c + 1 < in ? row[c + 1] : 0.0f, c + 2 < in ? row[c + 2] : 0.0f,
                     c + 3 < in ? row[c + 3] : 0.0f);
}
__device__ __forceinline__ float4 load4(const uint16_t* row, int c, int in) {
  if (c + 4 <= in) {
    const uint2 u = __ldg(reinterpret_cast<const uint2*>(row + c));
    return make_float4(__uint_as_float(u.x << 16), __uint_as_float(u.x & 0xffff0000u), __uint_as_float(u.y << 16),
                       __uint_as_float(u.y & 0xffff0000u));
  }
  return make_float4(c < in ? load1(row + c) : 0.0f, c + 1 < in ? load1(row + c + 1) : 0.0f,
                     c + 2 < in ? load1(row + c + 2) : 0.0f, c + 3 < in ? load1(row + c + 3) : 0.0f);
}

__device__ __forceinline__ void store(float* p, float v) { *p = v; }
__device__ __forceinline__ void store(uint16_t* p, float v) { *p = __bfloat16_as_ushort(__float2bfloat16_rn(v)); }

// ---- weights -------------------------------------------------------------------------------------
// A weight format: kCols columns per 16-byte chunk; chunk(row, j) the j-th chunk of a row;
// chunk_params(row, j) what decoding that chunk needs besides its bits; decode(chunk, sub, group, w)
// columns 4*sub .. 4*sub+3 of the chunk as fp32; element(row, c) one weight for the element-wise
// kernel; finish(row, acc) the per-row epilogue.

__device__ __forceinline__ uint32_t word(const uint4& v, int i) { return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w; }

struct NoGroup {};

struct Int8Weight {
  const int8_t* q;
  const float* scales;
  int in;
  static constexpr int kCols = 16;
  __device__ uint4 chunk(int row, int j) const {
    return __ldg(reinterpret_cast<const uint4*>(q + size_t(row) * size_t(in)) + j);
  }
  __device__ NoGroup chunk_params(int, int) const { return {}; }
  __device__ void decode(const uint4& v, int sub, NoGroup, float w[4]) const {
    // Byte b + 128 under exponent 2^23 is the float 2^23 + 128 + b exactly.
    const uint32_t biased = word(v, sub) ^ 0x80808080u;
#pragma unroll
    for (int t = 0; t < 4; ++t) w[t] = __uint_as_float(__byte_perm(biased, 0x4b00u, 0x5440u + t)) - 8388736.0f;
  }
  __device__ float element(int row, int c) const { return float(q[size_t(row) * size_t(in) + c]); }
  __device__ float finish(int row, float acc) const { return acc * scales[row]; }  // q * s summed = s * sum q
};

struct Bf16Weight {
  const uint16_t* w;
  int in;
  static constexpr int kCols = 8;
  __device__ uint4 chunk(int row, int j) const {
    return __ldg(reinterpret_cast<const uint4*>(w + size_t(row) * size_t(in)) + j);
  }
  __device__ NoGroup chunk_params(int, int) const { return {}; }
  __device__ void decode(const uint4& v, int sub, NoGroup, float out[4]) const {
    const uint32_t a = word(v, 2 * sub), b = word(v, 2 * sub + 1);
    out[0] = __uint_as_float(a << 16);
    out[1] = __uint_as_float(a & 0xffff0000u);
    out[2] = __uint_as_float(b << 16);
    out[3] = __uint_as_float(b & 0xffff0000u);
  }
  __device__ float element(int row, int c) const { return bf16_bits_to_float(w[size_t(row) * size_t(in) + c]); }
  __device__ float finish(int, float acc) const { return acc; }
};

struct ScaleZero {
  float scale, zero;
};

struct Int4Weight {
  const uint8_t* q;               // [out, padded/2]
  const uint16_t* scales_zeros;   // bf16 [out, padded/group, 2]
  int padded, group;
  static constexpr int kCols = 32;  // a chunk never straddles groups: group is a multiple of 32
  __device__ ScaleZero scale_zero(int row, int c) const {
    const size_t at = (size_t(row) * size_t(padded / group) + size_t(c / group)) * 2;
    return {bf16_bits_to_float(__ldg(scales_zeros + at)), bf16_bits_to_float(__ldg(scales_zeros + at + 1))};
  }
  __device__ uint4 chunk(int row, int j) const {
    return __ldg(reinterpret_cast<const uint4*>(q + size_t(row) * size_t(padded / 2)) + j);
  }
  __device__ ScaleZero chunk_params(int row, int j) const { return scale_zero(row, j * kCols); }
  // (q - 8) as a float: nibble q under exponent 2^23 is 2^23 + q exactly.
  __device__ static float centered(uint32_t nibble) { return __uint_as_float(0x4b000000u | nibble) - 8388616.0f; }
  __device__ void decode(const uint4& v, int sub, ScaleZero g, float w[4]) const {
    // Columns 4*sub .. 4*sub+3 are bytes 2*sub and 2*sub+1 of the chunk, high nibble first.
    const uint32_t bytes = word(v, sub / 2) >> (16 * (sub % 2));
    w[0] = fmaf(centered((bytes >> 4) & 15u), g.scale, g.zero);
    w[1] = fmaf(centered(bytes & 15u), g.scale, g.zero);
    w[2] = fmaf(centered((bytes >> 12) & 15u), g.scale, g.zero);
    w[3] = fmaf(centered((bytes >> 8) & 15u), g.scale, g.zero);
  }
  __device__ float element(int row, int c) const {
    const uint32_t byte = q[size_t(row) * size_t(padded / 2) + c / 2];
    const ScaleZero g = scale_zero(row, c);
    return fmaf(centered((c % 2 == 0) ? byte >> 4 : byte & 15u), g.scale, g.zero);
  }
  __device__ float finish(int, float acc) const { return acc; }
};

// ---- kernels -------------------------------------------------------------------------------------

// Writes the warp's R x B sums (reduced over its lanes) to y[b, row].
template <class W, int R, int B, class XT>
__device__ void reduce_and_store(const W& w, float (&acc)[R][B], int row0, int out, int batch, XT* y) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int b = 0; b < B; ++b) {
      const float sum = warp_sum(acc[r][b]);
      if (lane == 0 && row0 + r < out && b < batch) store(y + size_t(b) * size_t(out) + row0 + r, w.finish(row0 + r, sum));
    }
  }
}

template <class W, int R, int B, class XT>
__global__ void __launch_bounds__(kThreads) gemv_vector(W w, const XT* __restrict__ x, XT* __restrict__ y, int out, int in,
                                                        int chunks) {
  const int lane = threadIdx.x & 31;
  const int row0 = (blockIdx.x * kWarps + threadIdx.x / 32) * R;
  if (row0 >= out) return;  // the whole warp leaves; nothing below synchronises the block
  float acc[R][B] = {};
  for (int j = lane; j < chunks; j += 32) {
    uint4 v[R];
    decltype(w.chunk_params(0, 0)) g[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {  // rows past the end repeat the last row (loaded, never stored)
      const int row = min(row0 + r, out - 1);
      v[r] = w.chunk(row, j);
      g[r] = w.chunk_params(row, j);
    }
#pragma unroll
    for (int sub = 0; sub < W::kCols / 4; ++sub) {
      const int c = j * W::kCols + 4 * sub;
      float4 xs[B];
#pragma unroll
      for (int b = 0; b < B; ++b) xs[b] = load4(x + size_t(b) * size_t(in), c, in);
#pragma unroll
      for (int r = 0; r < R; ++r) {
        float wf[4];
        w.decode(v[r], sub, g[r], wf);
#pragma unroll
        for (int b = 0; b < B; ++b) {
          acc[r][b] = fmaf(wf[0], xs[b].x, acc[r][b]);
          acc[r][b] = fmaf(wf[1], xs[b].y, acc[r][b]);
          acc[r][b] = fmaf(wf[2], xs[b].z, acc[r][b]);
          acc[r][b] = fmaf(wf[3], xs[b].w, acc[r][b]);
        }
      }
    }
  }
  reduce_and_store(w, acc, row0, out, B, y);
}

// Any shape and alignment: lane l takes columns l, l + 32, ...; the batch is a runtime value.
template <class W, int R, class XT>
__global__ void __launch_bounds__(kThreads) gemv_elementwise(W w, const XT* __restrict__ x, XT* __restrict__ y, int out,
                                                             int in, int batch) {
  const int lane = threadIdx.x & 31;
  const int row0 = (blockIdx.x * kWarps + threadIdx.x / 32) * R;
  if (row0 >= out) return;
  float acc[R][kMaxGemvBatch] = {};
  for (int c = lane; c < in; c += 32) {
    float xs[kMaxGemvBatch];
#pragma unroll
    for (int b = 0; b < kMaxGemvBatch; ++b) xs[b] = b < batch ? load1(x + size_t(b) * size_t(in) + c) : 0.0f;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const float wf = w.element(min(row0 + r, out - 1), c);
#pragma unroll
      for (int b = 0; b < kMaxGemvBatch; ++b) acc[r][b] = fmaf(wf, xs[b], acc[r][b]);
    }
  }
  reduce_and_store(w, acc, row0, out, batch, y);
}

// ---- dispatch ------------------------------------------------------------------------------------

bool aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

template <class W, int B, class XT>
void launch_vector(const W& w, const XT* x, XT* y, int out, int in, int chunks, cudaStream_t stream) {
  constexpr int R = B <= 2 ? 4 : 2;  // more rows per warp reuse the activations more; fewer keep registers for the batch
  const int blocks = (out + kWarps * R - 1) / (kWarps * R);
  gemv_vector<W, R, B, XT><<<blocks, kThreads, 0, stream>>>(w, x, y, out, in, chunks);
}

template <class W, class XT>
void launch(const char* name, const W& w, bool vector_loads, const void* xv, void* yv, int out, int in, int batch,
            cudaStream_t stream) {
  const XT* x = static_cast<const XT*>(xv);
  XT* y = static_cast<XT*>(yv);
  // Activations are read 4 at a time: 16 bytes (fp32) or 8 (bf16), so rows of `in` must keep that alignment.
  vector_loads = vector_loads && in % 4 == 0 && aligned(x, 4 * sizeof(XT));
  if (!vector_loads) {
    constexpr int R = 2;
    const int blocks = (out + kWarps * R - 1) / (kWarps * R);
    gemv_elementwise<W, R, XT><<<blocks, kThreads, 0, stream>>>(w, x, y, out, in, batch);
  } else {
    const int chunks = (in + W::kCols - 1) / W::kCols;  // chunks wholly in an int4 weight's padding are skipped
    switch (batch) {
      case 1: launch_vector<W, 1>(w, x, y, out, in, chunks, stream); break;
      case 2: launch_vector<W, 2>(w, x, y, out, in, chunks, stream); break;
      case 3: launch_vector<W, 3>(w, x, y, out, in, chunks, stream); break;
      case 4: launch_vector<W, 4>(w, x, y, out, in, chunks, stream); break;
      case 5: launch_vector<W, 5>(w, x, y, out, in, chunks, stream); break;
      case 6: launch_vector<W, 6>(w, x, y, out, in, chunks, stream); break;
      case 7: launch_vector<W, 7>(w, x, y, out, in, chunks, stream); break;
      default: launch_vector<W, 8>(w, x, y, out, in, chunks, stream); break;
    }
  }
  check_launch(name);
}

template <class W>
void launch_any(const char* name, const W& w, bool vector_loads, const void* x, void* y, int out, int in, int batch,
                ActDtype dtype, cudaStream_t stream) {
  if (dtype == ActDtype::f32) {
    launch<W, float>(name, w, vector_loads, x, y, out, in, batch, stream);
  } else {
    launch<W, uint16_t>(name, w, vector_loads, x, y, out, in, batch, stream);
  }
}

void check_common(const char* name, const void* w, int out, int in, const void* x, const void* y, int batch,
                  ActDtype dtype) {
  require(w != nullptr && x != nullptr && y != nullptr, name, "weight, x and y must not be null");
  require(out >= 1 && in >= 1, name, "shape must be positive, got [" + std::to_string(out) + ", " + std::to_string(in) + "]");
  require(batch >= 1 && batch <= kMaxGemvBatch, name,
          "batch must be in [1, " + std::to_string(kMaxGemvBatch) + "], got " + std::to_string(batch));
  require(dtype == ActDtype::f32 || dtype == ActDtype::bf16, name, "activation dtype must be f32 or bf16");
  const size_t x_bytes = dtype == ActDtype::f32 ? 4 : 2;
  require(aligned(x, x_bytes) && aligned(y, x_bytes), name, "x and y must be aligned to their element size");
}

}  // namespace

void gemv_int8(const int8_t* q, const float* scales, int out, int in, const void* x, void* y, int batch,
               ActDtype dtype, cudaStream_t stream) {
  constexpr const char* kName = "gemv_int8";
  check_common(kName, q, out, in, x, y, batch, dtype);
  require(scales != nullptr, kName, "scales is null");
  launch_any(kName, Int8Weight{q, scales, in}, in % Int8Weight::kCols == 0 && aligned(q, 16), x, y, out, in, batch,
             dtype, stream);
}

void gemv_int4(const uint8_t* q, const uint16_t* scales_zeros, int out, int in, int padded_in, int group,
               const void* x, void* y, int batch, ActDtype dtype, cudaStream_t stream) {
  constexpr const char* kName = "gemv_int4";
  check_common(kName, q, out, in, x, y, batch, dtype);
  require(scales_zeros != nullptr, kName, "scales_zeros is null");
  require(group == 32 || group == 64 || group == 128 || group == 256, kName,
          "group must be 32, 64, 128 or 256, got " + std::to_string(group));
  require(padded_in >= in && padded_in % group == 0, kName,
          "padded_in must be >= in and a multiple of the group, got " + std::to_string(padded_in) + " (in " +
              std::to_string(in) + ", group " + std::to_string(group) + ")");
  // Rows are padded/2 bytes, a multiple of 16, so 16-byte loads only need an aligned base.
  launch_any(kName, Int4Weight{q, scales_zeros, padded_in, group}, aligned(q, 16), x, y, out, in, batch, dtype,
             stream);
}

void gemv_bf16(const uint16_t* w, int out, int in, const void* x, void* y, int batch, ActDtype dtype,
               cudaStream_t stream) {
  constexpr const char* kName = "gemv_bf16";
  check_common(kName, w, out, in, x, y, batch, dtype);
  launch_any(kName, Bf16Weight{w, in}, in % Bf16Weight::kCols == 0 && aligned(w, 16), x, y, out, in, batch, dtype,
             stream);
}

}  // namespace gptfast::cuda
