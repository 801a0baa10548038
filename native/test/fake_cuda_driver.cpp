// A stand-in for the NVIDIA driver's libcuda.so.1 on machines without one (this project's CI):
// the four entry points the driver probe (include/gptfast/driver_probe.h) calls, answering what
// the environment says, so that the Java tests drive the natives chooser through the real
// dlopen path: GPTFAST_FAKE_CUDA_VERSION (cuDriverGetVersion, default 13020 = CUDA 13.2),
// GPTFAST_FAKE_CUDA_DEVICES (default 1; 0 makes cuInit answer CUDA_ERROR_NO_DEVICE) and
// GPTFAST_FAKE_CUDA_FAIL=version|init (that call fails with CUDA_ERROR_UNKNOWN). Nothing else
// of the driver exists here: anything that gets further than the probe fails to load CUDA.
#include <cstdlib>
#include <cstring>

namespace {
constexpr int kSuccess = 0, kNoDevice = 100, kUnknown = 999;

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

bool fails(const char* call) {
  const char* f = std::getenv("GPTFAST_FAKE_CUDA_FAIL");
  return f && std::strcmp(f, call) == 0;
}
}  // namespace

extern "C" {
int cuDriverGetVersion(int* version) {
  if (fails("version")) return kUnknown;
  *version = env_int("GPTFAST_FAKE_CUDA_VERSION", 13020);
  return kSuccess;
}

int cuInit(unsigned) {
  if (fails("init")) return kUnknown;
  return env_int("GPTFAST_FAKE_CUDA_DEVICES", 1) > 0 ? kSuccess : kNoDevice;
}

int cuDeviceGetCount(int* count) {
  *count = env_int("GPTFAST_FAKE_CUDA_DEVICES", 1);
  return kSuccess;
}

int cuGetErrorName(int error, const char** name) {
  *name = error == kNoDevice ? "CUDA_ERROR_NO_DEVICE" : error == kUnknown ? "CUDA_ERROR_UNKNOWN" : nullptr;
  return *name ? kSuccess : 1;  // CUDA_ERROR_INVALID_VALUE for codes this stand-in never returns
}
}
