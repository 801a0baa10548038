// Per-rank loading: checkpoints are mapped, and each tensor-parallel rank copies out of the
// mapping only its shards plus the replicated tensors (counted by copy_weights, so the counts are
// exact and deterministic), for safetensors (GPT-Fast names, and Hugging Face names whose q/k
// permutation and wq/wk/wv join are done per shard), model.pth, llama2.c and int8/int4 files
// (weights and scales sharded together); the logits equal the unsplit model's; a file truncated
// before or after it was mapped fails with an error naming it.
#include <gtest/gtest.h>
#include <unistd.h>
#include <nlohmann/json.hpp>
#include <torch/csrc/jit/serialization/pickle.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>
#include <string>
#include <vector>

#include "gptfast/engine_api.h"
#include "linear_weight.h"
#include "mapped_file.h"
#include "model.h"
#include "state_dict.h"
#include "test_models.h"
#include "transformer.h"

namespace {

namespace fs = std::filesystem;
using gptfast::StateDict;
using gptfast::ends_with;
using gptfast::test::relative_error;
using gptfast::test::small_llama_tp;

std::string shared_models() {
  const char* env = std::getenv("GPTFAST_SHARED");
  return std::string(env ? env : GPTFAST_SHARED_DIR) + "/models";
}

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("gptfast-per-rank-" + std::to_string(::getpid()) + "-" + name)).string();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  ASSERT_TRUE(bool(out)) << path;
}

// A safetensors file of fp32 tensors, in the given order.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  std::string data;
  for (const auto& [name, t] : tensors) {
    const at::Tensor c = t.to(at::kFloat).contiguous();
    header[name] = {{"dtype", "F32"}, {"shape", c.sizes().vec()}, {"data_offsets", {offset, offset + c.nbytes()}}};
    data.append(static_cast<const char*>(c.data_ptr()), c.nbytes());
    offset += c.nbytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // tensors 8-byte aligned, as HF's writer does
  const uint64_t n = text.size();
  write_bytes(path, std::string(reinterpret_cast<const char*>(&n), 8) + text + data);
}

void write_pth(const std::string& path, const StateDict& w) {
  c10::impl::GenericDict dict(c10::StringType::get(), c10::TensorType::get());
  for (const auto& [name, t] : w) dict.insert(name, t.contiguous());
  const std::vector<char> bytes = torch::jit::pickle_save(dict);
  write_bytes(path, std::string(bytes.begin(), bytes.end()));
}

// GPT-Fast's adjacent-pair q/k rows back to Hugging Face's half-split order (convert_hf_checkpoint's inverse).
at::Tensor to_hf_rows(const at::Tensor& w, int64_t heads, int64_t hd) {
  return w.view({heads, hd / 2, 2, w.size(1)}).transpose(1, 2).reshape({heads * hd, w.size(1)});
}

std::vector<std::pair<std::string, at::Tensor>> hugging_face_names(const StateDict& w, const gptfast::ModelSpec& s) {
  std::vector<std::pair<std::string, at::Tensor>> out = {{"model.embed_tokens.weight", w.at("tok_embeddings.weight")},
                                                         {"model.norm.weight", w.at("norm.weight")},
                                                         {"lm_head.weight", w.at("output.weight")}};
  const int64_t q = int64_t(s.n_head) * s.head_dim, kv = int64_t(s.n_local_heads) * s.head_dim;
  for (int i = 0; i < s.n_layer; ++i) {
    const std::string g = "layers." + std::to_string(i) + ".", h = "model.layers." + std::to_string(i) + ".";
    const at::Tensor wqkv = w.at(g + "attention.wqkv.weight");
    out.push_back({h + "self_attn.q_proj.weight", to_hf_rows(wqkv.narrow(0, 0, q), s.n_head, s.head_dim)});
    out.push_back({h + "self_attn.k_proj.weight", to_hf_rows(wqkv.narrow(0, q, kv), s.n_local_heads, s.head_dim)});
    out.push_back({h + "self_attn.v_proj.weight", wqkv.narrow(0, q + kv, kv)});
    out.push_back({h + "self_attn.o_proj.weight", w.at(g + "attention.wo.weight")});
    out.push_back({h + "mlp.gate_proj.weight", w.at(g + "feed_forward.w1.weight")});
    out.push_back({h + "mlp.down_proj.weight", w.at(g + "feed_forward.w2.weight")});
    out.push_back({h + "mlp.up_proj.weight", w.at(g + "feed_forward.w3.weight")});
    out.push_back({h + "input_layernorm.weight", w.at(g + "attention_norm.weight")});
    out.push_back({h + "post_attention_layernorm.weight", w.at(g + "ffn_norm.weight")});
  }
  return out;
}

// What a rank of tp must copy, as tp.py shards: wqkv, w1 and w3 keep 1/tp of their output rows,
// with those rows' int8 scales or int4 scales and zeros; wo and w2 keep 1/tp of their input
// columns, with those columns' int4 groups (scales and zeros), but every int8 scale (one per
// output row, which a column cut keeps whole), and of an int4 weight only the packed bytes of
// those columns, not GPT-Fast's zero padding. Everything else whole (the output head is
// replicated; a tied one is copied again from the embeddings' bytes). Markers are not weights,
// but every int4 layer reads the int4 layout marker (4 bytes) to check it.
int64_t expected_copy(const StateDict& w, const gptfast::ModelSpec& s, int tp) {
  int64_t bytes = 0, int4_layers = 0;
  for (const auto& [name, t] : w) int4_layers += ends_with(name, ".scales_and_zeros");
  for (const auto& [name, t] : w) {
    const int64_t all = int64_t(t.nbytes());
    if (name == gptfast::kInt4LayoutKey) bytes += all * int4_layers;
    if (name.rfind("gptfast4j.", 0) == 0) continue;
    const bool sharded = name.find(".attention.w") != std::string::npos || name.find(".feed_forward.w") != std::string::npos;
    const bool by_columns = name.find(".attention.wo.") != std::string::npos || name.find(".feed_forward.w2.") != std::string::npos;
    if (!sharded || tp == 1) {
      bytes += all;
      continue;
    }
    if (!by_columns) {
      bytes += all / tp;
      continue;
    }
    const std::string layer = name.substr(0, name.rfind('.'));
    const int64_t in = name.find(".wo.") != std::string::npos ? int64_t(s.n_head) * s.head_dim : s.intermediate_size;
    const auto int4 = w.find(layer + ".scales_and_zeros");
    if (ends_with(name, ".scales")) {
      bytes += all;
    } else if (int4 == w.end()) {
      bytes += all / tp;
    } else if (ends_with(name, ".scales_and_zeros")) {  // [K/G, out, 2]
      const int64_t group = 2 * w.at(layer + ".weight").size(1) / t.size(0);
      bytes += all / t.size(0) * (in / tp / group);
    } else {  // uint8 [out, K/2], two columns a byte
      bytes += t.size(0) * (in / tp / 2);
    }
  }
  return bytes;
}

std::vector<int32_t> prompt_of(int n) {
  std::vector<int32_t> p(n);
  for (int i = 0; i < n; ++i) p[i] = (i * 37 + 11) % 300;
  return p;
}

struct Loaded {
  std::vector<float> logits;
  std::vector<int64_t> copied;  // per rank
};

Loaded load(const std::string& path, const std::string& format, const gptfast::ModelSpec& spec, int tp, int prompt_len = 12) {
  gptfast::RuntimeSpec runtime{"fp32", "cpu", 1, 0, ""};
  runtime.tp = tp;
  gptfast::Model model(path, format, spec, runtime, 1);
  Loaded out;
  for (int r = 0; r < tp; ++r) out.copied.push_back(model.copied_from_checkpoint(r));
  const auto prompt = prompt_of(prompt_len);
  out.logits.resize(size_t(prompt_len) * model.vocab());
  const gptfast::Segment segment{0, prompt.data(), prompt_len, 0, prompt_len, out.logits.data()};
  model.forward(&segment, 1);
  return out;
}

class GlooBuilt : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!GPTFAST_GLOO) GTEST_SKIP() << "tensor parallelism is built only against libtorch 2.10";
  }
};
const auto* const gloo_built = ::testing::AddGlobalTestEnvironment(new GlooBuilt);

class TempFiles : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const auto& p : paths_) fs::remove(p);
  }
  std::string temp(const std::string& name) {
    paths_.push_back(temp_path(name));
    return paths_.back();
  }
  std::vector<std::string> paths_;
};

using PerRankLoad = TempFiles;

// Random weights written as safetensors (GPT-Fast names; Hugging Face names) and model.pth (fp32,
// and bf16): at tp 2 each rank copies exactly its half of every block's Linear layers plus the
// replicated tensors, at tp 1 everything once, and the logits equal those of the unsplit model.
TEST_F(PerRankLoad, EachRankCopiesOnlyItsShardsAndTheLogitsMatch) {
  const gptfast::ModelSpec spec = small_llama_tp();
  const StateDict w = gptfast::random_weights(spec, "7");
  const std::vector<float> reference = load("7", "random", spec, 1).logits;
  const std::string st = temp("gptfast.safetensors"), hf = temp("hf.safetensors"), pth = temp("model.pth");
  write_safetensors(st, std::vector<std::pair<std::string, at::Tensor>>(w.begin(), w.end()));
  write_safetensors(hf, hugging_face_names(w, spec));
  write_pth(pth, w);
  const int64_t all = expected_copy(w, spec, 1), half = expected_copy(w, spec, 2);
  ASSERT_LT(half, all * 7 / 10);  // not vacuous: the shards are a third of this small model
  for (const auto& [path, format] : std::vector<std::pair<std::string, std::string>>{
           {st, "safetensors"}, {hf, "safetensors"}, {pth, "pth"}}) {
    SCOPED_TRACE(path);
    const Loaded one = load(path, format, spec, 1);
    EXPECT_EQ(one.copied, std::vector<int64_t>({all}));
    EXPECT_LT(relative_error(reference, one.logits), 1e-6);
    const Loaded two = load(path, format, spec, 2);
    EXPECT_EQ(two.copied, std::vector<int64_t>({half, half}));
    EXPECT_LT(relative_error(reference, two.logits), 1e-4);
  }
  // A bf16 model.pth (GPT-Fast's usual checkpoint dtype): the ranks copy halves of its bf16 bytes.
  StateDict bf16;
  for (const auto& [name, t] : w) bf16[name] = t.to(at::kBFloat16);
  const std::string bf16_pth = temp("bf16.pth");
  write_pth(bf16_pth, bf16);
  const Loaded one = load(bf16_pth, "pth", spec, 1), two = load(bf16_pth, "pth", spec, 2);
  EXPECT_EQ(one.copied, std::vector<int64_t>({expected_copy(bf16, spec, 1)}));
  EXPECT_EQ(two.copied, std::vector<int64_t>({expected_copy(bf16, spec, 2), expected_copy(bf16, spec, 2)}));
  EXPECT_EQ(expected_copy(bf16, spec, 1) * 2, all);
  EXPECT_LT(relative_error(one.logits, two.logits), 1e-4);
}

// The shared stories260K checkpoints, as the TP greedy references load them: model.pth and the
// llama2.c export (whose tied classifier is copied from the embeddings' bytes a second time).
TEST_F(PerRankLoad, SharedStoriesCheckpointsAreCopiedPerShard) {
  const std::string dir = shared_models() + "/stories260K";
  if (!fs::exists(dir + "/model.pth")) GTEST_SKIP() << "no shared models at " << dir;
  for (const std::string file : {"model.pth", "stories260K.bin"}) {
    SCOPED_TRACE(file);
    const std::string path = dir + "/" + file, format = gptfast::checkpoint_format(path);
    const gptfast::ModelSpec spec = gptfast::llama2c_model(dir + "/stories260K.bin");
    const StateDict views = gptfast::load_checkpoint(path, format, spec);
    for (const auto& [name, t] : views) EXPECT_TRUE(gptfast::views_mapping(t)) << name;  // nothing read yet
    const Loaded one = load(path, format, spec, 1), two = load(path, format, spec, 2);
    EXPECT_EQ(one.copied, std::vector<int64_t>({expected_copy(views, spec, 1)}));
    EXPECT_EQ(two.copied, std::vector<int64_t>({expected_copy(views, spec, 2), expected_copy(views, spec, 2)}));
    EXPECT_LT(relative_error(one.logits, two.logits), 1e-4);
  }
}

// GPT-Fast int8 and int4 files (its own model_int8.pth of stories260K; int8 and int4 files the
// quantizer writes from random weights): at tp 2 each rank copies exactly its shard of every
// Linear's weights and of their int8 scales / int4 scales and zeros (expected_copy says which),
// plus the replicated tensors, and the logits equal the unsplit quantized model's.
TEST_F(PerRankLoad, QuantizedFilesAreCopiedPerShard) {
  std::vector<std::pair<std::string, gptfast::ModelSpec>> files;
  for (const std::string q : {"int8", "int4:32"}) {  // int4: wo's 32 columns per rank hold whole groups
    files.push_back({temp("model_" + q + ".pth"), small_llama_tp()});
    gptfast::Quantizer quantizer("7", "random", files.back().second, q);
    while (quantizer.done() < quantizer.layers()) quantizer.next();
    quantizer.save(files.back().first);
  }
  const std::string dir = shared_models() + "/stories260K";
  if (fs::exists(dir + "/model_int8.pth")) {
    files.push_back({dir + "/model_int8.pth", gptfast::llama2c_model(dir + "/stories260K.bin")});
  }
  for (const auto& [path, spec] : files) {
    SCOPED_TRACE(path);
    const StateDict views = gptfast::load_checkpoint(path, "pth", spec);
    int quantized = 0;
    for (const auto& [name, t] : views) quantized += ends_with(name, ".scales") || ends_with(name, ".scales_and_zeros");
    ASSERT_EQ(quantized, 5 * spec.n_layer + 1);  // every Linear, the output head too
    const int64_t all = expected_copy(views, spec, 1), half = expected_copy(views, spec, 2);
    ASSERT_LT(half, all);
    const Loaded one = load(path, "pth", spec, 1), two = load(path, "pth", spec, 2);
    EXPECT_EQ(one.copied, std::vector<int64_t>({all}));
    EXPECT_EQ(two.copied, std::vector<int64_t>({half, half}));
    EXPECT_LT(relative_error(one.logits, two.logits), 1e-4);
  }
}

// After loading, no tensor of the model views the mapping: the file can go, its pages too.
TEST_F(PerRankLoad, ALoadedModelHoldsNoMapping) {
  const gptfast::ModelSpec spec = small_llama_tp();
  const std::string pth = temp("model.pth");
  write_pth(pth, gptfast::random_weights(spec, "3"));
  StateDict views = gptfast::load_checkpoint(pth, "pth", spec);
  gptfast::Transformer model(spec, views, at::TensorOptions().dtype(at::kFloat), {}, 16, 1);
  views.clear();
  EXPECT_FALSE(gptfast::views_mapping(model.tok_embeddings()));
  EXPECT_FALSE(gptfast::views_mapping(model.norm()));
  EXPECT_FALSE(gptfast::views_mapping(model.output().weight));
  for (int i = 0; i < spec.n_layer; ++i) {
    const gptfast::LayerWeights& l = model.layer(i);
    for (const auto* t : {&l.attention_norm, &l.ffn_norm, &l.wqkv.weight, &l.wo.weight, &l.w1.weight, &l.w2.weight,
                          &l.w3.weight}) {
      EXPECT_FALSE(gptfast::views_mapping(*t)) << "layer " << i;
    }
  }
  fs::remove(pth);  // and the model still runs
  const at::Tensor logits = model.forward(at::arange(4, at::kLong).unsqueeze(0), 0, 1, 0);
  EXPECT_TRUE(at::isfinite(logits).all().item<bool>());
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const gptfast::Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A file cut short before loading fails the load naming it; one cut after it was mapped fails
// when a rank copies from it (touching pages past the end would raise SIGBUS instead).
TEST_F(PerRankLoad, TruncatedFilesFailWithAnErrorNotASignal) {
  const gptfast::ModelSpec spec = small_llama_tp();
  const StateDict w = gptfast::random_weights(spec, "5");
  const std::string st = temp("cut.safetensors"), pth = temp("cut.pth"), bin = temp("cut.bin");
  write_safetensors(st, std::vector<std::pair<std::string, at::Tensor>>(w.begin(), w.end()));
  write_pth(pth, w);
  for (const auto& [path, format] : std::vector<std::pair<std::string, std::string>>{{st, "safetensors"}, {pth, "pth"}}) {
    SCOPED_TRACE(format);
    const auto size = fs::file_size(path);
    // Mapped, then cut: the views exist, the copy refuses.
    StateDict views = gptfast::load_checkpoint(path, format, spec);
    fs::resize_file(path, size / 2);
    std::string e = error_of([&] { gptfast::Transformer(spec, views, at::TensorOptions().dtype(at::kFloat), {}, 16, 1); });
    EXPECT_NE(e.find("changed while loading"), std::string::npos) << e;
    EXPECT_NE(e.find(path), std::string::npos) << e;
    views.clear();
    // Cut before: the loader refuses.
    e = error_of([&] { gptfast::load_checkpoint(path, format, spec); });
    EXPECT_NE(e.find(path), std::string::npos) << e;
    EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  }
  // llama2.c: cut inside the weights.
  const std::string stories = shared_models() + "/stories260K/stories260K.bin";
  if (fs::exists(stories)) {
    fs::copy_file(stories, bin, fs::copy_options::overwrite_existing);
    const gptfast::ModelSpec s = gptfast::llama2c_model(bin);
    StateDict views = gptfast::load_checkpoint(bin, "llama2c", s);
    fs::resize_file(bin, fs::file_size(bin) / 2);
    std::string e = error_of([&] { gptfast::Transformer(s, views, at::TensorOptions().dtype(at::kFloat), {}, 16, 1); });
    EXPECT_NE(e.find("changed while loading"), std::string::npos) << e;
    views.clear();
    e = error_of([&] { gptfast::load_checkpoint(bin, "llama2c", s); });
    EXPECT_NE(e.find("is truncated"), std::string::npos) << e;
  }
}

}  // namespace
