// Memory the kernel may back with 2 MiB pages (madvise: the default policy of transparent huge
// pages on many systems). Decode streams every weight once per token: with 4 KiB pages that is a
// TLB miss per 4 KiB, and the hardware prefetchers stop at each 4 KiB page boundary. The weights
// and the read-bandwidth probe that sets their roofline both live in such memory.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <memory>

namespace gptfast {

struct FreeMemory {
  void operator()(void* p) const { std::free(p); }
};

// At least `bytes`, 2 MiB-aligned and rounded up to 2 MiB; nullptr when the allocation fails.
inline std::unique_ptr<void, FreeMemory> huge_page_alloc(size_t bytes) {
  constexpr size_t kHuge = size_t(2) << 20;
  const size_t size = (bytes + kHuge - 1) / kHuge * kHuge;
  std::unique_ptr<void, FreeMemory> p(std::aligned_alloc(kHuge, size));
  if (p) madvise(p.get(), size, MADV_HUGEPAGE);  // advice only: without THP the pages are simply small
  return p;
}

}  // namespace gptfast
