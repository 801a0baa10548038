// Tensor parallelism over two processes on loopback (dist/cluster.h): this test binary starts a
// second copy of itself as node 1 (the Follower test, which only runs when the parent sets
// GPTFAST_TP_FOLLOW), and node 0's greedy tokens and logits equal those of in-process tp 2, a
// rank failing on node 1 fails node 0's step naming that rank, and node 1 exits 0 on shutdown.
// A node that never comes fails node 0's load within the join timeout; one that dies fails the
// step in bounded time.
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>

#include <csignal>
#include <thread>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "dist/cluster.h"
#include "errors.h"
#include "gptfast/engine_api.h"
#include "test_models.h"

extern char** environ;

namespace {

using gptfast::test::small_llama_tp;

gptfast::Session open_session() { return gptfast::Session("7", "random", small_llama_tp(), "fp32", "cpu", 1, 0, 2, 0, "", 2); }

// Two sequences batched, greedy (speculative with a draft when k > 0), then the first one's
// prompt logits.
using Tokens = std::vector<std::vector<int32_t>>;  // per sequence

std::vector<float> run(gptfast::Session& session, Tokens& tokens, int k = 0) {
  tokens.assign(2, {});
  gptfast::SamplingSpec greedy;
  std::vector<int32_t> ids{0, 1}, out(2 * session.max_tokens_per_step()), counts(2);
  for (int i = 0; i < 2; ++i) {
    std::vector<int32_t> prompt(3 + 2 * i);
    for (size_t j = 0; j < prompt.size(); ++j) prompt[j] = int32_t((j * 37 + 11 + i) % 300);
    session.start(i, greedy, k, prompt.data(), int(prompt.size()));
  }
  for (int s = 0; s < 12; ++s) {
    session.step(ids.data(), 2, out.data(), session.max_tokens_per_step(), counts.data());
    for (int i = 0; i < 2; ++i) {
      for (int j = 0; j < counts[i]; ++j) tokens[i].push_back(out[i * session.max_tokens_per_step() + j]);
    }
  }
  session.release(0);
  session.release(1);
  const std::vector<int32_t> prompt{1, 5, 9, 200};
  std::vector<float> logits(prompt.size() * session.vocab_size());
  session.prompt_logits(prompt.data(), int(prompt.size()), logits.data());
  return logits;
}

pid_t start_follower(int port) {
  const std::string env = "GPTFAST_TP_FOLLOW=" + std::to_string(port);
  std::vector<char*> envp;
  for (char** e = environ; *e; ++e) envp.push_back(*e);
  envp.push_back(const_cast<char*>(env.c_str()));
  envp.push_back(nullptr);
  std::string exe = "/proc/self/exe", filter = "--gtest_filter=TensorParallelNodes.Follower";
  char* argv[] = {exe.data(), filter.data(), nullptr};
  pid_t pid = 0;
  EXPECT_EQ(posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv, envp.data()), 0);
  return pid;
}

// The child's exit status; a child still running after two minutes is killed and fails the test.
int wait_exit(pid_t pid) {
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      ADD_FAILURE() << "node 1 did not exit";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return status;
}

class GlooBuilt : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!GPTFAST_GLOO) GTEST_SKIP() << "tensor parallelism is built only against libtorch 2.10";
  }
};
const auto* const gloo_built = ::testing::AddGlobalTestEnvironment(new GlooBuilt);

// Node 1 of the other tests; does nothing when run directly.
TEST(TensorParallelNodes, Follower) {
  const char* port = std::getenv("GPTFAST_TP_FOLLOW");
  if (!port) GTEST_SKIP() << "node 1 of TwoProcessesMatchOneProcess, started by it";
  gptfast::tp_follow("127.0.0.1", std::atoi(port), 2, 1, 2, 60000);
}

TEST(TensorParallelNodes, TwoProcessesMatchOneProcess) {
  if (std::getenv("GPTFAST_TP_FOLLOW")) GTEST_SKIP() << "this process is node 1";
  Tokens expected_tokens, tokens;
  std::vector<float> expected_logits, logits;
  {
    gptfast::Session in_process = open_session();
    expected_logits = run(in_process, expected_tokens);
  }
  const int port = gptfast::tp_listen("127.0.0.1", 0, 2, 2, 60000);
  const pid_t follower = start_follower(port);
  {
    gptfast::Session session = open_session();
    logits = run(session, tokens);
    EXPECT_EQ(session.all_reduces(), 2 * small_llama_tp().n_layer * (12 + 1));  // every pass ran on both nodes
    EXPECT_NE(session.describe().find("nnodes=2"), std::string::npos) << session.describe();
  }
  EXPECT_EQ(tokens, expected_tokens);
  ASSERT_EQ(logits.size(), expected_logits.size());
  for (size_t i = 0; i < logits.size(); ++i) ASSERT_NEAR(logits[i], expected_logits[i], 1e-4) << i;
  {
    // Speculative decoding: the draft (another model of the same session) is replayed as well.
    Tokens speculative;
    gptfast::Session session = open_session();
    session.load_draft("8", "random", small_llama_tp(), 3, "");
    run(session, speculative, 3);
    for (int i = 0; i < 2; ++i) {
      ASSERT_GE(speculative[i].size(), expected_tokens[i].size());  // at least a token per step
      speculative[i].resize(expected_tokens[i].size());
      EXPECT_EQ(speculative[i], expected_tokens[i]) << "sequence " << i;
    }
  }
  {
    // A rank of node 1 fails mid-pass: node 0's step names it (from node 1's report, not its own
    // timed-out all-reduce), and the session refuses more.
    gptfast::Session session = open_session();
    gptfast::SamplingSpec greedy;
    const std::vector<int32_t> prompt{1, 2, 3};
    std::vector<int32_t> ids{0}, out(session.max_tokens_per_step()), counts(1);
    session.start(0, greedy, 0, prompt.data(), 3);
    session.step(ids.data(), 1, out.data(), session.max_tokens_per_step(), counts.data());
    session.fail_rank_for_test(1, 1, 3000);
    try {
      session.step(ids.data(), 1, out.data(), session.max_tokens_per_step(), counts.data());
      FAIL() << "expected an error";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find("tensor-parallel rank 1 failed: test hook"), std::string::npos) << e.what();
    }
    EXPECT_THROW(session.step(ids.data(), 1, out.data(), session.max_tokens_per_step(), counts.data()),
                 std::runtime_error);
  }
  gptfast::tp_shutdown();
  const int status = wait_exit(follower);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "node 1 ended with status " << status;
}

TEST(TensorParallelNodes, ANodeThatDiesFailsTheStepNamingItAndShutdownStillReturns) {
  if (std::getenv("GPTFAST_TP_FOLLOW")) GTEST_SKIP() << "this process is node 1";
  const int port = gptfast::tp_listen("127.0.0.1", 0, 2, 2, 60000);
  const pid_t follower = start_follower(port);
  {
    gptfast::Session session = open_session();
    gptfast::SamplingSpec greedy;
    const std::vector<int32_t> prompt{1, 2, 3};
    std::vector<int32_t> ids{0}, out(session.max_tokens_per_step()), counts(1);
    session.start(0, greedy, 0, prompt.data(), 3);
    session.step(ids.data(), 1, out.data(), session.max_tokens_per_step(), counts.data());
    kill(follower, SIGKILL);
    wait_exit(follower);
    try {
      session.step(ids.data(), 1, out.data(), session.max_tokens_per_step(), counts.data());
      FAIL() << "expected an error";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find("node(s) 1 did not report"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(session.broken().empty());
  }
  const auto begin = std::chrono::steady_clock::now();
  gptfast::tp_shutdown();  // does not wait for the dead node beyond its bound
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(40));
}

// Node 0 waits for a follower's load beyond the timeout while its heartbeat goes on, and fails
// about a timeout after it stops (two Cluster objects of this process stand for the two nodes).
TEST(TensorParallelNodes, ALoadIsAwaitedWhileTheHeartbeatGoesOn) {
  if (std::getenv("GPTFAST_TP_FOLLOW")) GTEST_SKIP() << "this process is node 1";
  // The heartbeat beats every second: an 8 s timeout leaves a loaded machine 7 s of slack.
  gptfast::ClusterSpec spec{"127.0.0.1", 0, 2, 0, 2, std::chrono::milliseconds(8000)};
  gptfast::Cluster leader(spec);
  spec.node_rank = 1;
  spec.master_port = leader.port();
  auto follower = std::make_unique<gptfast::Cluster>(spec);
  std::thread slow_load([&] {
    std::this_thread::sleep_for(std::chrono::seconds(10));  // longer than the timeout
    follower->loaded(0);
  });
  EXPECT_NO_THROW(leader.loaded(0));
  slow_load.join();
  follower.reset();  // the node stops, and its heartbeat with it
  const auto begin = std::chrono::steady_clock::now();
  try {
    leader.loaded(1);
    FAIL() << "expected an error";
  } catch (const gptfast::Error& e) {
    EXPECT_NE(std::string(e.what()).find("node 1 stopped responding while loading"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(60));
}

TEST(TensorParallelNodes, ANodeThatNeverComesFailsTheLoadWithinTheTimeout) {
  if (std::getenv("GPTFAST_TP_FOLLOW")) GTEST_SKIP() << "this process is node 1";
  gptfast::tp_listen("127.0.0.1", 0, 2, 2, 1000);
  const auto begin = std::chrono::steady_clock::now();
  try {
    open_session();
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("node(s) 1 of 2 did not join within 1 s"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(60));
  gptfast::tp_shutdown();
}

}  // namespace
