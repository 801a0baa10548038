// Which libtorch this process has loaded, asked of the dynamic linker without linking libtorch.
// The Java loader (NativeLibrary) must know the loaded libtorch's version before it loads
// libgptfast.so: the JVM binds functions lazily, so libgptfast.so loads against a libtorch of
// another version (2.7.1 under 2.10.0 headers does) and the first call to a changed function
// kills the process. Header-only and torch-free: JavaCPP compiles it into a JNI library of its own
// (TorchProbe) that needs only libc, and the bytedeco and the directory paths ask it alike.
#pragma once

#include <dlfcn.h>
#include <link.h>

#include <stdexcept>
#include <string>

namespace gptfast {

// The path the dynamic linker loaded the first object from whose file name starts with `prefix`
// ("libtorch_cpu.so", "libcudart"); "" when none is loaded.
inline std::string loaded_library(const std::string& prefix) {
  struct Search {
    const std::string& prefix;
    std::string path;
  } search{prefix, {}};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) -> int {
        auto* s = static_cast<Search*>(data);
        std::string name = info->dlpi_name ? info->dlpi_name : "";
        size_t slash = name.rfind('/');
        if (name.compare(slash == std::string::npos ? 0 : slash + 1, s->prefix.size(), s->prefix) != 0) return 0;
        s->path = name;
        return 1;
      },
      &search);
  return search.path;
}

// at::show_config() of the libtorch_cpu.so already loaded from `path` (RTLD_NOLOAD: never loads
// it). Throws std::runtime_error when it is not loaded or exports no C++11-ABI show_config().
inline std::string torch_config(const std::string& path) {
  void* handle = dlopen(path.c_str(), RTLD_LAZY | RTLD_NOLOAD);
  if (!handle) throw std::runtime_error(path + " is not loaded");
  using ShowConfig = std::string (*)();
  auto show_config = reinterpret_cast<ShowConfig>(dlsym(handle, "_ZN2at11show_configB5cxx11Ev"));
  bool old_abi = !show_config && dlsym(handle, "_ZN2at11show_configEv");
  std::string config = show_config ? show_config() : "";
  dlclose(handle);  // drops only the reference RTLD_NOLOAD added
  if (old_abi) {
    throw std::runtime_error(path + " is built with the pre-C++11 std::string ABI, which libgptfast.so cannot link to");
  }
  if (!show_config) throw std::runtime_error(path + " does not export at::show_config()");
  return config;
}

}  // namespace gptfast
