// ThreadTeam: every member runs exactly once per region, ranges cover each unit exactly once,
// failures reach the caller, nested regions run inline, and regions separated by long pauses (the
// workers park) or by none (they spin) all complete: a lost wake-up would hang this test.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "thread_team.h"

namespace {

using gptfast::ThreadTeam;

TEST(ThreadTeam, EachMemberRunsOncePerRegion) {
  for (int size : {1, 2, 3, 5}) {
    ThreadTeam team(size);
    EXPECT_EQ(team.size(), size);
    for (int members = 1; members <= size + 1; ++members) {
      std::vector<std::atomic<int>> calls(size + 1);
      team.run(members, [&](int m) { calls[m].fetch_add(1); });
      const int expected = members > size ? size : members;
      for (int m = 0; m <= size; ++m) EXPECT_EQ(calls[m].load(), m < expected ? 1 : 0) << size << " " << members;
    }
  }
}

TEST(ThreadTeam, RangesCoverEveryUnitOnce) {
  ThreadTeam team(3);
  for (int64_t units : {1, 2, 3, 7, 100, 1001}) {
    for (int64_t grain : {1, 4, 50, 2000}) {
      std::vector<std::atomic<int>> hits(units);
      std::atomic<int> ranges{0};
      team.for_ranges(units, grain, [&](int64_t b, int64_t e) {
        ranges.fetch_add(1);
        for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
      });
      for (int64_t i = 0; i < units; ++i) ASSERT_EQ(hits[i].load(), 1) << units << " " << grain << " " << i;
      const int64_t most = (units + grain - 1) / grain;
      EXPECT_EQ(ranges.load(), most < 3 ? most : 3) << units << " " << grain;  // no range below grain
    }
  }
}

TEST(ThreadTeam, ManyRegionsWithAndWithoutParking) {
  ThreadTeam team(2);
  std::atomic<int64_t> sum{0};
  for (int i = 0; i < 20000; ++i) team.run(2, [&](int m) { sum.fetch_add(m + 1); });
  EXPECT_EQ(sum.load(), 3 * 20000);
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // past the spin: the worker parks
    team.run(2, [&](int m) { sum.fetch_add(m + 1); });
  }
  EXPECT_EQ(sum.load(), 3 * 20005);
}

TEST(ThreadTeam, WorkerFailureReachesTheCaller) {
  ThreadTeam team(2);
  EXPECT_THROW(team.run(2, [](int m) {
    if (m == 1) throw std::runtime_error("member 1");
  }),
               std::runtime_error);
  int ran = 0;
  team.run(2, [&](int m) { if (m == 0) ++ran; });  // still usable
  EXPECT_EQ(ran, 1);
}

TEST(ThreadTeam, NestedRegionRunsInline) {
  ThreadTeam team(2);
  std::atomic<int> inner{0};
  team.run(2, [&](int) { team.run(2, [&](int) { inner.fetch_add(1); }); });
  EXPECT_EQ(inner.load(), 4);
}

}  // namespace
