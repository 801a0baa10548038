// What the kernel tests share (matvec_test.cpp, quantize_test.cpp): the ISA variants this CPU can
// run, their names, bf16 rounding, and a scoped intra-op thread count.
#pragma once

#include <ATen/Parallel.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "matvec.h"

namespace kernel_test {

using gptfast::MatvecKernel;

inline uint16_t to_bf16(float f) {  // round to nearest even
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  bits += 0x7fff + ((bits >> 16) & 1);
  return uint16_t(bits >> 16);
}

inline std::vector<MatvecKernel> kernels() {
  std::vector<MatvecKernel> out;
  for (MatvecKernel k : {MatvecKernel::automatic, MatvecKernel::baseline, MatvecKernel::avx2,
                         MatvecKernel::avx512_shape_on_avx2, MatvecKernel::avx512, MatvecKernel::avx512_vnni}) {
    if (gptfast::matvec_kernel_supported(k)) out.push_back(k);
  }
  return out;
}

inline const char* name(MatvecKernel k) {
  switch (k) {
    case MatvecKernel::automatic: return "automatic";
    case MatvecKernel::baseline: return "baseline";
    case MatvecKernel::avx2: return "avx2";
    case MatvecKernel::avx512: return "avx512";
    case MatvecKernel::avx512_shape_on_avx2: return "avx512_shape_on_avx2";
    case MatvecKernel::avx512_vnni: return "avx512_vnni";
  }
  return "?";
}

class ThreadCount {
 public:
  explicit ThreadCount(int n) : previous_(at::get_num_threads()) { at::set_num_threads(n); }
  ~ThreadCount() { at::set_num_threads(previous_); }

 private:
  int previous_;
};

}  // namespace kernel_test
