#include "dist/communicator.h"

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/HashStore.hpp>

#include <cstdlib>
#include <mutex>
#include <vector>

#if GPTFAST_GLOO
#include "dist/gloo_decl.h"
#if GPTFAST_WITH_CUDA
#include "dist/nccl_decl.h"
#endif
#endif
#include "errors.h"

namespace gptfast {

namespace {

// Every rank publishes its device under its own key, then reads everyone's: the ranks of one
// group must all be CPU ranks (Gloo) or all CUDA ranks (NCCL). The same check on every rank, so
// each fails with the same message (and none is left waiting in a group that cannot form).
[[maybe_unused]] void check_same_device_kind(c10d::Store& store, int rank, int size, at::Device device, std::chrono::milliseconds timeout) {
  const std::string prefix = "gptfast/device/";
  const std::string mine = device.str();
  store.set(prefix + std::to_string(rank), std::vector<uint8_t>(mine.begin(), mine.end()));
  std::vector<std::string> keys;
  for (int r = 0; r < size; ++r) keys.push_back(prefix + std::to_string(r));
  store.wait(keys, timeout);
  std::string first;
  for (int r = 0; r < size; ++r) {
    const std::vector<uint8_t> v = store.get(keys[r]);
    const at::Device d(std::string(v.begin(), v.end()));
    if (r == 0) first = d.str();
    if (d.type() != at::Device(first).type()) {
      throw Error("tensor-parallel ranks on mixed devices: rank 0 on " + first + ", rank " + std::to_string(r) + " on " +
                  d.str() + " (all ranks must be on CPU, joined by Gloo, or all on CUDA, joined by NCCL)");
    }
  }
}

#if GPTFAST_GLOO && GPTFAST_WITH_CUDA
// ProcessGroupNCCL reads its error handling from the environment when it is constructed. Its
// default (SkipCleanUp) and its heartbeat monitor take the whole process down when a collective
// times out or the watchdog stalls: here that process is a JVM serving other requests. So:
// CleanUpOnly (2): on a timeout or an asynchronous NCCL error the watchdog aborts the
// communicators, which ends the kernels a failed peer would leave spinning, and the rank's own
// wait() throws; no monitor that kills the process. Set once, before any group is constructed
// (the rank threads call this first; setenv is not safe against concurrent getenv).
void nccl_environment() {
  static std::once_flag once;
  std::call_once(once, [] {
    setenv("TORCH_NCCL_ASYNC_ERROR_HANDLING", "2", 1);
    setenv("TORCH_NCCL_ENABLE_MONITORING", "0", 1);
    setenv("TORCH_NCCL_DUMP_ON_TIMEOUT", "0", 1);
  });
}
#endif

}  // namespace

Communicator::Communicator(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                           std::chrono::milliseconds timeout, at::Device device)
    : rank_(rank), size_(size), timeout_(timeout), nccl_(device.is_cuda()) {
#if GPTFAST_GLOO
  check_same_device_kind(*store, rank, size, device, timeout);
  if (device.is_cuda()) {
#if GPTFAST_WITH_CUDA
    nccl_environment();
    auto options = c10::make_intrusive<c10d::ProcessGroupNCCL::Options>(false);
    options->timeout = timeout;  // the watchdog's bound; all_reduce() waits with its own
    try {
      backend_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
    } catch (const std::exception& e) {
      throw Error("cannot form the NCCL group of tensor-parallel rank " + std::to_string(rank) + " on " + device.str() +
                  ": " + first_line(e.what()));
    }
#else
    throw Error("tensor parallelism on " + device.str() + " needs NCCL, which only the CUDA build of libgptfast has");
#endif
  } else {
    auto options = c10d::ProcessGroupGloo::Options::create_default(timeout);
    backend_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, options);
  }
#else
  throw Error(std::string("tensor parallelism needs a build against libtorch 2.10 (src/dist/gloo_decl.h); this one "
                          "was built against ") + GPTFAST_TORCH_VERSION_STRING);
#endif
}

Communicator::~Communicator() {
  // NCCL: abort the communicators rather than let ProcessGroupNCCL's destructor warn that the
  // group was never shut down. Nothing is in flight between passes, and unlike a graceful
  // shutdown an abort cannot wait on a peer that died.
  if (nccl_ && backend_) {
    try {
      backend_->abort();
    } catch (const std::exception&) {
    }
  }
}

void Communicator::all_reduce(at::Tensor& t) {
  ++count_;
  if (fail_after_ > 0 && count_ >= fail_after_) {
    throw Error("test hook: rank " + std::to_string(rank_) + " fails at all-reduce " + std::to_string(count_));
  }
  const auto begin = std::chrono::steady_clock::now();
  std::vector<at::Tensor> tensors{t};
  try {
    // NCCL: the collective runs on the group's stream after the current stream's work; wait()
    // makes the current stream wait for it and, given a timeout, blocks this thread until it is
    // done or the timeout passed (then it aborts the communicator and throws).
    auto work = backend_->allreduce(tensors);
    work->wait(timeout_);
  } catch (const std::exception& e) {
    // c10d's messages run over many lines; the first one says what happened, after a source
    // location (Gloo: "[/build/path/pair.cc:547] ") or a group prefix (NCCL: "[PG ID 0 ... Rank 1] "),
    // which say nothing to a user.
    std::string what = first_line(e.what());
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
