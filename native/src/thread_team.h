// A persistent team of threads for the fused decode step: created once per model, each parallel
// region is one dispatch (a generation counter the workers watch), with no allocation and no task
// queue. Workers spin briefly after a region, because the next one follows within microseconds
// during a step, then park on a condition variable so an idle engine costs no CPU.
// at::parallel_for forks and joins through libtorch's pool (a passive OpenMP wait) for every
// matrix-vector product, which costs more than a small product itself.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include "huge_pages.h"

namespace gptfast {

class ThreadTeam {
 public:
  // threads: members including the calling thread (>= 1; 1 creates no worker).
  explicit ThreadTeam(int threads);
  ~ThreadTeam();
  ThreadTeam(const ThreadTeam&) = delete;
  ThreadTeam& operator=(const ThreadTeam&) = delete;

  int size() const { return int(workers_.size()) + 1; }

  // Runs body(member) for member in [0, members) (members clamped to [1, size()]), member 0 on the
  // calling thread, and returns when all have finished; rethrows a member's exception. A region
  // entered while another one runs (nested, or from a second thread) runs all members inline.
  template <class F>
  void run(int members, F&& body) {
    using Body = std::remove_reference_t<F>;
    dispatch(members, [](void* ctx, int member) { (*static_cast<Body*>(ctx))(member); }, &body);
  }

  // Splits [0, units) into contiguous ranges, one per member, each of at least `grain` units
  // (fewer members when there is little work), and runs body(begin, end) for each. The split
  // depends only on units, grain and size(), and each unit is done by exactly one thread.
  template <class F>
  void for_ranges(int64_t units, int64_t grain, F&& body) {
    if (units <= 0) return;
    grain = grain < 1 ? 1 : grain;
    const int64_t by_work = (units + grain - 1) / grain;
    const int members = int(by_work < size() ? by_work : size());
    if (members == 1) {
      body(int64_t(0), units);
      return;
    }
    run(members, [&](int member) {
      const int64_t begin = units * member / members, end = units * (member + 1) / members;
      if (begin < end) body(begin, end);
    });
  }

 private:
  using Call = void (*)(void*, int);
  void dispatch(int members, Call call, void* ctx);
  void work(int index);

  // One start counter per worker, each on its own cache line: a region bumps only its members'
  // counters, so a worker outside it never reads the region's fields while the next is set up.
  struct alignas(64) Start {
    std::atomic<uint64_t> generation{0};
  };
  std::vector<std::thread> workers_;
  std::unique_ptr<Start[]> start_;
  uint64_t generation_ = 0;  // the dispatcher's (under busy_)
  alignas(64) std::atomic<int> pending_{0};
  std::atomic<int> sleeping_{0};
  std::atomic<bool> busy_{false};
  std::atomic<bool> stop_{false};
  Call call_ = nullptr;
  void* ctx_ = nullptr;
  int members_ = 1;
  std::mutex mutex_;  // parking and the first failure
  std::condition_variable wake_;
  std::exception_ptr failure_;
};

// Streaming read bandwidth as the fused decode step sees it: a buffer in huge pages (like the
// Linear weights) summed by a team, each member reading one contiguous share.
class ReadProbe {
 public:
  explicit ReadProbe(int64_t bytes);  // rounded to whole 16 KiB chunks; throws std::bad_alloc
  double rate(ThreadTeam& team, int passes) const;  // bytes/s, best of `passes`

 private:
  static constexpr int64_t kChunk = 4096;  // floats per task unit
  int64_t floats_;
  std::unique_ptr<void, FreeMemory> memory_;
};

// The thread count used when a session asks for 0: every core, unless a short read-bandwidth
// probe (once per process, under 0.1 s on an idle machine) shows all of them reading memory more
// slowly than one thread does, in which case 1. Decode streams the weights once per token, so it gains from threads only
// as far as they read faster; prefill is compute-bound and gains from every core.
int measured_default_threads();

// Sets libtorch's intra-op thread count, process-wide, under a lock, and the OpenBLAS thread count
// to match: the OpenBLAS bundled with the libtorch runtime keeps its own pool (every core), which
// at::set_num_threads leaves alone, so an fp32 GEMM (a long prefill chunk, the bench's FLOP probe)
// ran on every core whatever --threads said. With another BLAS, only libtorch's count is set.
// (bench_api.h's blas_thread_count reads OpenBLAS's count back.)
void set_intra_op_threads(int threads);

}  // namespace gptfast
