// One rank's view of a tensor-parallel group: its rank, the group size, and the all-reduce the
// model calls twice per layer (after the attention output projection and after the FFN's w2).
// Backed by a c10d process group: Gloo for CPU ranks, NCCL for CUDA ranks (CUDA builds only);
// counts and times its all-reduces for `bench`.
#pragma once

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "errors.h"

namespace c10d {
class Backend;
}  // namespace c10d

namespace gptfast {

// A collective that timed out or broke (a peer left): usually the echo of another rank's failure.
struct CollectiveError : Error {
  using Error::Error;
};

class Communicator {
 public:
  // Joins a group of `size` ranks through `store` as `rank`, this rank's tensors living on
  // `device`: Gloo on CPU (blocks until every rank has joined), NCCL on CUDA (the communicator
  // forms on the first all-reduce). First every rank publishes its device and checks that all
  // are on the same kind (one group cannot mix Gloo and NCCL). Collectives that take longer than
  // `timeout` throw.
  Communicator(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size, std::chrono::milliseconds timeout,
               at::Device device = at::kCPU);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  // In place: every rank's `t` (contiguous, on this rank's device) becomes the sum over ranks.
  // On CUDA it is ordered after the work queued on the current stream, the current stream waits
  // for it, and the calling thread waits for it too (bounded by the timeout).
  void all_reduce(at::Tensor& t);

  int rank() const { return rank_; }
  int size() const { return size_; }
  int64_t all_reduces() const { return count_; }
  int64_t all_reduce_nanos() const { return nanos_; }

  // Every later collective of this rank gives up after `timeout`.
  void set_timeout(std::chrono::milliseconds timeout);

  // Test hook: all_reduce() throws on this rank from its n-th call on (n >= 1; 0 = never), as a
  // rank failing mid-generation would.
  void fail_after(int64_t n) { fail_after_ = n; }

 private:
  int rank_, size_;
  std::chrono::milliseconds timeout_;
  bool nccl_ = false;
  c10::intrusive_ptr<c10d::Backend> backend_;
  int64_t count_ = 0, nanos_ = 0, fail_after_ = 0;
};

// The in-process store the ranks of one process meet through.
c10::intrusive_ptr<c10d::Store> in_process_store();

}  // namespace gptfast
