// The engine on a CUDA device: fp32 greedy decoding reproduces the shared references (stories260K
// dense and GPT-Fast int8, the Llama-3-shaped tiny model), batched and speculative runs equal
// them too, with sampling on the device (the default) and on the CPU (GPTFAST_DEVICE_SAMPLING=0);
// int8 decode rows through libtorch's _weight_int8pack_mm (GPTFAST_CUDA_QUANT_MATMUL=aten) give
// the int8 references too; seeded device sampling reproduces and fits the softmax; CUDA-graph
// replay gives eager decoding's logits bit for bit; a steady decode step allocates no host memory
// and synchronises with the device once (the token read); speculative rounds on the device
// (draws, verify, accept/reject) give plain greedy's ids with three drafts, emit the target's
// distribution and wait once per round. Tensor parallelism over NCCL (tp 2, rank i on cuda:i)
// gives tp 1's tokens and logits, and a failing rank ends the pass naming it. Without a CUDA
// device every test skips, printing why; the tensor-parallel ones skip likewise with fewer than 2
// devices.
#include <c10/core/CPUAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/util/Exception.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "chi_square.h"
#include "counting_allocator.h"
#include "gptfast/engine_api.h"
#include "model.h"
#include "test_models.h"

namespace {

// Skips the calling test, with the reason, unless libtorch sees a CUDA device.
#define REQUIRE_CUDA()                                                                              \
  do {                                                                                              \
    if (!at::hasCUDA() || at::getNumGPUs() == 0) {                                                  \
      GTEST_SKIP() << "no CUDA device (libtorch CUDA available: " << (at::hasCUDA() ? "yes" : "no") \
                   << ", devices: " << (at::hasCUDA() ? at::getNumGPUs() : 0) << ")";               \
    }                                                                                               \
  } while (0)

// Skips the calling test, with the reason, unless `n` CUDA devices are visible and this build
// has tensor parallelism (it is built only against libtorch 2.10: see CMakeLists.txt).
#define REQUIRE_GPUS(n)                                                                                    \
  do {                                                                                                     \
    if (!GPTFAST_GLOO) GTEST_SKIP() << "tensor parallelism is built only against libtorch 2.10";         \
    const int gpus = at::hasCUDA() ? int(at::getNumGPUs()) : 0;                                            \
    if (gpus < (n)) {                                                                                      \
      GTEST_SKIP() << "tensor parallelism over NCCL needs " << (n) << " CUDA devices, found " << gpus; \
    }                                                                                                      \
  } while (0)

std::string shared_dir() {
  const char* env = std::getenv("GPTFAST_SHARED");
  return env ? env : GPTFAST_SHARED_DIR;
}

// The ModelSpec in a GPT-Fast style config.json (the shared models' own configs).
gptfast::ModelSpec read_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  nlohmann::json j = nlohmann::json::parse(in);
  gptfast::ModelSpec s;
  s.dim = j.at("dim");
  s.n_layer = j.at("n_layer");
  s.n_head = j.at("n_head");
  s.n_local_heads = j.value("n_local_heads", s.n_head);
  s.head_dim = j.value("head_dim", s.dim / s.n_head);
  s.intermediate_size = j.at("intermediate_size");
  s.vocab_size = j.at("vocab_size");
  s.block_size = j.at("block_size");
  s.rope_base = j.value("rope_base", 10000.0f);
  s.norm_eps = j.value("norm_eps", 1e-5f);
  if (j.contains("rope_scaling")) {
    const auto& r = j["rope_scaling"];
    s.rope_scaling_factor = r.at("factor");
    s.rope_low_freq_factor = r.at("low_freq_factor");
    s.rope_high_freq_factor = r.at("high_freq_factor");
    s.rope_original_max_position = r.at("original_max_position_embeddings");
  }
  return s;
}

struct Reference {
  std::vector<int32_t> prompt, generated;
};

std::vector<Reference> read_references(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::vector<Reference> out;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line);
    out.push_back({j.at("prompt_tokens").get<std::vector<int32_t>>(), j.at("generated_tokens").get<std::vector<int32_t>>()});
  }
  return out;
}

struct Case {
  std::string model_dir, checkpoint, references;
};

// Decodes every reference greedily, `slots` sequences at a time in one session (continuous
// batching), each optionally speculative with the target itself as its draft, and compares ids.
// `describes`: what the session's describe() must contain (its decode and sampling modes).
void expect_references(const Case& c, int slots, int speculate_k = 0, int tp = 1, const std::string& describes = "") {
  const std::string dir = shared_dir() + "/models/" + c.model_dir;
  const gptfast::ModelSpec spec = read_config(dir + "/config.json");
  const std::vector<Reference> refs = read_references(shared_dir() + "/reference/" + c.references);
  gptfast::Session session(dir + "/" + c.checkpoint, "pth", spec, "fp32", "cuda", 0, 0, slots, 0, "", tp);
  ASSERT_EQ(session.tensor_parallel(), tp);
  EXPECT_NE(session.describe().find(describes), std::string::npos) << session.describe();
  if (speculate_k > 0) session.load_draft(dir + "/" + c.checkpoint, "pth", spec, speculate_k, "");
  const int stride = session.max_tokens_per_step();
  for (size_t first = 0; first < refs.size(); first += slots) {
    const int n = int(std::min<size_t>(slots, refs.size() - first));
    std::vector<int32_t> active(n), out(n * stride), counts(n);
    std::vector<std::vector<int32_t>> got(n);
    for (int i = 0; i < n; ++i) {
      active[i] = i;
      const Reference& r = refs[first + i];
      session.start(i, gptfast::SamplingSpec{}, speculate_k, r.prompt.data(), int(r.prompt.size()));
    }
    for (bool running = true; running;) {
      session.step(active.data(), n, out.data(), stride, counts.data());
      running = false;
      for (int i = 0; i < n; ++i) {
        for (int t = 0; t < counts[i]; ++t) got[i].push_back(out[i * stride + t]);
        if (got[i].size() < refs[first + i].generated.size()) running = true;
      }
      // Finished sequences keep stepping (their extra tokens are ignored) so that the batch stays fixed.
    }
    for (int i = 0; i < n; ++i) {
      const std::vector<int32_t>& want = refs[first + i].generated;
      got[i].resize(want.size());
      EXPECT_EQ(got[i], want) << c.references << " case " << first + i << " (slots " << slots << ", speculate_k "
                              << speculate_k << ", tp " << tp << ")";
      session.release(i);
    }
  }
}

// Ids drawn (counts per id) against softmax(logits / t), by Pearson's chi-square. The statistic
// wants >= 5 expected per cell, so the rarest ids share one cell.
gptfast_test::ChiSquare softmax_fit(const std::vector<float>& logits, float t, const std::vector<long>& drawn) {
  const int vocab = int(logits.size());
  long n = 0;
  for (long c : drawn) n += c;
  const double max = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(vocab);
  double total = 0;
  for (int v = 0; v < vocab; ++v) total += p[v] = std::exp((double(logits[v]) - max) / t);
  std::vector<long> cells;
  std::vector<double> probs;
  long rare_count = 0;
  double rare_p = 0;
  for (int v = 0; v < vocab; ++v) {
    p[v] /= total;
    if (p[v] * double(n) < 5) {
      rare_count += drawn[v];
      rare_p += p[v];
    } else {
      cells.push_back(drawn[v]);
      probs.push_back(p[v]);
    }
  }
  cells.push_back(rare_count);
  probs.push_back(rare_p);
  return gptfast_test::chi_square(cells, probs);
}

// Counts libtorch's sync debug mode warnings (one per synchronising libtorch call).
struct CountSyncs : c10::WarningHandler {
  int syncs = 0;
  void process(const c10::Warning& w) override {
    if (w.msg().find("synchronizing") != std::string::npos) ++syncs;
  }
};

const Case kStories{"stories260K", "model.pth", "stories260K-greedy.jsonl"};
const Case kStoriesInt8{"stories260K", "model_int8.pth", "stories260K-int8-greedy.jsonl"};
const Case kLlama3Tiny{"llama3-tiny-random", "model.pth", "llama3-tiny-greedy.jsonl"};

TEST(CudaEngine, Stories260KGreedyEqualsReferences) {
  REQUIRE_CUDA();
  expect_references(kStories, 1);
}

TEST(CudaEngine, Stories260KInt8GreedyEqualsReferences) {
  REQUIRE_CUDA();
  expect_references(kStoriesInt8, 1);
}

TEST(CudaEngine, Llama3TinyGreedyEqualsReferences) {
  REQUIRE_CUDA();
  expect_references(kLlama3Tiny, 1);
}

TEST(CudaEngine, BatchedGreedyEqualsReferences) {
  REQUIRE_CUDA();
  expect_references(kStories, 4);  // 4 sequences per graph replay (bucket 4), then the rest
  expect_references(kStories, 3);  // a batch of 3 padded to the bucket of 4
}

// Setting an environment variable for the sessions a scope creates (read when a model loads).
struct ScopedEnv {
  std::string name;
  ScopedEnv(const char* n, const char* value) : name(n) { setenv(n, value, 1); }
  ~ScopedEnv() { unsetenv(name.c_str()); }
};

// Greedy decoding sampled inside the graph, sampled eagerly on the device, and sampled by the CPU
// Sampler from the logits all give the reference ids (so the same ids), single and padded batches.
TEST(CudaEngine, DeviceAndCpuSampledGreedyEqualReferences) {
  REQUIRE_CUDA();
  {
    ScopedEnv on("GPTFAST_DEVICE_SAMPLING", "1");
    expect_references(kStories, 1, 0, 1, "decode=device:graphs sampling=device");
    expect_references(kStories, 3, 0, 1, "decode=device:graphs sampling=device");
    expect_references(kStoriesInt8, 1, 0, 1, "sampling=device");
  }
  {
    ScopedEnv eager("GPTFAST_CUDA_GRAPHS", "0");
    expect_references(kStories, 3, 0, 1, "decode=device:eager (GPTFAST_CUDA_GRAPHS=0) sampling=device");
  }
  {
    ScopedEnv off("GPTFAST_DEVICE_SAMPLING", "0");
    expect_references(kStories, 1, 0, 1, "sampling=cpu (GPTFAST_DEVICE_SAMPLING=0)");
    expect_references(kStories, 3, 0, 1, "sampling=cpu (GPTFAST_DEVICE_SAMPLING=0)");
  }
}

// GPTFAST_CUDA_QUANT_MATMUL chooses what runs int8 decode rows: the own gemv kernels (the
// default) or libtorch's _weight_int8pack_mm. Both give the int8 references (fp32 activations),
// alone and in a padded batch, and describe() says which ran.
TEST(CudaEngine, Int8GreedyEqualsReferencesWithOwnAndLibtorchMatmul) {
  REQUIRE_CUDA();
  for (const char* choice : {"own", "aten"}) {
    ScopedEnv env("GPTFAST_CUDA_QUANT_MATMUL", choice);
    expect_references(kStoriesInt8, 1, 0, 1, std::string("weights=int8 quant_matmul=") + choice);
    expect_references(kStoriesInt8, 3, 0, 1, std::string("weights=int8 quant_matmul=") + choice);
  }
}

// The choice is checked when a model loads: an unknown value, and libtorch's int4 op (bf16
// activations only) for an fp32 model, are one-line errors naming the variable.
TEST(CudaEngine, QuantMatmulChoiceIsCheckedAtLoad) {
  REQUIRE_CUDA();
  const std::string dir = shared_dir() + "/models/stories260K";
  const gptfast::ModelSpec spec = read_config(dir + "/config.json");
  auto load_error = [&](const char* value, const char* quantize) -> std::string {
    ScopedEnv env("GPTFAST_CUDA_QUANT_MATMUL", value);
    try {
      gptfast::Session s(dir + "/model.pth", "pth", spec, "fp32", "cuda", 0, 0, 1, 0, quantize, 1);
    } catch (const std::exception& e) {
      return e.what();
    }
    return "(loaded)";
  };
  EXPECT_NE(load_error("fast", "int8").find("GPTFAST_CUDA_QUANT_MATMUL=fast: expected own"), std::string::npos);
  const std::string int4 = load_error("aten", "int4:32");
  EXPECT_NE(int4.find("GPTFAST_CUDA_QUANT_MATMUL=aten: layer 'layers.0.attention.wqkv': libtorch's _weight_int4pack_mm "
                      "takes bf16 activations only"), std::string::npos) << int4;
}

gptfast::Session stories_session(int slots) {
  const std::string dir = shared_dir() + "/models/stories260K";
  return gptfast::Session(dir + "/model.pth", "pth", read_config(dir + "/config.json"), "fp32", "cuda", 0, 0, slots, 0,
                          "", 1);
}

gptfast::SamplingSpec seeded(float temperature, int64_t seed) {
  gptfast::SamplingSpec s;
  s.temperature = temperature;
  s.seed = seed;
  return s;
}

// Greedy with penalties and suppressed ids is deterministic, so the device (its history kept on the
// device, suppression set through the session) must pick exactly what the CPU Sampler picks from
// the same logits.
TEST(CudaEngine, DeviceSampledPenaltiesAndSuppressionEqualTheCpuSampler) {
  REQUIRE_CUDA();
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378}, banned = {432, 261};
  gptfast::SamplingSpec penalised;
  penalised.repetition_penalty = 1.3f;
  penalised.presence_penalty = 0.2f;
  penalised.frequency_penalty = 0.1f;
  auto generate = [&](const char* device_sampling) {
    ScopedEnv env("GPTFAST_DEVICE_SAMPLING", device_sampling);
    gptfast::Session session = stories_session(1);
    session.start(0, penalised, 0, prompt.data(), int(prompt.size()));
    session.suppress_tokens(0, banned.data(), int(banned.size()));
    const int32_t slot = 0;
    std::vector<int32_t> out(session.max_tokens_per_step()), got;
    int32_t count = 0;
    for (int i = 0; i < 48; ++i) {
      session.step(&slot, 1, out.data(), session.max_tokens_per_step(), &count);
      got.push_back(out[0]);
    }
    return got;
  };
  const std::vector<int32_t> device = generate("1"), cpu = generate("0");
  EXPECT_EQ(device, cpu);
  for (int32_t id : banned) EXPECT_EQ(std::count(device.begin(), device.end(), id), 0) << id;
}

// Seeded sampling on the device: a seed reproduces its tokens (a different stream from the CPU
// Sampler's), another seed gives others, and the first decode step's draws (inside the graph)
// fit softmax(logits / T) of that step's logits; the same draws judged at another temperature
// must fail the fit, so the check can fail.
TEST(CudaEngine, DeviceSampledTokensReproduceAndFitTheSoftmax) {
  REQUIRE_CUDA();
  const int slots = 8;
  gptfast::Session session = stories_session(slots);
  ASSERT_NE(session.describe().find("sampling=device"), std::string::npos) << session.describe();
  const int stride = session.max_tokens_per_step();
  std::vector<int32_t> active(slots), out(slots * stride), counts(slots);
  for (int i = 0; i < slots; ++i) active[i] = i;
  const std::vector<int32_t> story = {1, 403, 407, 261, 378};
  auto generate = [&](int64_t seed) {
    // Long and warm enough that two seeds giving the same tokens is beyond chance.
    session.start(0, seeded(1.5f, seed), 0, story.data(), int(story.size()));
    std::vector<int32_t> got;
    for (int i = 0; i < 96; ++i) {
      session.step(active.data(), 1, out.data(), stride, counts.data());
      got.push_back(out[0]);
    }
    session.release(0);
    return got;
  };
  const std::vector<int32_t> a = generate(7), b = generate(7), c = generate(8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);

  // The prompt [BOS] makes the first step a decode step: its token is drawn in the graph.
  const int32_t bos = 1;
  const int vocab = session.vocab_size();
  std::vector<float> logits(vocab);
  session.prompt_logits(&bos, 1, logits.data());
  const float temperature = 0.8f;
  std::vector<long> drawn(vocab, 0);
  const int rounds = 2500;  // 20000 draws
  for (int r = 0; r < rounds; ++r) {
    for (int i = 0; i < slots; ++i) session.start(i, seeded(temperature, 1000 + r * slots + i), 0, &bos, 1);
    session.step(active.data(), slots, out.data(), stride, counts.data());
    for (int i = 0; i < slots; ++i) {
      ASSERT_EQ(counts[i], 1);
      ASSERT_TRUE(out[i * stride] >= 0 && out[i * stride] < vocab);
      drawn[out[i * stride]]++;
      session.release(i);
    }
  }
  auto fit = [&](float t) { return softmax_fit(logits, t, drawn); };
  const auto right = fit(temperature), wrong = fit(1.2f * temperature);
  EXPECT_TRUE(right.passes()) << "chi2=" << right.statistic << " df=" << right.df;
  EXPECT_FALSE(wrong.passes()) << "chi2=" << wrong.statistic << " df=" << wrong.df;
}

// Per decode step the host waits for the device once: to read the sampled ids. Counted with
// libtorch's sync debug mode, which warns at every synchronising libtorch call (stream and
// device synchronisation, blocking copies, .item()); the engine's per-step code makes no raw
// CUDA synchronising call of its own (device_decode.cpp: copies and the wait go through libtorch).
TEST(CudaEngine, DecodeStepSynchronisesOnlyToReadTheTokens) {
  REQUIRE_CUDA();
  const int slots = 2;
  gptfast::Session session = stories_session(slots);
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378};
  gptfast::SamplingSpec penalised = seeded(0.0f, 0);
  penalised.repetition_penalty = 1.2f;
  session.start(0, seeded(1.0f, 5), 0, prompt.data(), int(prompt.size()));
  session.start(1, penalised, 0, prompt.data(), int(prompt.size()));
  const std::vector<int32_t> active = {0, 1};
  const int stride = session.max_tokens_per_step();
  std::vector<int32_t> out(slots * stride), counts(slots);
  for (int i = 0; i < 4; ++i) session.step(active.data(), slots, out.data(), stride, counts.data());  // prefill, capture
  ASSERT_NE(session.describe().find("decode=device:graphs sampling=device"), std::string::npos) << session.describe();
  CountSyncs counter;
  {
    c10::WarningUtils::WarningHandlerGuard handler(&counter);
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_WARN);
    for (int i = 0; i < 32; ++i) {
      session.step(active.data(), slots, out.data(), stride, counts.data());
      if (counter.syncs != i + 1) {
        ADD_FAILURE() << "decode step " << i << ": " << counter.syncs - i << " synchronisations";
        break;
      }
    }
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
  }
  EXPECT_EQ(counter.syncs, 32);
}

TEST(CudaEngine, SpeculativeGreedyEqualsReferences) {
  REQUIRE_CUDA();
  expect_references(kStories, 1, 4);
  expect_references(kStories, 2, 3);
}

// ---- speculative rounds on the device (Model::speculate) ------------------------------------------

// stories260K cut to its first `layers` layers, the draft of the Java speculative tests
// (Drafts.truncated): the llama2.c .bin with a smaller header n_layers and each stacked per-layer
// tensor cut (legacy layout, see load_llama2c.cpp). Returns its path (in the test temp dir).
std::string truncated_stories(int layers) {
  const std::string src = shared_dir() + "/models/stories260K/stories260K.bin";
  std::ifstream in(src, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + src);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  int32_t h[7];
  std::memcpy(h, bytes.data(), sizeof(h));
  const int64_t dim = h[0], hidden = h[1], L = h[2], kv = int64_t(h[4]) * (dim / h[3]), vocab = std::abs(h[5]);
  const size_t floats = (bytes.size() - sizeof(h)) / sizeof(float);
  std::vector<float> f(floats);
  std::memcpy(f.data(), bytes.data() + sizeof(h), floats * sizeof(float));
  std::vector<float> out;
  size_t at = 0;
  auto whole = [&](size_t n) {
    out.insert(out.end(), f.begin() + at, f.begin() + at + n);
    at += n;
  };
  auto stacked = [&](int64_t per_layer) {
    out.insert(out.end(), f.begin() + at, f.begin() + at + per_layer * layers);
    at += per_layer * L;
  };
  whole(vocab * dim);
  for (int64_t per_layer : {dim, dim * dim, kv * dim, kv * dim, dim * dim, dim, hidden * dim, dim * hidden, hidden * dim}) {
    stacked(per_layer);
  }
  whole(floats - at);  // final norm, RoPE tables, classifier
  h[2] = layers;
  const std::string path = ::testing::TempDir() + "stories260K-" + std::to_string(layers) + "-layers.bin";
  std::ofstream o(path, std::ios::binary);
  o.write(reinterpret_cast<const char*>(h), sizeof(h));
  o.write(reinterpret_cast<const char*>(out.data()), std::streamsize(out.size() * sizeof(float)));
  if (!o) throw std::runtime_error("cannot write " + path);
  return path;
}

struct Draft {
  std::string name, path, format;
  gptfast::ModelSpec spec;
};

// The drafts of the Java speculative tests: the target itself (every proposal kept), stories260K
// cut to 4 layers (most kept), and random weights of its shape (most rejected).
std::vector<Draft> stories_drafts() {
  const std::string dir = shared_dir() + "/models/stories260K";
  const gptfast::ModelSpec spec = read_config(dir + "/config.json");
  gptfast::ModelSpec four = spec, random = spec;
  four.n_layer = 4;
  random.n_layer = 2;
  return {{"self", dir + "/model.pth", "pth", spec},
          {"truncated to 4 layers", truncated_stories(4), "llama2c", four},
          {"random weights", "7", "random", random}};
}

// The greedy ids of every reference prompt (as many as the reference has), one sequence at a
// time; speculative with `draft` and k when k > 0. Adds the proposals and acceptances to *stats.
std::vector<std::vector<int32_t>> greedy_ids(const std::vector<Reference>& refs, const Draft* draft, int k,
                                             const std::string& describes, int64_t* proposed = nullptr,
                                             int64_t* accepted = nullptr) {
  gptfast::Session session = stories_session(1);
  if (draft) session.load_draft(draft->path, draft->format, draft->spec, k, "");
  EXPECT_NE(session.describe().find(describes), std::string::npos) << session.describe();
  const int stride = session.max_tokens_per_step();
  std::vector<int32_t> out(stride);
  const int32_t slot = 0;
  std::vector<std::vector<int32_t>> all;
  for (const Reference& r : refs) {
    session.start(slot, gptfast::SamplingSpec{}, draft ? k : 0, r.prompt.data(), int(r.prompt.size()));
    std::vector<int32_t> got;
    while (got.size() < r.generated.size()) {
      int32_t count = 0;
      session.step(&slot, 1, out.data(), stride, &count);
      got.insert(got.end(), out.begin(), out.begin() + count);
    }
    got.resize(r.generated.size());
    all.push_back(got);
    if (proposed) *proposed += session.proposed(slot);
    if (accepted) *accepted += session.accepted(slot);
    session.release(slot);
  }
  return all;
}

// Greedy speculative rounds on the device give plain greedy's ids on the device and the
// stories260K references, for every draft (all, most and few proposals kept) and k; so does the
// CPU's rule (GPTFAST_DEVICE_SAMPLING=0) with the truncated draft.
TEST(CudaEngine, SpeculativeRoundsOnTheDeviceEqualPlainGreedyAndReferences) {
  REQUIRE_CUDA();
  const std::vector<Reference> refs = read_references(shared_dir() + "/reference/stories260K-greedy.jsonl");
  std::vector<std::vector<int32_t>> want;
  for (const Reference& r : refs) want.push_back(r.generated);
  const std::vector<std::vector<int32_t>> plain = greedy_ids(refs, nullptr, 0, "sampling=device");
  EXPECT_EQ(plain, want);
  const std::vector<Draft> drafts = stories_drafts();
  for (const Draft& d : drafts) {
    for (int k : {1, 4}) {
      int64_t proposed = 0, accepted = 0;
      EXPECT_EQ(greedy_ids(refs, &d, k, "speculation=device", &proposed, &accepted), want) << d.name << " k=" << k;
      EXPECT_GT(proposed, 0) << d.name;
      if (d.name == "self") {
        EXPECT_EQ(accepted, proposed) << "k=" << k;
      }
      if (d.name == "random weights") {
        EXPECT_LT(accepted, proposed / 2) << "k=" << k;
      }
    }
  }
  ScopedEnv cpu("GPTFAST_DEVICE_SAMPLING", "0");
  EXPECT_EQ(greedy_ids(refs, &drafts[1], 3, "speculation=cpu (GPTFAST_DEVICE_SAMPLING=0)"), want);
}

// At temperature 1 the first id of a speculative round (prompt [BOS], k 2, the random draft, so
// that most proposals are rejected and the residual draw decides) follows softmax of the target's
// logits after BOS, computed here from prompt_logits; the same ids judged against the draft's
// softmax must fail the fit, so the check can fail.
TEST(CudaEngine, SpeculativeRoundOnTheDeviceEmitsTheTargetDistribution) {
  REQUIRE_CUDA();
  const int slots = 8, k = 2;
  const Draft draft = stories_drafts()[2];
  gptfast::Session session = stories_session(slots);
  session.load_draft(draft.path, draft.format, draft.spec, k, "");
  ASSERT_NE(session.describe().find("speculation=device"), std::string::npos) << session.describe();
  // One sampling state per sequence: the target's; the draft's decoder holds none.
  EXPECT_NE(session.describe().find("sampling=none (a draft"), std::string::npos) << session.describe();
  const int32_t bos = 1;
  const int vocab = session.vocab_size();
  std::vector<float> target(vocab), proposer(vocab);
  session.prompt_logits(&bos, 1, target.data());
  {
    gptfast::Session d(draft.path, draft.format, draft.spec, "fp32", "cuda", 0, 0, 1, 0, "", 1);
    d.prompt_logits(&bos, 1, proposer.data());
  }
  const int stride = session.max_tokens_per_step();
  std::vector<int32_t> active(slots), out(slots * stride), counts(slots);
  for (int i = 0; i < slots; ++i) active[i] = i;
  std::vector<long> drawn(vocab, 0);
  const int rounds = 500;  // 4000 speculative rounds, each eager (a few ms)
  for (int r = 0; r < rounds; ++r) {
    for (int i = 0; i < slots; ++i) session.start(i, seeded(1.0f, 5000 + r * slots + i), k, &bos, 1);
    session.step(active.data(), slots, out.data(), stride, counts.data());
    for (int i = 0; i < slots; ++i) {
      ASSERT_TRUE(counts[i] >= 1 && counts[i] <= k + 1) << counts[i];
      ASSERT_TRUE(out[i * stride] >= 0 && out[i * stride] < vocab);
      drawn[out[i * stride]]++;
      session.release(i);
    }
  }
  auto fit = [&](const std::vector<float>& logits) { return softmax_fit(logits, 1.0f, drawn); };
  const auto right = fit(target), wrong = fit(proposer);
  EXPECT_TRUE(right.passes()) << "chi2=" << right.statistic << " df=" << right.df;
  EXPECT_FALSE(wrong.passes()) << "chi2=" << wrong.statistic << " df=" << wrong.df;
}

// A speculative round on the device waits for the device once (the emitted ids), beside a plain
// sequence's graph-replayed step (its token read): two waits per step. Counted as in
// DecodeStepSynchronisesOnlyToReadTheTokens.
TEST(CudaEngine, SpeculativeRoundSynchronisesOnce) {
  REQUIRE_CUDA();
  const Draft draft = stories_drafts()[1];
  gptfast::Session session = stories_session(2);
  session.load_draft(draft.path, draft.format, draft.spec, 3, "");
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378};
  session.start(0, seeded(1.0f, 5), 3, prompt.data(), int(prompt.size()));
  session.start(1, seeded(1.0f, 6), 0, prompt.data(), int(prompt.size()));
  const std::vector<int32_t> active = {0, 1};
  const int stride = session.max_tokens_per_step();
  std::vector<int32_t> out(2 * stride), counts(2);
  for (int i = 0; i < 4; ++i) session.step(active.data(), 2, out.data(), stride, counts.data());  // prefill, capture
  ASSERT_NE(session.describe().find("speculation=device"), std::string::npos) << session.describe();
  const int64_t rounds_before = session.rounds(0);
  CountSyncs counter;
  const int steps = 16;
  {
    c10::WarningUtils::WarningHandlerGuard handler(&counter);
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_WARN);
    for (int i = 0; i < steps; ++i) {
      session.step(active.data(), 2, out.data(), stride, counts.data());
      if (counter.syncs != 2 * (i + 1)) {
        ADD_FAILURE() << "step " << i << ": " << counter.syncs - 2 * i << " synchronisations";
        break;
      }
    }
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
  }
  EXPECT_EQ(counter.syncs, 2 * steps);
  EXPECT_EQ(session.rounds(0) - rounds_before, steps);  // every step of slot 0 was a round
}

// A small GQA shape for the decode-graph and tensor-parallel tests: heads, KV heads and FFN width
// divide by 2.
gptfast::ModelSpec small_gqa_spec() {
  gptfast::ModelSpec spec;
  spec.dim = 256;
  spec.n_layer = 2;
  spec.n_head = 8;
  spec.n_local_heads = 2;
  spec.head_dim = 32;
  spec.intermediate_size = 688;
  spec.vocab_size = 1000;
  spec.block_size = 128;
  return spec;
}

// Graph replay and eager decoding run the same kernels on the same inputs: the logits of every
// decode step must agree bit for bit, over a batch of slots at different positions.
TEST(CudaEngine, GraphReplayEqualsEagerBitForBit) {
  REQUIRE_CUDA();
  const gptfast::ModelSpec spec = small_gqa_spec();
  auto decode_logits = [&](const char* graphs, const std::string& dtype) {
    setenv("GPTFAST_CUDA_GRAPHS", graphs, 1);
    gptfast::RuntimeSpec runtime;
    runtime.dtype = dtype;
    runtime.device = "cuda";
    gptfast::Model model("11", "random", spec, runtime, 3);
    unsetenv("GPTFAST_CUDA_GRAPHS");
    EXPECT_NE(model.describe().find(std::string(graphs) == "0" ? "device:eager" : "device:graphs"), std::string::npos)
        << model.describe();
    std::vector<float> all;
    std::vector<float> row(3 * spec.vocab_size);
    // Prompts of different lengths, then 12 decode steps of all three slots.
    std::vector<int32_t> prompt = {1, 5, 9, 200, 17, 3, 44};
    for (int s = 0; s < 3; ++s) {
      gptfast::Segment seg{s, prompt.data(), 3 + 2 * s, 0, 0, nullptr};
      model.forward(&seg, 1);
    }
    for (int step = 0; step < 12; ++step) {
      std::vector<gptfast::Segment> segs;
      std::vector<int32_t> tokens = {int32_t(7 * step % 1000), int32_t(13 * step % 1000), int32_t(29 * step % 1000)};
      for (int s = 0; s < 3; ++s) segs.push_back({s, &tokens[s], 1, 3 + 2 * s + step, 1, row.data() + s * spec.vocab_size});
      model.forward(segs.data(), 3);
      all.insert(all.end(), row.begin(), row.end());
    }
    return all;
  };
  for (const std::string dtype : {"fp32", "bf16"}) {
    const std::vector<float> eager = decode_logits("0", dtype), graphs = decode_logits("1", dtype);
    ASSERT_EQ(eager.size(), graphs.size());
    EXPECT_EQ(0, std::memcmp(eager.data(), graphs.data(), eager.size() * sizeof(float))) << dtype;
  }
}

using gptfast::test::CountingAllocator;

// After warm-up (the graph is captured on the first decode step), decode steps allocate no host
// tensor memory: inputs and logits travel through pinned buffers allocated once.
TEST(CudaEngine, DecodeStepAllocatesNoHostMemory) {
  REQUIRE_CUDA();
  const std::string dir = shared_dir() + "/models/stories260K";
  gptfast::Session session(dir + "/model.pth", "pth", read_config(dir + "/config.json"), "fp32", "cuda", 0, 0, 1, 0, "", 1);
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378};
  session.start(0, gptfast::SamplingSpec{}, 0, prompt.data(), int(prompt.size()));
  const int32_t slot = 0;
  int32_t out[2], count = 0;
  for (int i = 0; i < 4; ++i) session.step(&slot, 1, out, session.max_tokens_per_step(), &count);
  c10::Allocator* base = c10::GetCPUAllocator();
  CountingAllocator counting(base);
  c10::SetCPUAllocator(&counting, /*priority=*/100);
  for (int i = 0; i < 32; ++i) session.step(&slot, 1, out, session.max_tokens_per_step(), &count);
  c10::SetCPUAllocator(base, /*priority=*/101);
  EXPECT_EQ(counting.count(), 0);
}

// Tensor parallelism over NCCL: rank i on cuda:i, its all-reduces on NCCL, decoding eagerly.


TEST(CudaTensorParallel, Tp2GreedyEqualsTheStories260KReferences) {
  REQUIRE_GPUS(2);
  expect_references(kStories, 1, 0, 2);
  expect_references(kStories, 3, 0, 2);  // batched: 3 slots per pass
}

// The logits of a prompt (eager passes) and of 16 decode steps of 2 slots (the device decoder),
// and the greedy tokens those steps sample: tp 2 against tp 1, both on CUDA.
TEST(CudaTensorParallel, Tp2LogitsAndGreedyTokensEqualTp1) {
  REQUIRE_GPUS(2);
  struct Run {
    std::vector<float> logits;
    std::vector<int32_t> tokens;
    std::string describe;
  };
  auto run = [&](int tp) {
    gptfast::RuntimeSpec runtime;
    runtime.dtype = "fp32";
    runtime.device = "cuda";
    runtime.tp = tp;
    gptfast::Model model("11", "random", small_gqa_spec(), runtime, 2);
    const int vocab = model.vocab();
    Run out;
    out.describe = model.describe();
    const std::vector<int32_t> prompt = {1, 5, 9, 200, 17, 3, 44, 999, 0, 12};
    std::vector<float> logits(prompt.size() * vocab), row(2 * vocab);
    std::vector<int32_t> next(2);
    for (int s = 0; s < 2; ++s) {
      const int n = 6 + 4 * s;
      gptfast::Segment seg{s, prompt.data(), n, 0, n, logits.data()};
      model.forward(&seg, 1);
      out.logits.insert(out.logits.end(), logits.begin(), logits.begin() + int64_t(n) * vocab);
      next[s] = int32_t(std::max_element(logits.begin() + int64_t(n - 1) * vocab, logits.begin() + int64_t(n) * vocab) -
                        (logits.begin() + int64_t(n - 1) * vocab));
    }
    for (int step = 0; step < 16; ++step) {
      std::vector<gptfast::Segment> segs;
      for (int s = 0; s < 2; ++s) segs.push_back({s, &next[s], 1, 6 + 4 * s + step, 1, row.data() + s * vocab});
      model.forward(segs.data(), 2);
      out.logits.insert(out.logits.end(), row.begin(), row.end());
      for (int s = 0; s < 2; ++s) {
        next[s] = int32_t(std::max_element(row.begin() + s * vocab, row.begin() + (s + 1) * vocab) -
                          (row.begin() + s * vocab));
        out.tokens.push_back(next[s]);
      }
    }
    return out;
  };
  const Run one = run(1), two = run(2);
  EXPECT_NE(two.describe.find("rank_devices=cuda:0,cuda:1"), std::string::npos) << two.describe;
  EXPECT_NE(two.describe.find("device:eager (tensor parallelism"), std::string::npos) << two.describe;
  ASSERT_EQ(one.logits.size(), two.logits.size());
  const double err = gptfast::test::relative_error(one.logits, two.logits);
  EXPECT_LT(err, 1e-4);
  EXPECT_EQ(one.tokens, two.tokens);
  std::printf("tp 2 on CUDA: 32 greedy tokens %s tp 1; logits max relative difference %.2e\n",
              one.tokens == two.tokens ? "equal" : "differ from", err);
}

// A rank that fails mid-pass (the test hook: rank 1 throws at its 3rd all-reduce from now, after
// layer 0's two) ends the pass with an error naming it, within rank 0's collective timeout rather
// than never, and the model then refuses further work. Once on a prompt (eager ATen pass), once
// on a decode step (the device decoder).
TEST(CudaTensorParallel, AFailingRankEndsThePassNamingIt) {
  REQUIRE_GPUS(2);
  for (const int32_t n : {4, 1}) {
    gptfast::RuntimeSpec runtime;
    runtime.dtype = "fp32";
    runtime.device = "cuda";
    runtime.tp = 2;
    runtime.tp_timeout = std::chrono::milliseconds(5000);
    gptfast::Model model("11", "random", small_gqa_spec(), runtime, 1);
    const std::vector<int32_t> prompt = {1, 5, 9, 200};
    std::vector<float> out(4 * model.vocab());
    const gptfast::Segment first{0, prompt.data(), 4, 0, 1, out.data()};
    model.forward(&first, 1);  // the NCCL communicators form here
    const gptfast::Segment next{0, prompt.data(), n, 4, 1, out.data()};
    model.fail_rank_after(1, 3, std::chrono::milliseconds(5000));
    const auto begin = std::chrono::steady_clock::now();
    try {
      model.forward(&next, 1);
      FAIL() << "expected an error (segment of " << n << ")";
    } catch (const gptfast::Error& e) {
      EXPECT_NE(std::string(e.what()).find("tensor-parallel rank 1 failed: test hook"), std::string::npos) << e.what();
    }
    // Bounded by the 5 s timeout (and NCCL's abort), never a hang; generous against slow machines.
    EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(60));
    try {
      model.forward(&next, 1);
      FAIL() << "expected an error";
    } catch (const gptfast::Error& e) {
      EXPECT_NE(std::string(e.what()).find("create a new one"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
