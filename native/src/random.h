// The engine's seeded generator: a seed reproduces a run exactly, on any platform.
#pragma once

#include <cstdint>
#include <random>

namespace gptfast {

class Random {
 public:
  void seed(uint64_t s) { engine_.seed(s); }
  // Uniform in [0, 1) from 53 random bits (std::uniform_real_distribution is library-specific).
  double uniform() { return double(engine_() >> 11) * 0x1.0p-53; }

 private:
  std::mt19937_64 engine_{0};
};

}  // namespace gptfast
