// Loading on the host: each weight is dropped from the checkpoint's dict as it is taken (so
// random weights are freed one by one instead of doubling the peak), the memory plan equals what
// a built model holds, and a model that cannot fit fails before anything is drawn, naming sizes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "gptfast/engine_api.h"
#include "host_memory.h"
#include "linear_weight.h"
#include "model.h"
#include "state_dict.h"
#include "test_models.h"
#include "transformer.h"

namespace {

using gptfast::StateDict;
using gptfast::test::small_llama;

int64_t bytes_of(const gptfast::LinearWeight& w) {
  return int64_t(w.weight.nbytes()) + (w.scales.defined() ? int64_t(w.scales.nbytes()) : 0);
}

// Every byte a built Transformer keeps for its weights, from its tensors.
int64_t held_by(const gptfast::Transformer& m) {
  int64_t bytes = int64_t(m.tok_embeddings().nbytes() + m.norm().nbytes()) + bytes_of(m.output());
  for (int i = 0; i < m.spec().n_layer; ++i) {
    const gptfast::LayerWeights& l = m.layer(i);
    bytes += int64_t(l.attention_norm.nbytes() + l.ffn_norm.nbytes());
    for (const auto* w : {&l.wqkv, &l.wo, &l.w1, &l.w2, &l.w3}) bytes += bytes_of(*w);
  }
  return bytes;
}

TEST(HostMemory, TakingAWeightDropsItFromTheDict) {
  const gptfast::ModelSpec spec = small_llama();
  StateDict w = gptfast::random_weights(spec, "3");
  const at::TensorOptions fp32 = at::TensorOptions().dtype(at::kFloat);
  // Held here too, so the storage outlives the dict: its use count says whether the dict let go.
  const at::Tensor w1 = w.at("layers.0.feed_forward.w1.weight"), norm = w.at("norm.weight");
  gptfast::take_linear(w, "layers.0.feed_forward.w1", spec.intermediate_size, spec.dim, fp32,
                       gptfast::parse_quantize("int4:32"));
  gptfast::take_tensor(w, "norm.weight", {spec.dim}, fp32);
  EXPECT_EQ(w.count("layers.0.feed_forward.w1.weight"), 0u);
  EXPECT_EQ(w1.storage().use_count(), 1);
  EXPECT_EQ(w.count("norm.weight"), 0u);
  EXPECT_EQ(w.count("layers.0.feed_forward.w3.weight"), 1u);  // only what was taken

  // A file's int8 layer (weight and scales), and a wqkv kept as wq/wk/wv.
  const gptfast::LinearWeight q = gptfast::quantize(w.at("layers.0.attention.wo.weight"), gptfast::parse_quantize("int8"));
  gptfast::put_linear(w, "layers.0.attention.wo", q);
  const at::Tensor wqkv = w.at("layers.1.attention.wqkv.weight");
  const int64_t q_rows = int64_t(spec.n_head) * spec.head_dim, kv_rows = int64_t(spec.n_local_heads) * spec.head_dim;
  w.erase("layers.1.attention.wqkv.weight");
  w["layers.1.attention.wq.weight"] = wqkv.narrow(0, 0, q_rows).clone();
  w["layers.1.attention.wk.weight"] = wqkv.narrow(0, q_rows, kv_rows).clone();
  w["layers.1.attention.wv.weight"] = wqkv.narrow(0, q_rows + kv_rows, kv_rows).clone();
  gptfast::take_linear(w, "layers.0.attention.wo", spec.dim, q_rows, fp32, {});
  const gptfast::LinearWeight merged =
      gptfast::take_linear(w, "layers.1.attention.wqkv", q_rows + 2 * kv_rows, spec.dim, fp32, {});
  for (const char* name : {"layers.0.attention.wo.weight", "layers.0.attention.wo.scales", "layers.1.attention.wq.weight",
                           "layers.1.attention.wk.weight", "layers.1.attention.wv.weight"}) {
    EXPECT_EQ(w.count(name), 0u) << name;
  }
  EXPECT_TRUE(at::equal(merged.weight, wqkv));
}

// The plan made from names, shapes and dtypes alone equals the bytes the built model holds, for
// dense weights in both dtypes, quantization at load, and a quantized file; so does the KV
// cache's planned size.
TEST(HostMemory, ThePlanIsWhatTheModelHolds) {
  const gptfast::ModelSpec spec = small_llama();
  struct Case {
    at::ScalarType dtype;
    std::string quantize;
    bool from_file;
  };
  for (const Case& c : {Case{at::kFloat, "", false}, Case{at::kBFloat16, "", false}, Case{at::kFloat, "int8", false},
                        Case{at::kBFloat16, "int4:32", false}, Case{at::kFloat, "int4:128", false},
                        Case{at::kFloat, "int8", true}, Case{at::kBFloat16, "int4:64", true}}) {
    SCOPED_TRACE(std::string(c10::toString(c.dtype)) + " " + c.quantize + (c.from_file ? " file" : ""));
    StateDict w = gptfast::random_weights(spec, "5");
    gptfast::QuantSpec at_load = gptfast::parse_quantize(c.quantize);
    if (c.from_file) {  // every Linear layer stored quantized, as ./gptfast quantize writes them
      StateDict file;
      for (const auto& [name, t] : w) {
        const bool linear = t.dim() == 2 && name != "tok_embeddings.weight";
        if (linear) gptfast::put_linear(file, name.substr(0, name.size() - 7), gptfast::quantize(t, at_load));
        else file[name] = t;
      }
      w = file;
      at_load = {};
    }
    const gptfast::HostWeights plan = gptfast::plan_host_weights(w, at_load, c.dtype);
    const gptfast::Transformer model(spec, w, at::TensorOptions().dtype(c.dtype), at_load, 16, 1);
    EXPECT_EQ(plan.resident, held_by(model));
    EXPECT_EQ(gptfast::KVCache::planned_bytes(spec.n_layer, 1, spec.n_local_heads, 16, spec.head_dim, c.dtype),
              model.cache().bytes());
    const int64_t element = int64_t(c10::elementSize(c.dtype));
    EXPECT_EQ(plan.replicated, int64_t(model.tok_embeddings().numel() + model.norm().numel() +
                                       2 * spec.n_layer * spec.dim) * element + bytes_of(model.output()));
  }
}

// A cgroup's room: limit less usage, the usage without its inactive page cache (which the kernel
// reclaims before it OOM-kills; counted, a machine that had just read a checkpoint would refuse
// to load it), and no limit where the limit is v2's "max" or v1's ~2^63.
TEST(HostMemory, CgroupRoomLeavesOutReclaimablePageCache) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("gptfast-cgroup-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto write = [&](const char* name, const std::string& text) {
    std::ofstream(dir / name) << text;
    return (dir / name).string();
  };
  const std::string max = write("memory.max", "1000000\n"), current = write("memory.current", "900000\n");
  const std::string stat = write("memory.stat", "anon 500000\nactive_file 100000\ninactive_anon 7\ninactive_file 300000\n");
  EXPECT_EQ(gptfast::cgroup_room(max.c_str(), current.c_str(), stat.c_str(), "inactive_file"), 400000);
  const std::string v1_stat = write("v1.stat", "inactive_file 5\ntotal_inactive_file 250000\n");
  EXPECT_EQ(gptfast::cgroup_room(max.c_str(), current.c_str(), v1_stat.c_str(), "total_inactive_file"), 350000);
  const std::string unlimited = write("unlimited", "max\n"), v1_unlimited = write("v1_unlimited", "9223372036854771712\n");
  EXPECT_EQ(gptfast::cgroup_room(unlimited.c_str(), current.c_str(), stat.c_str(), "inactive_file"), -1);
  EXPECT_EQ(gptfast::cgroup_room(v1_unlimited.c_str(), current.c_str(), stat.c_str(), "inactive_file"), -1);
  const std::string over = write("over", "2000000\n");  // usage above the limit: no room, not negative
  EXPECT_EQ(gptfast::cgroup_room(max.c_str(), over.c_str(), (dir / "missing").c_str(), "inactive_file"), 0);
  std::filesystem::remove_all(dir);
}

// Tens of terabytes of weights: 6.9e12, 25,600 GiB in fp32.
gptfast::ModelSpec huge_llama() {
  gptfast::ModelSpec spec = small_llama();
  spec.dim = 32768;
  spec.n_layer = 400;
  spec.n_head = 256;
  spec.n_local_heads = 256;
  spec.head_dim = 128;
  spec.intermediate_size = 131072;
  spec.vocab_size = 32000;
  return spec;
}

// Tens of terabytes of random weights: refused before any is drawn, with the sizes named (without
// the check, drawing them fails inside the allocator or the kernel kills the process).
TEST(HostMemory, AModelThatCannotFitIsRefusedBeforeLoading) {
  std::string error = "(no error)";
  try {
    gptfast::Model model("1", "random", huge_llama(), gptfast::RuntimeSpec{"fp32", "cpu", 1, 0, ""}, 1);
  } catch (const gptfast::Error& e) {
    error = e.what();
  }
  EXPECT_NE(error.find("not enough memory"), std::string::npos) << error;
  EXPECT_NE(error.find("the weights (25"), std::string::npos) << error;  // 6.9e12 fp32 weights: 25,600 GiB
  EXPECT_NE(error.find("drawn at random"), std::string::npos) << error;
  EXPECT_NE(error.find("GiB is available"), std::string::npos) << error;
}

// The same for quantizing (./gptfast quantize): a model whose quantized weights cannot fit is
// refused before anything is drawn or copied, naming the sizes.
TEST(HostMemory, AQuantizationThatCannotFitIsRefusedBeforeDrawing) {
  std::string error = "(no error)";
  try {
    gptfast::Quantizer quantizer("1", "random", huge_llama(), "int8");
  } catch (const gptfast::Error& e) {
    error = e.what();
  }
  EXPECT_NE(error.find("not enough memory"), std::string::npos) << error;
  EXPECT_NE(error.find("the quantized weights ("), std::string::npos) << error;
  EXPECT_NE(error.find("drawn at random first as 25"), std::string::npos) << error;  // 25,600 GiB of fp32
}

// A checkpoint file that keeps wq/wk/wv apart (llama2.c, Hugging Face) is checked before its
// layers are joined: joining every layer's wqkv first (the quantizer once did) copied a fifth of
// the model out of the file before the check, and a big one was OOM-killed instead of refused.
// The file is sparse: a llama2.c header and zeros, terabytes long, costing no disk.
TEST(HostMemory, AQuantizationOfAFileThatCannotFitIsRefusedBeforeCopying) {
  gptfast::ModelSpec spec = huge_llama();
  spec.n_layer = 15;  // 2.6e11 weights: 1.0 TB of fp32; int8 (embeddings fp32 as in the file) 245 GiB
  const int64_t dim = spec.dim, ffn = spec.intermediate_size, vocab = spec.vocab_size, seq = 2048;
  const int64_t floats = 2 * vocab * dim + spec.n_layer * (2 * dim + 4 * dim * dim + 3 * dim * ffn) + dim +
                         seq * spec.head_dim;  // embeddings, classifier, layers, final norm, RoPE tables
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("gptfast-sparse-" + std::to_string(::getpid()) + ".bin")).string();
  {
    const int32_t header[7] = {int32_t(dim), int32_t(ffn), spec.n_layer, spec.n_head, spec.n_local_heads,
                               -int32_t(vocab), int32_t(seq)};  // negative vocab: its own classifier
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(header), sizeof header);
  }
  std::error_code sized;
  std::filesystem::resize_file(path, sizeof(int32_t) * 7 + sizeof(float) * floats, sized);
  if (sized) {
    std::filesystem::remove(path);
    GTEST_SKIP() << "this filesystem cannot hold a sparse file of " << floats * 4 << " bytes: " << sized.message();
  }
  std::string error = "(no error)";
  try {
    // the spec as the CLI reads it, from the file's header
    gptfast::Quantizer quantizer(path, "llama2c", gptfast::llama2c_model(path), "int8");
  } catch (const gptfast::Error& e) {
    error = e.what();
  }
  std::filesystem::remove(path);
  EXPECT_NE(error.find("not enough memory"), std::string::npos) << error;
  EXPECT_NE(error.find("the quantized weights (244.9 GiB"), std::string::npos) << error;
}

}  // namespace
