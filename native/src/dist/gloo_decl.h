// The few declarations of c10d::ProcessGroupGloo that gptfast4j calls, without <gloo/...>.
//
// Why not ProcessGroupGloo.hpp: it includes Gloo's own headers, which neither the torch wheel
// (our header source) nor the bytedeco jars ship, and CI reaches no GitHub. Debian's libgloo-dev
// is a 2022 snapshot, not the Gloo torch 2.10 bundles. bytedeco's Java binding
// (org.bytedeco.pytorch.ProcessGroupGloo) would work from Java but not from native tests or
// native rank threads. So this header declares exactly what we use, all exported by
// libtorch_cpu.so (checked with nm): the constructor, the destructor, Options::create_default.
// Everything else goes through the abstract c10d::Backend, whose header needs no Gloo.
//
// The one fact we cannot get from a symbol is the object size (`new` needs it): 0x1e8 bytes,
// read from the `operator new(0x1e8)` in ProcessGroupGloo::merge of bytedeco's torch 2.10.0
// build (objdump). Every member Gloo types is held by pointer (shared_ptr/unique_ptr), so the
// layout does not depend on Gloo's headers. A different torch fails the static_assert below,
// which says to measure again; the allreduce tests (test/tensor_parallel_test.cpp) then check it.
#pragma once

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/version.h>

#include <chrono>

static_assert(TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR == 10,
              "gloo_decl.h declares ProcessGroupGloo as torch 2.10 lays it out; re-measure its size "
              "(objdump ProcessGroupGloo::merge) for another torch");

namespace gloo::transport {
class Device;
}

namespace c10d {

class TORCH_API ProcessGroupGloo : public Backend {
 public:
  static constexpr size_t kObjectSize = 0x1e8;

  struct TORCH_API Options : public Backend::Options {
    // Options with the default device: the host name's address, or loopback when it does not resolve.
    static c10::intrusive_ptr<Options> create_default(std::chrono::milliseconds timeout);
  };

  // Joins the group through `store`; blocks until all `size` ranks have joined (or the timeout).
  ProcessGroupGloo(const c10::intrusive_ptr<Store>& store, int rank, int size, c10::intrusive_ptr<Options> options);
  ~ProcessGroupGloo() override;

 private:
  unsigned char opaque_[kObjectSize - sizeof(Backend)];
};

}  // namespace c10d
