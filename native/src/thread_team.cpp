#include "thread_team.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <immintrin.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <new>

#include "gptfast/bench_api.h"
#include "matvec.h"

namespace gptfast {

namespace {

// How long a worker spins for the next region before parking: regions of one step follow each
// other within microseconds, and a wake-up from a condition variable costs tens of microseconds.
constexpr auto kSpin = std::chrono::microseconds(200);

}  // namespace

ReadProbe::ReadProbe(int64_t bytes)
    : floats_(std::max<int64_t>(bytes / int64_t(sizeof(float)) / kChunk, 1) * kChunk),
      memory_(huge_page_alloc(size_t(floats_) * sizeof(float))) {
  if (!memory_) throw std::bad_alloc();
  std::fill_n(static_cast<float*>(memory_.get()), floats_, 1.0f);  // resident before timing
}

double ReadProbe::rate(ThreadTeam& team, int passes) const {
  const float* data = static_cast<const float*>(memory_.get());
  double best = 0;
  float sink[64] = {};
  for (int pass = 0; pass < passes; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    // Each member sums one contiguous share, as a decode step's members stream theirs.
    team.for_ranges(floats_ / kChunk, 1, [&](int64_t b, int64_t e) {
      sink[(b * 16) % 64] += sum_floats(data + b * kChunk, (e - b) * kChunk);
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (s > 0) best = std::max(best, double(floats_) * sizeof(float) / s);
  }
  volatile float keep = sink[0];  // the sums must not be optimized away
  (void)keep;
  return best;
}

namespace {
// OpenBLAS's own setters, looked up in the process (no link-time dependency on OpenBLAS): in the
// global scope, else in an already loaded libopenblas (a JVM loads libtorch and its dependencies
// without RTLD_GLOBAL).
void* openblas_symbol(const char* name) {
  if (void* f = dlsym(RTLD_DEFAULT, name)) return f;
  for (const char* library : {"libopenblas.so.0", "libopenblas.so"}) {
    if (void* handle = dlopen(library, RTLD_LAZY | RTLD_NOLOAD)) {
      void* f = dlsym(handle, name);
      dlclose(handle);  // NOLOAD took a reference; the library stays loaded by its users
      if (f) return f;
    }
  }
  return nullptr;
}
using SetThreads = void (*)(int);
using GetThreads = int (*)();
SetThreads openblas_set() {
  static const auto f = reinterpret_cast<SetThreads>(openblas_symbol("openblas_set_num_threads"));
  return f;
}
GetThreads openblas_get() {
  static const auto f = reinterpret_cast<GetThreads>(openblas_symbol("openblas_get_num_threads"));
  return f;
}
}  // namespace

void set_intra_op_threads(int threads) {
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  at::set_num_threads(threads);
  if (const SetThreads set = openblas_set()) set(threads);
}

int blas_thread_count() {
  const GetThreads get = openblas_get();
  return get ? get() : -1;
}

int measured_default_threads() {
  static const int threads = [] {
    const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
    if (cores == 1) return 1;
    // 64 MiB: twice a large last-level cache, ~7 ms per pass at 10 GB/s: the probe stays well under
    // 0.1 s on an idle machine, since every process that asks for the default pays it once.
    const ReadProbe probe(int64_t(64) << 20);
    ThreadTeam one(1), all(cores);
    double rate_one = 0, rate_all = 0;
    for (int round = 0; round < 4; ++round) {  // interleaved: the machine's speed drifts
      rate_one = std::max(rate_one, probe.rate(one, 1));
      rate_all = std::max(rate_all, probe.rate(all, 1));
    }
    // All cores unless they read memory more slowly than one thread (an oversubscribed or
    // throttled machine): decode then is no faster with them, and prefill (compute) gains.
    return rate_all >= 0.97 * rate_one ? cores : 1;
  }();
  return threads;
}

ThreadTeam::ThreadTeam(int threads) : start_(new Start[threads > 1 ? threads : 1]) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { work(i); });
}

ThreadTeam::~ThreadTeam() {
  stop_.store(true);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 1; i <= workers_.size(); ++i) start_[i].generation.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadTeam::dispatch(int members, Call call, void* ctx) {
  members = members < 1 ? 1 : members > size() ? size() : members;
  if (members == 1 || busy_.exchange(true, std::memory_order_acquire)) {
    for (int m = 0; m < members; ++m) call(ctx, m);
    return;
  }
  call_ = call;
  ctx_ = ctx;
  pending_.store(members - 1, std::memory_order_relaxed);
  ++generation_;
  // seq_cst stores, then a seq_cst load of sleeping_: pairs with the worker's increment-then-check,
  // so a worker either sees its new generation or is seen asleep and woken (no lost wake-up).
  for (int m = 1; m < members; ++m) start_[m].generation.store(generation_);
  if (sleeping_.load() > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
  std::exception_ptr mine;
  try {
    call(ctx, 0);
  } catch (...) {
    mine = std::current_exception();
  }
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < 4096) {
      _mm_pause();
    } else {
      sched_yield();  // a member was descheduled (an oversubscribed machine): let it run
    }
  }
  std::exception_ptr failure;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    failure = mine ? mine : failure_;
    failure_ = nullptr;
  }
  busy_.store(false, std::memory_order_release);
  if (failure) std::rethrow_exception(failure);
}

void ThreadTeam::work(int index) {
  std::atomic<uint64_t>& start = start_[index].generation;
  uint64_t seen = 0;
  for (;;) {
    // Wait for this worker's next region: spin, then park.
    const auto spin_until = std::chrono::steady_clock::now() + kSpin;
    uint64_t now = start.load(std::memory_order_acquire);
    for (int i = 0; now == seen; ++i) {
      _mm_pause();
      if ((i & 63) == 63 && std::chrono::steady_clock::now() > spin_until) {
        std::unique_lock<std::mutex> lock(mutex_);
        sleeping_.fetch_add(1);
        while ((now = start.load()) == seen) wake_.wait(lock);
        sleeping_.fetch_sub(1);
        break;
      }
      now = start.load(std::memory_order_acquire);
    }
    seen = now;
    if (stop_.load()) return;
    try {
      call_(ctx_, index);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!failure_) failure_ = std::current_exception();
    }
    pending_.fetch_sub(1, std::memory_order_release);
  }
}

}  // namespace gptfast
