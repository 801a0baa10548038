// One loaded model on one device: the transformer with its KV cache of N slots and, on CPU, the
// fused step, behind a single forward entry point. Like GPT-Fast's model(x, input_pos): a
// prefill chunk, one decode token and a speculative verify pass are all the same call, and
// batch is a dimension: any set of slots, any number of tokens each.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

#include "decode_step.h"
#include "transformer.h"

namespace gptfast {

struct RuntimeSpec {
  std::string dtype, device;
  int threads = 0, max_seq_len = 0;
  std::string quantize;  // --quantize: "" or parse_quantize()'s values
};

// n tokens of the sequence in cache slot `slot`, at positions start..start+n-1 (the slot holds
// its keys/values before start). The fp32 logits of the last n_logits positions (0..n) are
// written to logits[n_logits * vocab].
struct Segment {
  int32_t slot = 0;
  const int32_t* tokens = nullptr;
  int32_t n = 0;
  int64_t start = 0;
  int32_t n_logits = 0;
  float* logits = nullptr;
};

// Checks of single options, shared by check_options() and the constructors.
at::TensorOptions tensor_options(const std::string& dtype, const std::string& device);
int checked_slots(int slots);
int checked_prefill_chunk(int prefill_chunk);
int checked_speculate_k(int k);

class Model {
 public:
  // Most tokens one fused call takes; longer runs of fused segments are split into such groups.
  static constexpr int64_t kFusedCapacity = 64;
  // fp32 segments longer than this (long prompt chunks) go through ATen's GEMMs instead of the
  // fused step; bf16 and quantized ones never do (ATen would dequantize whole matrices). Measured with the batched kernel (2 vCPU EPYC, 1 thread):
  // 32-token prompts prefill 3x faster fused on stories260K (26.7k vs 8.8k tok/s) and 1.3x on a
  // 134M model (311 vs 239), but a 200-token one 2x slower fused there (222 vs 437); ATen's bf16
  // GEMM is slow on CPUs without bf16 instructions (200 tokens: 42 tok/s vs 143 fused).
  static constexpr int64_t kMaxFusedSegmentFp32 = 64;

  Model(const std::string& path, const std::string& format, const ModelSpec& spec, const RuntimeSpec& runtime,
        int slots);

  // Runs every segment; slots must be distinct within one call. Allocation-free on the fused path.
  void forward(const Segment* segments, int n);

  void check_token(int32_t token) const;
  int64_t max_seq_len() const { return transformer_.max_seq_len(); }
  int vocab() const { return transformer_.spec().vocab_size; }
  int slots() const { return slots_; }
  const ModelSpec& spec() const { return transformer_.spec(); }
  const RuntimeSpec& runtime() const { return runtime_; }
  bool fused() const { return fused_.has_value(); }
  int64_t weight_bytes() const { return transformer_.weight_bytes(); }
  std::string describe() const;

 private:
  void forward_fused(const Segment* segments, int n);
  void forward_aten(const Segment& segment);

  RuntimeSpec runtime_;
  // Checked before the checkpoint is read (members initialise in this order), so a bad
  // option fails at once rather than after loading the weights.
  int slots_;
  at::TensorOptions options_;
  int64_t cache_length_;
  Transformer transformer_;
  std::optional<FusedDecodeStep> fused_;
  int64_t max_fused_segment_ = 0;  // 0 without the fused step
  // One fused group, sized kFusedCapacity once: token, slot, position, and which rows need logits.
  std::vector<int32_t> group_tokens_, group_slots_, group_logit_rows_;
  std::vector<int64_t> group_positions_;
  std::vector<float*> group_logit_out_;
};

}  // namespace gptfast
