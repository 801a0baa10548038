#include "dist/rank_team.h"

#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>

#include "dist/communicator.h"
#include "errors.h"

namespace gptfast {

RankTeam::RankTeam(int size, int first_rank) : size_(size), first_rank_(first_rank), errors_(size), collective_(size) {
  for (int r = 1; r < size; ++r) threads_.emplace_back([this, r] { worker(r); });
}

RankTeam::~RankTeam() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void RankTeam::run_one(int rank) {
  std::string error;
  bool collective = false;
  try {
    c10::InferenceMode no_grad;  // thread-local: each rank thread sets it for itself
    (*job_)(rank);
  } catch (const CollectiveError& e) {
    error = e.what();
    collective = true;
  } catch (const c10::Error& e) {
    error = e.what_without_backtrace();
  } catch (const std::exception& e) {
    error = e.what();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  errors_[rank] = first_line(error);
  collective_[rank] = collective;
  // The first rank that failed by itself names the cause; a broken collective only if no rank did.
  if (!error.empty() && (first_failed_ < 0 || (collective_[first_failed_] && !collective))) first_failed_ = rank;
  if (--pending_ == 0) done_.notify_all();
}

void RankTeam::worker(int rank) {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    run_one(rank);
  }
}

void RankTeam::run(const std::function<void(int)>& job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &job;
    pending_ = size_;
    ++generation_;
    for (std::string& e : errors_) e.clear();
    first_failed_ = -1;
  }
  wake_.notify_all();
  run_one(0);
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return pending_ == 0; });
  job_ = nullptr;
  // The rank that failed first names the cause; the others usually only report the broken
  // collective that followed (a timeout or a closed connection).
  if (first_failed_ >= 0) {
    throw RankFailure("tensor-parallel rank " + std::to_string(first_rank_ + first_failed_) + " failed: " +
                          errors_[first_failed_],
                      collective_[first_failed_]);
  }
}

}  // namespace gptfast
