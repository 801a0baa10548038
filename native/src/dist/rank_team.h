// The ranks of an in-process tensor-parallel group as native threads: the calling thread is
// rank 0, ranks 1..N-1 are threads started once and parked between calls (a forward pass per
// token must not pay for thread creation). run(job) runs job(rank) on every rank and returns
// when all have finished; if any threw, it throws a RankFailure naming the rank that failed first.
// In a group spread over several processes (dist/cluster.h) this process holds ranks
// first_rank..first_rank+size-1, and errors name those global ranks.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "errors.h"

namespace gptfast {

// A rank's error; `collective` when the rank only saw a collective break (a timeout, a closed
// connection: the usual echo of another rank's failure) rather than failing itself.
struct RankFailure : Error {
  RankFailure(const std::string& what, bool collective) : Error(what), collective(collective) {}
  bool collective;
};

class RankTeam {
 public:
  explicit RankTeam(int size, int first_rank = 0);
  ~RankTeam();
  RankTeam(const RankTeam&) = delete;
  RankTeam& operator=(const RankTeam&) = delete;

  void run(const std::function<void(int rank)>& job);
  int size() const { return size_; }

 private:
  void worker(int rank);
  void run_one(int rank);

  const int size_, first_rank_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* job_ = nullptr;  // guarded by mutex_
  uint64_t generation_ = 0;                          // guarded by mutex_
  int pending_ = 0;                                  // guarded by mutex_
  bool stop_ = false;                                // guarded by mutex_
  int first_failed_ = -1;                            // guarded by mutex_
  std::vector<std::string> errors_;                  // per rank, "" = ok; guarded by mutex_
  std::vector<char> collective_;                     // per rank: its error was a broken collective
  std::vector<std::thread> threads_;
};

}  // namespace gptfast
