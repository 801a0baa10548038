#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <mutex>

#include "load_progress.h"
#include "state_dict.h"

namespace gptfast {

StateDict random_weights(const ModelSpec& s, const std::string& seed_text, const at::TensorOptions& options) {
  uint64_t seed = 0;
  try {
    seed = std::stoull(seed_text.empty() ? "0" : seed_text);
  } catch (const std::exception&) {
    throw Error("random weights need a numeric seed, got '" + seed_text + "'");
  }
  // On the CPU: fp32 from a CPU generator, each tensor rounded to the model's dtype as soon as it
  // is drawn (the values the loader's conversion would give), so the drawn weights take the
  // model's size, not fp32's: the Llama-3.2-1B shape in bf16 peaked at 9.6 GB resident, now 6.4
  // (the loader frees each tensor as it copies it: a bf16 7B peaks at its own size plus one tensor).
  // On a GPU: drawn there, in the model's dtype, by a seeded copy of the device's generator (a
  // 7B model in milliseconds instead of a minute of single-threaded CPU sampling). The two differ.
  // On the meta device: the shapes only, nothing drawn (for the memory check before drawing).
  const bool plan_only = options.device().is_meta();
  const bool on_device = !options.device().is_cpu() && !plan_only;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  if (on_device) {
    at::Generator device_default = at::globalContext().defaultGenerator(options.device());
    std::lock_guard<std::mutex> lock(device_default.mutex());  // other threads may draw from it
    gen = device_default.clone();
    gen.set_current_seed(seed);
  }
  const at::TensorOptions drawn = on_device || plan_only ? options : at::TensorOptions().dtype(at::kFloat);
  if (!plan_only) {  // a 7B takes a minute to draw on one core: the load's progress counts it
    int64_t total = 0;
    for (const auto& [name, t] : random_weights(s, seed_text, options.device(at::kMeta))) total += int64_t(t.nbytes());
    load_progress_expect(total);
  }
  auto normal = [&](std::vector<int64_t> shape) {
    if (plan_only) return at::empty(shape, options);
    at::Tensor t = at::empty(shape, drawn).normal_(0.0, 0.02, gen).to(options.dtype());  // no copy when already fp32
    load_progress_read(int64_t(t.nbytes()));
    return t;
  };
  auto ones = [&](int64_t n) {
    at::Tensor t = at::ones({n}, options);  // exact in any dtype
    if (!plan_only) load_progress_read(int64_t(t.nbytes()));
    return t;
  };
  const int64_t dim = s.dim, hd = s.head_dim, ffn = s.intermediate_size;
  const int64_t qkv = (int64_t(s.n_head) + 2 * s.n_local_heads) * hd;
  StateDict w;
  // Embeddings and head first, then layers in order: a model with fewer layers and the same seed
  // is an exact truncated copy (a natural speculative draft for benchmarks).
  w["tok_embeddings.weight"] = normal({s.vocab_size, dim});
  w["output.weight"] = normal({s.vocab_size, dim});
  for (int i = 0; i < s.n_layer; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    w[p + "attention_norm.weight"] = ones(dim);
    w[p + "ffn_norm.weight"] = ones(dim);
    w[p + "attention.wqkv.weight"] = normal({qkv, dim});
    w[p + "attention.wo.weight"] = normal({dim, int64_t(s.n_head) * hd});
    w[p + "feed_forward.w1.weight"] = normal({ffn, dim});
    w[p + "feed_forward.w2.weight"] = normal({dim, ffn});
    w[p + "feed_forward.w3.weight"] = normal({ffn, dim});
  }
  w["norm.weight"] = ones(dim);
  return w;
}

}  // namespace gptfast
