#include "dist/communicator.h"

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/HashStore.hpp>

#include <vector>

#if GPTFAST_GLOO
#include "dist/gloo_decl.h"
#endif
#include "errors.h"

namespace gptfast {

Communicator::Communicator(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                           std::chrono::milliseconds timeout)
    : rank_(rank), size_(size), timeout_(timeout) {
#if GPTFAST_GLOO
  auto options = c10d::ProcessGroupGloo::Options::create_default(timeout);
  backend_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, options);
#else
  throw Error(std::string("tensor parallelism needs a build against libtorch 2.10 (src/dist/gloo_decl.h); this one "
                          "was built against ") + GPTFAST_TORCH_VERSION_STRING);
#endif
}

Communicator::~Communicator() = default;

void Communicator::all_reduce(at::Tensor& t) {
  ++count_;
  if (fail_after_ > 0 && count_ >= fail_after_) {
    throw Error("test hook: rank " + std::to_string(rank_) + " fails at all-reduce " + std::to_string(count_));
  }
  const auto begin = std::chrono::steady_clock::now();
  std::vector<at::Tensor> tensors{t};
  auto work = backend_->allreduce(tensors);
  try {
    work->wait(timeout_);
  } catch (const std::exception& e) {
    // c10d's messages run over many lines; the first one says what happened, after Gloo's
    // "[/build/path/pair.cc:547] " source location, which says nothing to a user.
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    if (!what.empty() && what[0] == '[' && what.find("] ") != std::string::npos) what = what.substr(what.find("] ") + 2);
    throw CollectiveError("all-reduce " + std::to_string(count_) + " failed: " + what);
  }
  nanos_ += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - begin).count();
}

void Communicator::set_timeout(std::chrono::milliseconds timeout) {
  timeout_ = timeout;
  backend_->setTimeout(timeout);
}

c10::intrusive_ptr<c10d::Store> in_process_store() { return c10::make_intrusive<c10d::HashStore>(); }

}  // namespace gptfast
