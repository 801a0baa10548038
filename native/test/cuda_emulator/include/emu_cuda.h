// A CPU stand-in for the part of CUDA the kernels in src/cuda use, so that their algorithms can be
// tested without a GPU (run.sh). A launch runs its blocks one after another; a block's threads are
// fibers (ucontext, switched with _setjmp/_longjmp) on the calling OS thread, and __syncthreads and
// warp shuffles are points where a fiber yields until every live thread of its block (or warp)
// has arrived. Everything here runs on one OS thread, hence the unlocked globals (threadIdx, the
// current block, graph capture). Device memory is host memory; graphs record launches as closures.
#pragma once
#include <setjmp.h>
#include <ucontext.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static  // one block at a time: a function static is that block's shared memory
#define __restrict__

using std::isfinite;
using std::min;
using std::max;

struct emu_dim3 { unsigned x = 0, y = 0, z = 0; };
inline emu_dim3 threadIdx, blockIdx, blockDim;

struct float4 { float x, y, z, w; };
struct uint4 { unsigned x, y, z, w; };
struct uint2 { unsigned x, y; };
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
template <class T> inline T __ldg(const T* p) { return *p; }

namespace emu {
// Threads of a block are fibers (ucontext) on one OS thread: barriers are a switch, not a wakeup.
struct Fiber { ucontext_t ctx; jmp_buf jb; char* stack = nullptr; int waiting = -1; bool done = false, started = false; };  // waiting: -1 none, 0 block, 1+w warp w
struct Block {
  std::vector<Fiber> fibers; jmp_buf sched; int current = 0; std::vector<uint64_t> exchange;
  const std::function<void()>* body = nullptr;
};
inline Block* ctx = nullptr;
inline bool capturing = false;
inline std::vector<std::function<void()>> captured;

inline void fiber_main() {
  Block& b = *ctx;
  (*b.body)();
  b.fibers[b.current].done = true;
  _longjmp(b.sched, 1);
}
inline void wait(int kind) {
  Block& b = *ctx;
  b.fibers[b.current].waiting = kind;
  if (!_setjmp(b.fibers[b.current].jb)) _longjmp(b.sched, 1);
}
inline void run(unsigned grid, unsigned threads, const std::function<void()>& body) {
  for (unsigned g = 0; g < grid; ++g) {
    Block b;
    b.fibers.resize(threads);
    b.exchange.resize(threads);
    b.body = &body;
    ctx = &b;
    for (unsigned t = 0; t < threads; ++t) {
      Fiber& f = b.fibers[t];
      static std::vector<std::unique_ptr<char[]>> stacks;  // reused by every block
      constexpr size_t kStack = 128 * 1024;
      while (stacks.size() <= t) stacks.emplace_back(new char[kStack]);
      f.stack = stacks[t].get();
      getcontext(&f.ctx);
      f.ctx.uc_stack.ss_sp = f.stack;
      f.ctx.uc_stack.ss_size = kStack;
      f.ctx.uc_link = nullptr;
      makecontext(&f.ctx, fiber_main, 0);
    }
    blockIdx.x = g; blockDim.x = threads;
    for (;;) {
      bool ran = false;
      for (unsigned t = 0; t < threads; ++t) {
        Fiber& f = b.fibers[t];
        if (f.done || f.waiting >= 0) continue;
        b.current = int(t); threadIdx.x = t;
        if (!_setjmp(b.sched)) {
          if (!f.started) { f.started = true; setcontext(&f.ctx); }
          _longjmp(f.jb, 1);
        }
        ran = true;
      }
      if (ran) continue;
      bool all_done = true, released = false;
      for (auto& f : b.fibers) all_done = all_done && f.done;
      if (all_done) break;
      // Release a barrier whose live participants all wait at it.
      for (int kind = 0; kind <= int((threads + 31) / 32) && !released; ++kind) {
        int waiting = 0, live = 0;
        for (unsigned t = 0; t < threads; ++t) {
          if (kind > 0 && int(t / 32) != kind - 1) continue;
          if (b.fibers[t].done) continue;
          ++live;
          if (b.fibers[t].waiting == kind) ++waiting;
        }
        if (live > 0 && waiting == live) {
          for (unsigned t = 0; t < threads; ++t) if (b.fibers[t].waiting == kind && (kind == 0 || int(t / 32) == kind - 1)) b.fibers[t].waiting = -1;
          released = true;
        }
      }
      if (!released) { std::fprintf(stderr, "emu: deadlock in block %u\n", g); std::abort(); }
    }
    ctx = nullptr;
  }
}
template <class G, class T, class S, class St>
void launch(G grid, T threads, S, St, std::function<void()> body) {
  if (capturing) { captured.push_back([=] { run(unsigned(grid), unsigned(threads), body); }); return; }
  run(unsigned(grid), unsigned(threads), body);
}
template <class T> T exchange(T v, int src) {
  Block& c = *ctx; const int warp = threadIdx.x / 32; const unsigned me = threadIdx.x;
  uint64_t bits = 0; std::memcpy(&bits, &v, sizeof(T)); c.exchange[me] = bits;
  wait(1 + warp);
  const uint64_t got = c.exchange[warp * 32 + src];
  wait(1 + warp);
  T out; std::memcpy(&out, &got, sizeof(T)); return out;
}
}  // namespace emu

inline void __syncthreads() { emu::wait(0); }
template <class T> T __shfl_xor_sync(unsigned, T v, int offset) { return emu::exchange(v, int(threadIdx.x & 31) ^ offset); }
template <class T> T __shfl_up_sync(unsigned, T v, unsigned d) { const int lane = threadIdx.x & 31; return emu::exchange(v, lane >= int(d) ? lane - int(d) : lane); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
inline int atomicMin(int* p, int v) { int old = __atomic_load_n(p, __ATOMIC_SEQ_CST); while (v < old && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {} return old; }
inline uint64_t __umul64hi(uint64_t a, uint64_t b) { return uint64_t((unsigned __int128)a * b >> 64); }
inline unsigned long long __float2ull_rn(float f) { return (unsigned long long)std::nearbyint(double(f)); }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline float __fdiv_rn(float a, float b) { volatile float r = a / b; return r; }
inline float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
inline float __fadd_rn(float a, float b) { volatile float r = a + b; return r; }
inline float __fsub_rn(float a, float b) { volatile float r = a - b; return r; }
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
  const uint64_t bytes = uint64_t(x) | uint64_t(y) << 32; unsigned r = 0;
  for (int i = 0; i < 4; ++i) r |= unsigned((bytes >> (8 * ((s >> (4 * i)) & 7))) & 0xff) << (8 * i);
  return r;
}
struct __nv_bfloat16 { uint16_t x; };
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t b = __float_as_uint(f);
  if (std::isnan(f)) return {uint16_t((b >> 16) | 0x40)};
  b += 0x7fff + ((b >> 16) & 1); return {uint16_t(b >> 16)};
}
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.x; }

// ---- runtime API ----
typedef enum cudaError { cudaSuccess = 0, cudaErrorInvalidValue = 1 } cudaError_t;
typedef struct CUstream_st* cudaStream_t;
typedef struct CUgraph_st* cudaGraph_t;
typedef struct CUgraphExec_st* cudaGraphExec_t;
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal };
constexpr unsigned cudaStreamNonBlocking = 1;
inline const char* cudaGetErrorString(cudaError_t) { return "emulated"; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaGetDeviceCount(int* n) { *n = 1; return cudaSuccess; }
inline cudaError_t cudaMalloc(void** p, size_t n) { *p = std::calloc(1, n + 64); return cudaSuccess; }
inline cudaError_t cudaFree(void* p) { std::free(p); return cudaSuccess; }
inline cudaError_t cudaMemcpy(void* d, const void* s, size_t n, cudaMemcpyKind) { std::memcpy(d, s, n); return cudaSuccess; }
inline cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n, cudaMemcpyKind, cudaStream_t) { std::memcpy(d, s, n); return cudaSuccess; }
inline cudaError_t cudaMemsetAsync(void* d, int v, size_t n, cudaStream_t) { std::memset(d, v, n); return cudaSuccess; }
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) { *s = nullptr; return cudaSuccess; }
inline cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode) { emu::capturing = true; emu::captured.clear(); return cudaSuccess; }
inline cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t* g) { emu::capturing = false; *g = nullptr; return cudaSuccess; }
inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t* e, cudaGraph_t, unsigned long long) { *e = nullptr; return cudaSuccess; }
inline cudaError_t cudaGraphLaunch(cudaGraphExec_t, cudaStream_t) { for (auto& f : emu::captured) f(); return cudaSuccess; }
inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t) { return cudaSuccess; }
inline cudaError_t cudaGraphDestroy(cudaGraph_t) { return cudaSuccess; }
