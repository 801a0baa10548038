#include "model.h"

#include <ATen/Parallel.h>

#include <cstdlib>
#include <algorithm>
#include <iomanip>
#include <thread>
#include <sstream>

namespace gptfast {

namespace {

at::ScalarType parse_dtype(const std::string& dtype) {
  if (dtype == "fp32" || dtype == "float32") return at::kFloat;
  if (dtype == "bf16" || dtype == "bfloat16") return at::kBFloat16;
  throw Error("unknown dtype '" + dtype + "' (expected fp32 or bf16)");
}

at::Device parse_device(const std::string& device) {
  at::Device d(at::kCPU);
  try {
    d = at::Device(device);
  } catch (const c10::Error&) {
    throw Error("unknown device '" + device + "' (expected cpu or cuda[:N])");
  }
  if (d.is_cuda() && !at::hasCUDA()) {
    throw Error("device '" + device + "' requested, but this libtorch build has no CUDA support");
  }
  if (!d.is_cpu() && !d.is_cuda()) throw Error("unsupported device '" + device + "'");
  return d;
}

int64_t cache_length(const ModelSpec& spec, const RuntimeSpec& runtime) {
  const int64_t len = runtime.max_seq_len == 0 ? spec.block_size : runtime.max_seq_len;
  if (len > spec.block_size) {
    throw Error("max_seq_len " + std::to_string(len) + " exceeds the model's block_size " +
                std::to_string(spec.block_size));
  }
  return len;
}

bool use_fused(const Transformer& model) {
  // GPTFAST_FUSED_DECODE=0 forces the generic ATen path (for comparisons and debugging).
  const char* fused = std::getenv("GPTFAST_FUSED_DECODE");
  return FusedDecodeStep::supports(model) && !(fused && std::string(fused) == "0");
}

}  // namespace

StateDict load_checkpoint(const std::string& path, const std::string& format, const ModelSpec& spec) {
  if (format == "pth") {
    StateDict w = load_pth(path);
    merge_qkv(w, spec.n_layer);
    return w;
  }
  if (format == "safetensors") return load_safetensors(path, spec);
  if (format == "llama2c") return load_llama2c(path, spec);
  if (format == "random") return random_weights(spec, path);
  throw Error("unknown checkpoint format '" + format + "' (expected pth, safetensors or llama2c)");
}

at::TensorOptions tensor_options(const std::string& dtype, const std::string& device) {
  return at::TensorOptions().dtype(parse_dtype(dtype)).device(parse_device(device));
}

int checked_slots(int slots) {
  if (slots < 1 || slots > 256) throw Error("batch size (slots) must be in [1, 256], got " + std::to_string(slots));
  return slots;
}

int checked_prefill_chunk(int prefill_chunk) {
  if (prefill_chunk < 0) {
    throw Error("prefill_chunk must be >= 0 (0 = the whole prompt at once), got " + std::to_string(prefill_chunk));
  }
  return prefill_chunk;
}

int checked_speculate_k(int k) {
  if (k < 1 || k > 64) throw Error("speculate_k must be in [1, 64], got " + std::to_string(k));
  return k;
}

void check_options(const std::string& dtype, const std::string& device, int threads, int max_seq_len, int slots,
                   int prefill_chunk, int speculate_k, const std::string& quantize) {
  tensor_options(dtype, device);
  parse_quantize(quantize);
  if (threads < 0) throw Error("threads must be >= 0 (0 = the measured default), got " + std::to_string(threads));
  // More intra-op threads than this only oversubscribes the cores.
  const int max_threads = 4 * int(std::max(1u, std::thread::hardware_concurrency()));
  if (threads > max_threads) {
    throw Error("threads must be at most " + std::to_string(max_threads) + " (4 x the " +
                std::to_string(max_threads / 4) + " available processors), got " + std::to_string(threads));
  }
  if (max_seq_len < 0) throw Error("max_seq_len must be >= 0 (0 = the model's block_size), got " + std::to_string(max_seq_len));
  checked_slots(slots);
  checked_prefill_chunk(prefill_chunk);
  checked_speculate_k(speculate_k);
}

Model::Model(const std::string& path, const std::string& format, const ModelSpec& spec, const RuntimeSpec& runtime,
             int slots)
    : runtime_(runtime),
      slots_(checked_slots(slots)),
      options_(tensor_options(runtime.dtype, runtime.device)),
      cache_length_(cache_length(spec, runtime)),
      transformer_(spec, load_checkpoint(path, format, spec), options_, parse_quantize(runtime.quantize), cache_length_,
                   slots) {
  if (use_fused(transformer_)) {
    fused_.emplace(transformer_, kFusedCapacity, runtime.threads > 0 ? runtime.threads : at::get_num_threads());
    const bool aten_prefill = options_.dtype() == at::kFloat && transformer_.quantization().empty();
    max_fused_segment_ = aten_prefill ? kMaxFusedSegmentFp32 : INT32_MAX;
    group_tokens_.resize(kFusedCapacity);
    group_slots_.resize(kFusedCapacity);
    group_logit_rows_.resize(kFusedCapacity);
    group_positions_.resize(kFusedCapacity);
    group_logit_out_.resize(kFusedCapacity);
  }
}

void Model::check_token(int32_t token) const {
  if (token < 0 || token >= vocab()) {
    throw Error("token id " + std::to_string(token) + " is outside the vocabulary [0, " + std::to_string(vocab()) +
                ")");
  }
}

void Model::forward(const Segment* segments, int n) {
  for (int i = 0; i < n; ++i) {  // the one place positions are checked against the cache
    const Segment& s = segments[i];
    if (s.slot < 0 || s.slot >= slots_) throw Error("slot " + std::to_string(s.slot) + " is outside [0, " + std::to_string(slots_) + ")");
    if (s.n < 1 || s.start < 0 || s.start + s.n > max_seq_len()) {
      throw Error("context is full (" + std::to_string(max_seq_len()) + " tokens)");
    }
    if (s.n_logits < 0 || s.n_logits > s.n) throw Error("n_logits must be in [0, n]");
  }
  // Short segments (decode tokens, verify passes, small chunks) share fused passes; long ones
  // (prompt chunks) go through ATen's GEMMs one by one. The two never touch the same slot.
  forward_fused(segments, n);
  for (int i = 0; i < n; ++i) {
    if (segments[i].n > max_fused_segment_) forward_aten(segments[i]);
  }
}

void Model::forward_fused(const Segment* segments, int n) {
  int64_t count = 0, outputs = 0;
  const int64_t vocab = this->vocab();
  auto flush = [&] {
    if (count == 0) return;
    const float* logits = fused_->run(group_tokens_.data(), group_slots_.data(), group_positions_.data(), count,
                                      group_logit_rows_.data(), outputs);
    for (int64_t r = 0; r < outputs; ++r) std::copy_n(logits + r * vocab, vocab, group_logit_out_[r]);
    count = outputs = 0;
  };
  for (int i = 0; i < n; ++i) {
    const Segment& s = segments[i];
    if (s.n > max_fused_segment_) continue;
    for (int32_t t = 0; t < s.n; ++t) {
      if (count == kFusedCapacity) flush();
      group_tokens_[count] = s.tokens[t];
      group_slots_[count] = s.slot;
      group_positions_[count] = s.start + t;
      const int32_t first_logit = s.n - s.n_logits;
      if (t >= first_logit) {
        group_logit_rows_[outputs] = int32_t(count);
        group_logit_out_[outputs] = s.logits + int64_t(t - first_logit) * vocab;
        ++outputs;
      }
      ++count;
    }
  }
  flush();
}

void Model::forward_aten(const Segment& s) {
  at::Tensor ids = at::from_blob(const_cast<int32_t*>(s.tokens), {1, s.n}, at::kInt)
                       .to(transformer_.options().dtype(at::kLong));
  at::Tensor logits = transformer_.forward(ids, s.start, s.n_logits, s.slot);
  if (s.n_logits == 0) return;
  logits = logits.cpu().contiguous();
  std::copy_n(logits.data_ptr<float>(), logits.numel(), s.logits);
}

std::string Model::describe() const {
  const ModelSpec& s = spec();
  std::ostringstream out;
  out << "dim=" << s.dim << " n_layer=" << s.n_layer << " n_head=" << s.n_head << " n_local_heads=" << s.n_local_heads
      << " head_dim=" << s.head_dim << " intermediate_size=" << s.intermediate_size << " vocab_size=" << s.vocab_size
      << " cache=" << max_seq_len() << " slots=" << slots_ << " dtype=" << runtime_.dtype
      << " device=" << runtime_.device << " threads=" << at::get_num_threads()
      << " weights=" << (transformer_.quantization().empty() ? runtime_.dtype : transformer_.quantization())
      << " linear_weight_mib=" << std::fixed << std::setprecision(2) << double(weight_bytes()) / (1 << 20)
      << " decode=" << (fused() ? "fused" : "aten");
  return out.str();
}

}  // namespace gptfast
