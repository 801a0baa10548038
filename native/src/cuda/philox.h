// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011), the
// counter-based generator the sampling kernels draw from. Counter-based so that a draw is a pure
// function of (seed, counter, draw index): graph replay only has to advance a counter in device
// memory, and a row needs no generator state beyond that. Compiles for host and device, so that
// the CPU tests check it against Random123's known answers.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define GPTFAST_HD __host__ __device__ __forceinline__
#else
#define GPTFAST_HD inline
#endif

namespace gptfast::cuda {

struct Philox4 {
  uint32_t v[4];
};

GPTFAST_HD Philox4 philox4x32_10(Philox4 ctr, uint32_t key0, uint32_t key1) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {  // Weyl key schedule
      key0 += 0x9E3779B9u;
      key1 += 0xBB67AE85u;
    }
    const uint64_t p0 = uint64_t(0xD2511F53u) * ctr.v[0];
    const uint64_t p1 = uint64_t(0xCD9E8D57u) * ctr.v[2];
    ctr = Philox4{{uint32_t(p1 >> 32) ^ ctr.v[1] ^ key0, uint32_t(p1), uint32_t(p0 >> 32) ^ ctr.v[3] ^ key1,
                   uint32_t(p0)}};
  }
  return ctr;
}

// 64 random bits for draw `index` of launch `counter` under `seed`: distinct (counter, index)
// pairs give independent draws.
GPTFAST_HD uint64_t philox_bits(uint64_t seed, uint64_t counter, uint32_t index) {
  const Philox4 r = philox4x32_10(Philox4{{uint32_t(counter), uint32_t(counter >> 32), index, 0u}}, uint32_t(seed),
                                  uint32_t(seed >> 32));
  return uint64_t(r.v[0]) << 32 | r.v[1];
}

// Uniform in [0, 1) from the top 53 bits, as gptfast::Random::uniform() makes it.
GPTFAST_HD double bits_to_uniform(uint64_t bits) { return double(bits >> 11) * 0x1.0p-53; }

}  // namespace gptfast::cuda
