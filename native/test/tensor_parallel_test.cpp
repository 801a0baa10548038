// Tensor parallelism: the c10d Gloo group (declared without Gloo's headers, dist/gloo_decl.h)
// really sums across ranks; a model split over 2 or 4 in-process ranks gives the logits and
// greedy tokens of the unsplit model (fused and ATen paths, dense and quantized weights); sizes
// that do not divide are refused naming them; a rank failing mid-pass ends the pass with an
// error naming it within the collective timeout, and the model then refuses further work.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "dist/rank_team.h"
#include "gptfast/engine_api.h"
#include "test_models.h"
#include "model.h"

namespace {

using gptfast::test::relative_error;
using gptfast::test::small_llama_tp;

std::vector<int32_t> prompt_of(int n) {
  std::vector<int32_t> p(n);
  for (int i = 0; i < n; ++i) p[i] = (i * 37 + 11) % 300;
  return p;
}

std::vector<float> logits(int tp, const std::vector<int32_t>& prompt, const std::string& quantize = "",
                          const std::string& dtype = "fp32") {
  gptfast::Session session("7", "random", small_llama_tp(), dtype, "cpu", 1, 0, 1, 0, quantize, tp);
  EXPECT_EQ(session.tensor_parallel(), tp);
  std::vector<float> out(prompt.size() * session.vocab_size());
  session.prompt_logits(prompt.data(), int(prompt.size()), out.data());
  if (tp > 1) {
    EXPECT_EQ(session.all_reduces(), 2 * small_llama_tp().n_layer);  // one pass: two per layer
  } else {
    EXPECT_EQ(session.all_reduces(), 0);
  }
  return out;
}

std::vector<int32_t> greedy(int tp, int slots, int steps, const std::string& quantize = "") {
  gptfast::Session session("7", "random", small_llama_tp(), "fp32", "cpu", 1, 0, slots, 0, quantize, tp);
  gptfast::SamplingSpec greedy;
  greedy.temperature = 0;
  std::vector<int32_t> ids(slots), out(slots * session.max_tokens_per_step()), counts(slots), tokens;
  for (int i = 0; i < slots; ++i) {
    const auto prompt = prompt_of(3 + 2 * i);
    session.start(i, greedy, 0, prompt.data(), int(prompt.size()));
    ids[i] = i;
  }
  for (int s = 0; s < steps; ++s) {
    session.step(ids.data(), slots, out.data(), session.max_tokens_per_step(), counts.data());
    for (int i = 0; i < slots; ++i) {
      for (int j = 0; j < counts[i]; ++j) tokens.push_back(out[i * session.max_tokens_per_step() + j]);
    }
  }
  return tokens;
}

// Built against a libtorch other than 2.10 the engine has no Gloo group (CMakeLists.txt): skip all.
class GlooBuilt : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!GPTFAST_GLOO) GTEST_SKIP() << "tensor parallelism is built only against libtorch 2.10";
  }
};
const auto* const gloo_built = ::testing::AddGlobalTestEnvironment(new GlooBuilt);

TEST(TensorParallel, GlooAllReduceSumsAcrossRanks) {
  constexpr int kRanks = 3;
  gptfast::RankTeam team(kRanks);
  auto store = gptfast::in_process_store();
  std::vector<std::unique_ptr<gptfast::Communicator>> comms(kRanks);
  team.run([&](int r) {
    comms[r] = std::make_unique<gptfast::Communicator>(store, r, kRanks, std::chrono::milliseconds(10000));
  });
  std::vector<at::Tensor> t(kRanks);
  team.run([&](int r) {
    t[r] = at::full({5}, float(r + 1));
    comms[r]->all_reduce(t[r]);
  });
  for (int r = 0; r < kRanks; ++r) {
    EXPECT_TRUE(at::equal(t[r], at::full({5}, 6.0f))) << "rank " << r;
    EXPECT_EQ(comms[r]->all_reduces(), 1);
  }
}

// Gloo announces each group it forms on stdout; `generate --json --tp 2` must still print only JSON.
TEST(TensorParallel, FormingAGroupWritesNothingOnStdout) {
  testing::internal::CaptureStdout();
  { gptfast::Session session("7", "random", small_llama_tp(), "fp32", "cpu", 1, 0, 1, 0, "", 2); }
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "");
}

TEST(TensorParallel, RankTeamNamesTheFailingRank) {
  gptfast::RankTeam team(2);
  try {
    team.run([](int r) {
      if (r == 1) throw gptfast::Error("boom");
    });
    FAIL() << "expected an error";
  } catch (const gptfast::Error& e) {
    EXPECT_EQ(std::string(e.what()), "tensor-parallel rank 1 failed: boom");
  }
  team.run([](int) {});  // usable again: the team itself holds no broken state
}

TEST(TensorParallel, LogitsMatchOneRankOnTheFusedPath) {
  const auto prompt = prompt_of(20);  // a short prompt goes through the fused step
  const auto one = logits(1, prompt);
  EXPECT_LT(relative_error(one, logits(2, prompt)), 1e-4);
  EXPECT_LT(relative_error(one, logits(4, prompt)), 1e-4);
}

TEST(TensorParallel, LogitsMatchOneRankOnTheAtenPath) {
  const auto prompt = prompt_of(100);  // longer than Model::kMaxFusedSegmentFp32: ATen's GEMMs
  EXPECT_LT(relative_error(logits(1, prompt), logits(2, prompt)), 1e-4);
}

TEST(TensorParallel, QuantizedAndBf16ShardsMatchOneRank) {
  const auto prompt = prompt_of(20);
  // Quantized first, then cut, as GPT-Fast does: the shards hold exactly the unsplit values.
  for (const std::string q : {"int8", "int4:32"}) {
    EXPECT_LT(relative_error(logits(1, prompt, q), logits(2, prompt, q)), 1e-4) << q;
  }
  EXPECT_LT(relative_error(logits(1, prompt, "", "bf16"), logits(2, prompt, "", "bf16")), 1e-4);
}

TEST(TensorParallel, GreedyTokensMatchOneRankBatched) {
  const auto one = greedy(1, 3, 40);
  ASSERT_EQ(one.size(), 3u * 40);
  EXPECT_EQ(greedy(2, 3, 40), one);
  EXPECT_EQ(greedy(2, 3, 40, "int8"), greedy(1, 3, 40, "int8"));
}

TEST(TensorParallel, SizesThatDoNotDivideAreRefusedNamingThem) {
  try {
    gptfast::Session session("7", "random", small_llama_tp(), "fp32", "cpu", 1, 0, 1, 0, "", 3);
    FAIL() << "expected an error";
  } catch (const gptfast::Error& e) {
    EXPECT_NE(std::string(e.what()).find("n_head 8 is not divisible by tp 3"), std::string::npos) << e.what();
  }
  try {  // int4's groups must not straddle a row-wise shard: wo's 32 columns per rank, group 128
    gptfast::Session session("7", "random", small_llama_tp(), "fp32", "cpu", 1, 0, 1, 0, "int4:128", 2);
    FAIL() << "expected an error";
  } catch (const gptfast::Error& e) {
    EXPECT_NE(std::string(e.what()).find("int4 group 128"), std::string::npos) << e.what();
  }
  EXPECT_THROW(gptfast::check_options("fp32", "cpu", 0, 0, 1, 0, 1, "", 0), gptfast::Error);
  EXPECT_THROW(gptfast::check_options("fp32", "cpu", 0, 0, 1, 0, 1, "", 65), gptfast::Error);
}

// Which device each rank gets (rank_devices is pure: any machine's GPU count and build can be
// passed), and the one-line refusals naming the sizes.
TEST(TensorParallelDevices, CudaRanksGetOneGpuEachCpuRanksShareTheCpu) {
  using V = std::vector<at::Device>;
  EXPECT_EQ(gptfast::rank_devices("cuda", 2, 2, 2, true), (V{at::Device("cuda:0"), at::Device("cuda:1")}));
  // A node of a 2-node group of 4 ranks holds 2 of them: its local ranks 0 and 1 on its cuda:0 and cuda:1.
  EXPECT_EQ(gptfast::rank_devices("cuda", 4, 2, 2, true), (V{at::Device("cuda:0"), at::Device("cuda:1")}));
  EXPECT_EQ(gptfast::rank_devices("cuda", 2, 2, 8, true), (V{at::Device("cuda:0"), at::Device("cuda:1")}));
  EXPECT_EQ(gptfast::rank_devices("cpu", 3, 3, 0, false), (V(3, at::Device("cpu"))));
  EXPECT_EQ(gptfast::rank_devices("cuda:1", 1, 1, 2, true), (V{at::Device("cuda:1")}));  // no TP: as asked
}

std::string refusal(const std::string& device, int tp, int local, int gpus, bool cuda_build) {
  try {
    gptfast::rank_devices(device, tp, local, gpus, cuda_build);
  } catch (const gptfast::Error& e) {
    return e.what();
  }
  return "(not refused)";
}

TEST(TensorParallelDevices, RefusalsNameTheSizes) {
  EXPECT_EQ(refusal("cuda", 4, 4, 2, true),
            "tp 4 puts 4 rank(s) on this node, but only 2 CUDA device(s) are visible (local rank i runs on cuda:i; "
            "see CUDA_VISIBLE_DEVICES)");
  EXPECT_EQ(refusal("cuda", 2, 2, 8, false),
            "tensor parallelism on CUDA (tp 2 puts 2 rank(s) on this node, device 'cuda') needs NCCL, which only the "
            "CUDA build of libgptfast has; this one was built without CUDA");
  EXPECT_EQ(refusal("cuda:1", 2, 2, 2, true),
            "device 'cuda:1' names one GPU, but tp 2 puts 2 rank(s) on this node, each on its own GPU: use --device "
            "cuda (local rank i on cuda:i)");
  // This build's own entry point (check_options, what Engine and the CLI call first).
  if (!gptfast::cuda_build()) {
    try {
      gptfast::check_options("fp32", "cuda", 0, 0, 1, 0, 1, "", 2);
      FAIL() << "expected an error";
    } catch (const gptfast::Error& e) {
      EXPECT_NE(std::string(e.what()).find("needs NCCL, which only the CUDA build"), std::string::npos) << e.what();
    }
  }
}

// --device auto: CUDA where usable, else the CPU, said on stderr when a model loads there; every
// path that reads a device name (option check, TP plan, model) resolves it the same way.
TEST(Devices, AutoIsCudaWhereUsableElseTheCpuSaidOnStderr) {
  const bool cuda = at::hasCUDA() && at::getNumGPUs() > 0;
  EXPECT_NO_THROW(gptfast::check_options("fp32", "auto", 1, 0, 1, 0, 1, "", 1));
  EXPECT_EQ(gptfast::rank_devices("auto", 1, 1, cuda ? 1 : 0, cuda), std::vector<at::Device>{cuda ? at::Device("cuda") : at::Device("cpu")});
  testing::internal::CaptureStderr();
  std::string described;
  {
    gptfast::Session session("7", "random", small_llama_tp(), "fp32", "auto", 1, 64, 1, 0, "", 1);
    described = session.describe();
  }
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(described.find(std::string(" device=") + (cuda ? "cuda" : "cpu") + " "), std::string::npos) << described;
  EXPECT_EQ(err.find("gptfast4j: device auto: running on the CPU: ") != std::string::npos, !cuda) << err;
  try {
    gptfast::check_options("fp32", "tpu", 1, 0, 1, 0, 1, "", 1);
    ADD_FAILURE() << "tpu accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("unknown device 'tpu' (expected cpu, cuda[:N] or auto)"), std::string::npos)
        << e.what();
  }
}

// One group cannot mix Gloo (CPU) and NCCL (CUDA) ranks: every rank sees the other's device in
// the store before any backend forms, so the refusal needs no GPU.
TEST(TensorParallelDevices, MixedDevicesAreRefusedNamingThem) {
  gptfast::RankTeam team(2);
  auto store = gptfast::in_process_store();
  const std::vector<at::Device> devices{at::Device("cpu"), at::Device("cuda:1")};
  try {
    team.run([&](int r) { gptfast::Communicator comm(store, r, 2, std::chrono::milliseconds(10000), devices[r]); });
    FAIL() << "expected an error";
  } catch (const gptfast::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor-parallel ranks on mixed devices: rank 0 on cpu, rank 1 on cuda:1"),
              std::string::npos)
        << e.what();
  }
}

TEST(TensorParallel, AFailingRankEndsThePassNamingItAndTheModelRefusesMore) {
  gptfast::RuntimeSpec runtime{"fp32", "cpu", 1, 0, ""};
  runtime.tp = 2;
  runtime.tp_timeout = std::chrono::milliseconds(2000);
  gptfast::Model model("7", "random", small_llama_tp(), runtime, 1);
  const auto prompt = prompt_of(4);
  std::vector<float> out(model.vocab());
  const gptfast::Segment segment{0, prompt.data(), 4, 0, 1, out.data()};
  model.forward(&segment, 1);
  model.fail_rank_after(1, 3, std::chrono::milliseconds(2000));  // mid-pass: after layer 0's two all-reduces
  const auto begin = std::chrono::steady_clock::now();
  try {
    model.forward(&segment, 1);
    FAIL() << "expected an error";
  } catch (const gptfast::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor-parallel rank 1 failed: test hook"), std::string::npos) << e.what();
  }
  // Rank 0 waits in its all-reduce for at most the timeout, not forever.
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(20));
  try {
    model.forward(&segment, 1);
    FAIL() << "expected an error";
  } catch (const gptfast::Error& e) {
    EXPECT_NE(std::string(e.what()).find("create a new one"), std::string::npos) << e.what();
  }
}

// The 134M-parameter stories110M shape with random weights (dim 768, 12 layers, 12 heads, FFN
// 2048, vocab 32000): 64 greedy tokens with tp 2 and 4 equal tp 1, and the prompt's logits agree
// to 1e-4. Opt-in (GPTFAST_TP_134M=1): it loads the model three times (about 1.6 GB).
TEST(TensorParallel, Random134MGreedyAndLogitsMatchOneRank) {
  const char* on = std::getenv("GPTFAST_TP_134M");
  if (!on || std::string(on) != "1") GTEST_SKIP() << "set GPTFAST_TP_134M=1 to run";
  gptfast::ModelSpec s;
  s.dim = 768;
  s.n_layer = 12;
  s.n_head = 12;
  s.n_local_heads = 12;
  s.head_dim = 64;
  s.intermediate_size = 2048;
  s.vocab_size = 32000;
  s.block_size = 256;
  std::vector<int32_t> prompt{1, 9038, 2501, 263, 931};
  std::vector<int32_t> reference;
  std::vector<float> reference_logits;
  for (int tp : {1, 2, 4}) {
    gptfast::Session session("11", "random", s, "fp32", "cpu", 0, 128, 1, 0, "", tp);
    std::vector<float> logits(prompt.size() * s.vocab_size);
    session.prompt_logits(prompt.data(), int(prompt.size()), logits.data());
    gptfast::SamplingSpec greedy;
    session.start(0, greedy, 0, prompt.data(), int(prompt.size()));
    std::vector<int32_t> tokens;
    int32_t slot = 0, count = 0;
    std::vector<int32_t> out(session.max_tokens_per_step());
    while (tokens.size() < 64) {
      session.step(&slot, 1, out.data(), int(out.size()), &count);
      for (int j = 0; j < count; ++j) tokens.push_back(out[j]);
    }
    if (tp == 1) {
      reference = tokens;
      reference_logits = logits;
      continue;
    }
    EXPECT_EQ(tokens, reference) << "tp " << tp;
    EXPECT_LT(relative_error(reference_logits, logits), 1e-4) << "tp " << tp;
    std::printf("tp %d: 64 greedy tokens equal tp 1; logits max relative difference %.2e\n", tp,
                relative_error(reference_logits, logits));
  }
}

}  // namespace
