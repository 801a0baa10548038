// A c10 CPU allocator that counts the allocations it passes on: installed with
// c10::SetCPUAllocator around decode steps, it shows that they allocate no host tensor memory.
#pragma once

#include <c10/core/CPUAllocator.h>

#include <atomic>
#include <cstdint>

namespace gptfast::test {

class CountingAllocator final : public c10::Allocator {
 public:
  explicit CountingAllocator(c10::Allocator* base) : base_(base) {}
  c10::DataPtr allocate(size_t n) override {
    count_.fetch_add(1);
    return base_->allocate(n);
  }
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    base_->copy_data(dest, src, count);
  }
  c10::DeleterFnPtr raw_deleter() const override { return base_->raw_deleter(); }
  int64_t count() const { return count_.load(); }

 private:
  c10::Allocator* base_;
  std::atomic<int64_t> count_{0};
};

}  // namespace gptfast::test
