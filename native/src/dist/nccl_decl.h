// The few declarations of c10d::ProcessGroupNCCL that gptfast4j calls, without
// <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>.
//
// Why not that header: it includes NCCL's nccl.h (not in the torch wheel we take headers from) and
// ATen/cuda/CUDAContext.h, which includes cuBLAS, cuSPARSE and cuSOLVER headers that the PyPI
// compiler wheels build.sh fetches do not carry: using it would mean four more pinned downloads
// in every CI run for three declarations. So, as dist/gloo_decl.h does for Gloo, this declares
// exactly what we call, all exported by libtorch_cuda.so (checked with nm -D): the constructor,
// the destructor and Options' constructor. Everything else (allreduce, setTimeout, abort) goes
// through the abstract c10d::Backend.
//
// The one fact no symbol gives is each object's size (`new` needs it). Read from bytedeco's torch
// 2.10.0 GPU build (objdump of libtorch_cuda.so): `operator new(0x458)` right before the
// ProcessGroupNCCL constructor in ProcessGroupNCCL::merge and ::split, `operator new(0xe0)` right
// before an Options(bool) call. Options holds NCCL's ncclConfig_t by value, whose size grows with
// NCCL versions, so both objects are allocated with slack: a torch 2.10 built against a newer NCCL
// (a pip torch) still fits; the constructors write only the bytes they own. Members are reached
// only through the Backend / Backend::Options bases, whose layout is the public header's.
#pragma once

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/version.h>

static_assert(TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR == 10,
              "nccl_decl.h declares ProcessGroupNCCL as torch 2.10 lays it out; re-measure its size "
              "(objdump ProcessGroupNCCL::merge) for another torch");

namespace c10d {

class TORCH_API ProcessGroupNCCL : public Backend {
 public:
  static constexpr size_t kObjectSize = 0x458, kSlack = 0x200;

  struct TORCH_API Options : public Backend::Options {
    static constexpr size_t kObjectSize = 0xe0, kSlack = 0x200;
    // Collectives on a normal-priority stream of the rank's device.
    explicit Options(bool is_high_priority_stream);

   private:
    unsigned char opaque_[kObjectSize + kSlack - sizeof(Backend::Options)];
  };

  // Joins lazily: the NCCL communicator forms on the first collective, which every rank must
  // enter at once (the rank threads of one RankTeam::run do).
  ProcessGroupNCCL(c10::intrusive_ptr<Store> store, int rank, int size, c10::intrusive_ptr<Options> options);
  ~ProcessGroupNCCL() override;

 private:
  unsigned char opaque_[kObjectSize + kSlack - sizeof(Backend)];
};

// What the sizes above can be checked against here: both derive from bases smaller than the
// measured objects (a torch whose bases grew past them is not the one measured).
static_assert(sizeof(Backend) < ProcessGroupNCCL::kObjectSize, "c10d::Backend grew: re-measure ProcessGroupNCCL");
static_assert(sizeof(Backend::Options) + sizeof(bool) <= ProcessGroupNCCL::Options::kObjectSize,
              "c10d::Backend::Options grew: re-measure ProcessGroupNCCL::Options");

}  // namespace c10d
