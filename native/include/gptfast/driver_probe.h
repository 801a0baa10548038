// Which CUDA version the NVIDIA driver supports, asked of libcuda.so.1 through dlopen/dlsym: no
// CUDA header or library at build time, nothing but libc at run time, and an answer (never a
// crash) where the driver is absent or broken. The Java loader (NativeLibrary) chooses between
// the CPU and the GPU natives from it before it loads either. Header-only: JavaCPP compiles it
// into the probe's JNI library (TorchProbe), beside torch_probe.h.
#pragma once

#include <dlfcn.h>

#include <string>

namespace gptfast {

// One line, tab-separated: "none\t<dlerror>" when `library` cannot be loaded (no driver);
// "ok\t<version>\t<devices>\t<note>" with the version as cuDriverGetVersion reports it
// (1000 * major + 10 * minor: 13020 is CUDA 13.2) and the devices cuDeviceGetCount sees after
// cuInit (0 with the reason in <note> when cuInit finds none); "error\t<what failed>" otherwise.
inline std::string cuda_driver(const std::string& library) {
  using Result = int;  // CUresult: an enum, int-sized; 0 is CUDA_SUCCESS, 100 CUDA_ERROR_NO_DEVICE
  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = dlerror();
    return std::string("none\t") + (why ? why : library + ": cannot be loaded");
  }
  auto symbol = [&](const char* name) { return dlsym(handle, name); };
  auto get_version = reinterpret_cast<Result (*)(int*)>(symbol("cuDriverGetVersion"));
  auto init = reinterpret_cast<Result (*)(unsigned)>(symbol("cuInit"));
  auto device_count = reinterpret_cast<Result (*)(int*)>(symbol("cuDeviceGetCount"));
  auto error_name = reinterpret_cast<Result (*)(Result, const char**)>(symbol("cuGetErrorName"));
  auto name_of = [&](Result r) {
    const char* name = nullptr;
    if (error_name && error_name(r, &name) == 0 && name) return std::string(name);
    return "CUresult " + std::to_string(r);
  };
  if (!get_version || !init || !device_count) {
    dlclose(handle);  // nothing of it ran: safe to unload
    return "error\t" + library + " exports no cuDriverGetVersion/cuInit/cuDeviceGetCount (not an NVIDIA driver library?)";
  }
  int version = 0;
  if (Result r = get_version(&version); r != 0) {
    std::string error = "error\tcuDriverGetVersion failed: " + name_of(r);  // before unloading what names it
    dlclose(handle);
    return error;
  }
  // From cuInit on the driver may run threads of its own: the library stays loaded for the
  // process (libtorch loads the same one anyway), so the handle is deliberately never closed.
  int devices = 0;
  std::string note;
  if (Result r = init(0); r != 0) {
    note = "cuInit: " + name_of(r);
  } else if (Result c = device_count(&devices); c != 0) {
    devices = 0;
    note = "cuDeviceGetCount: " + name_of(c);
  }
  return "ok\t" + std::to_string(version) + "\t" + std::to_string(devices) + "\t" + note;
}

}  // namespace gptfast
