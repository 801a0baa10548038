#include "load_progress.h"

#include <algorithm>
#include <atomic>

#include "gptfast/engine_api.h"

namespace gptfast {

struct LoadProgress::State {
  std::atomic<int64_t> done{0};
  std::atomic<int64_t> total{0};
};

namespace {
// Thread-local, not shared: only the loading thread writes its pointer; readers of the counts
// go through their LoadProgress, whose counters are atomic.
thread_local LoadProgress::State* watched = nullptr;
thread_local int64_t owed = 0;  // mapped bytes expected but not yet counted as read
}  // namespace

LoadProgress::LoadProgress() : state_(std::make_unique<State>()) {}
LoadProgress::~LoadProgress() {
  if (watched == state_.get()) watched = nullptr;
}

void LoadProgress::watch() { watched = state_.get(); }
void LoadProgress::unwatch() {
  if (watched == state_.get()) watched = nullptr;
}
int64_t LoadProgress::done() const { return state_->done.load(std::memory_order_relaxed); }
int64_t LoadProgress::total() const { return state_->total.load(std::memory_order_relaxed); }

void load_progress_expect(int64_t bytes) {
  if (watched) watched->total.fetch_add(bytes, std::memory_order_relaxed);
}
void load_progress_read(int64_t bytes) {
  if (watched) watched->done.fetch_add(bytes, std::memory_order_relaxed);
}

void load_progress_owe(int64_t bytes) { owed += bytes; }
void load_progress_copied(int64_t bytes) {
  const int64_t paid = std::min(bytes, owed);  // replicated tensors are copied once per rank
  owed -= paid;
  load_progress_read(paid);
}
void load_progress_settle() {
  load_progress_read(owed);
  owed = 0;
}

}  // namespace gptfast
