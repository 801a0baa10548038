// Features the engine has on by default and an environment variable can switch off, for
// comparisons and debugging (GPTFAST_FUSED_DECODE, GPTFAST_CUDA_GRAPHS, GPTFAST_DEVICE_SAMPLING).
#pragma once

#include <cstdlib>
#include <cstring>

namespace gptfast {

// On unless the variable is set to "0".
inline bool switched_on(const char* variable) {
  const char* v = std::getenv(variable);
  return !(v && std::strcmp(v, "0") == 0);
}

}  // namespace gptfast
