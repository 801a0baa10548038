// The decode hot path must not allocate: after warm-up, one-token steps through the public
// session API run with a counting CPU allocator installed and must request zero bytes. The fused
// path (fp32 and bf16 weights) is held to that; the generic ATen path is measured for contrast.
#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <thread>
#include <cstdlib>
#include <vector>

#include "counting_allocator.h"
#include "gptfast/engine_api.h"
#include "test_models.h"

namespace {

using gptfast::test::small_llama;

using gptfast::test::CountingAllocator;

// Large enough that the decode step's matrices are split among two threads (the thread team).
gptfast::ModelSpec medium_llama() {
  gptfast::ModelSpec s = small_llama();
  s.dim = 256;
  s.n_head = 8;
  s.n_local_heads = 4;
  s.head_dim = 32;
  s.intermediate_size = 688;
  s.vocab_size = 2000;
  return s;
}

// Counts CPU allocations made by `steps` decode steps of `slots` sequences decoding together,
// after their prompts and two warm-up steps.
int64_t allocations_per_decode(const std::string& dtype, int steps, int slots = 1, const std::string& quantize = "",
                               const gptfast::ModelSpec& spec = small_llama(), int threads = 1) {
  gptfast::Session session("7", "random", spec, dtype, "cpu", threads, 0, slots, 0, quantize, 1);
  gptfast::SamplingSpec sampling;
  sampling.temperature = 0.8f;
  sampling.top_k = 20;
  sampling.top_p = 0.9f;
  sampling.repetition_penalty = 1.1f;
  const int32_t prompt[] = {1, 17, 42, 99};
  std::vector<int32_t> ids(slots), out(slots * session.max_tokens_per_step()), counts(slots);
  for (int i = 0; i < slots; ++i) {
    sampling.seed = i;
    session.start(i, sampling, 0, prompt, 4);
    ids[i] = i;
  }
  auto step = [&] { session.step(ids.data(), slots, out.data(), session.max_tokens_per_step(), counts.data()); };
  for (int i = 0; i < 3; ++i) step();  // prompt, then two warm-up tokens
  // SetCPUAllocator ignores a priority lower than the current one: always go up.
  static uint8_t priority = 100;
  c10::Allocator* base = c10::GetCPUAllocator();
  CountingAllocator counting(base);
  c10::SetCPUAllocator(&counting, ++priority);
  for (int i = 0; i < steps; ++i) step();
  c10::SetCPUAllocator(base, ++priority);
  return counting.count();
}

}  // namespace

TEST(DecodeAllocation, Fp32DecodeAllocatesNothing) {
  EXPECT_EQ(allocations_per_decode("fp32", 50), 0);
}

TEST(DecodeAllocation, Bf16DecodeAllocatesNothing) {
  EXPECT_EQ(allocations_per_decode("bf16", 50), 0);
}

TEST(DecodeAllocation, QuantizedDecodeAllocatesNothing) {
  EXPECT_EQ(allocations_per_decode("fp32", 30, 1, "int8"), 0);
  EXPECT_EQ(allocations_per_decode("bf16", 30, 2, "int4:32"), 0);
}

TEST(DecodeAllocation, TwoThreadDecodeAllocatesNothing) {
  EXPECT_EQ(allocations_per_decode("fp32", 20, 1, "", medium_llama(), 2), 0);
  EXPECT_EQ(allocations_per_decode("bf16", 20, 2, "int4:32", medium_llama(), 2), 0);
}

// Greedy tokens of a model whose matrices the team splits: the same with 1, 2 and 3 threads, bit
// for bit (each row is computed by one thread, in the same order, whatever the split).
std::vector<int32_t> greedy(const std::string& dtype, int threads, int n_new) {
  gptfast::Session session("11", "random", medium_llama(), dtype, "cpu", threads, 0, 1, 0, "", 1);
  gptfast::SamplingSpec sampling;  // temperature 0: greedy
  const int32_t prompt[] = {1, 17, 42, 99, 512, 3};
  session.start(0, sampling, 0, prompt, 6);
  std::vector<int32_t> tokens, out(session.max_tokens_per_step());
  const int32_t slot = 0;
  int32_t count = 0;
  while (int(tokens.size()) < n_new) {
    session.step(&slot, 1, out.data(), session.max_tokens_per_step(), &count);
    tokens.insert(tokens.end(), out.begin(), out.begin() + count);
  }
  return tokens;
}

TEST(DecodeThreads, GreedyTokensDoNotDependOnTheThreadCount) {
  for (const std::string dtype : {"fp32", "bf16"}) {
    const std::vector<int32_t> one = greedy(dtype, 1, 40);
    EXPECT_EQ(greedy(dtype, 2, 40), one) << dtype;
    EXPECT_EQ(greedy(dtype, 3, 40), one) << dtype;
  }
}

TEST(DecodeAllocation, BatchedFp32DecodeAllocatesNothing) {
  EXPECT_EQ(allocations_per_decode("fp32", 20, 3), 0);
}

TEST(DecodeAllocation, CounterSeesTheAtenPathAllocate) {
  // The same counter does see allocations where they happen: the generic ATen decode path.
  setenv("GPTFAST_FUSED_DECODE", "0", 1);
  const int64_t allocations = allocations_per_decode("fp32", 5);
  unsetenv("GPTFAST_FUSED_DECODE");
  EXPECT_GT(allocations, 0);
}

// The measured default is either every core or one (the rule in thread_team.h), measured once.
TEST(DecodeThreads, DefaultThreadsIsOneOrEveryCore) {
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = gptfast::default_threads();
  EXPECT_TRUE(threads == 1 || threads == cores) << threads << " of " << cores;
  EXPECT_EQ(gptfast::default_threads(), threads);
  std::printf("default_threads() = %d of %d cores\n", threads, cores);
}
