// Transformer::decode, the batched decode step that the CUDA engine captures in a graph (every
// input a device tensor, attention over the whole cache under a mask), must give the logits of
// the per-sequence forward() it replaces: several slots at different positions in one call, in
// any order, with grouped-query attention, dense and quantized weights. Runs on the CPU (the
// maths is device-neutral); the CUDA tests add graph replay on top.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuda/device_decode.h"
#include "errors.h"
#include "test_models.h"
#include "transformer.h"

namespace {

using gptfast::test::small_llama;

at::Tensor ids(const std::vector<int64_t>& v) { return at::tensor(v, at::kLong); }

double max_relative_difference(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max()).item<double>();
}

void expect_decode_matches_forward(const std::string& quantize, double tolerance) {
  const gptfast::ModelSpec spec = small_llama();
  const auto options = at::TensorOptions().dtype(at::kFloat);
  const gptfast::QuantSpec quant = gptfast::parse_quantize(quantize);
  gptfast::Transformer reference(spec, gptfast::random_weights(spec, "7"), options, quant, spec.block_size, 3);
  gptfast::Transformer batched(spec, gptfast::random_weights(spec, "7"), options, quant, spec.block_size, 3);
  // Prompts of different lengths in slots 0..2, the same in both models.
  const std::vector<std::vector<int64_t>> prompts = {{5, 17, 42}, {200, 3, 9, 11, 250, 1}, {99}};
  std::vector<int64_t> pos(3);
  for (int64_t s = 0; s < 3; ++s) {
    at::Tensor p = ids(prompts[s]).unsqueeze(0);
    reference.forward(p, 0, 0, s);
    batched.forward(p, 0, 0, s);
    pos[s] = int64_t(prompts[s].size());
  }
  // Decode steps over changing subsets of slots, in scrambled order.
  const std::vector<std::vector<int64_t>> steps = {{2, 0, 1}, {1}, {0, 2}, {2, 1, 0}, {1, 2}};
  int64_t token = 30;
  for (const auto& slots : steps) {
    std::vector<int64_t> tokens, positions;
    std::vector<at::Tensor> expected;
    for (int64_t s : slots) {
      tokens.push_back(token);
      positions.push_back(pos[s]);
      expected.push_back(reference.forward(ids({token}).unsqueeze(0), pos[s], 1, s).view({-1}));
      token = (token * 31 + 7) % spec.vocab_size;
      ++pos[s];
    }
    at::Tensor got = batched.decode(ids(tokens), ids(slots), ids(positions));
    ASSERT_EQ(got.sizes(), (std::vector<int64_t>{int64_t(slots.size()), spec.vocab_size}));
    for (size_t b = 0; b < slots.size(); ++b) {
      EXPECT_LE(max_relative_difference(got[b], expected[b]), tolerance) << "slot " << slots[b] << " row " << b;
    }
  }
}

TEST(TransformerDecode, BatchedDecodeEqualsPerSequenceForward) { expect_decode_matches_forward("", 1e-5); }

TEST(TransformerDecode, BatchedDecodeEqualsPerSequenceForwardInt8) { expect_decode_matches_forward("int8", 1e-5); }

TEST(TransformerDecode, BatchedDecodeEqualsPerSequenceForwardInt4) { expect_decode_matches_forward("int4:32", 1e-5); }

// DeviceDecode (the GPU's decode entry; eager on the CPU) pads a batch of 3 to its bucket of 4
// with a row into the scratch slot: the real rows' logits and caches are unaffected.
TEST(TransformerDecode, DeviceDecodePadsIntoScratchSlot) {
  const gptfast::ModelSpec spec = small_llama();
  const auto options = at::TensorOptions().dtype(at::kFloat);
  gptfast::Transformer reference(spec, gptfast::random_weights(spec, "7"), options, {}, spec.block_size, 3);
  gptfast::Transformer model(spec, gptfast::random_weights(spec, "7"), options, {}, spec.block_size, 5);
  gptfast::DeviceDecode decode(model, /*max_batch=*/4, /*scratch_slot=*/4);
  EXPECT_NE(decode.mode().find("eager"), std::string::npos) << decode.mode();
  std::vector<int64_t> pos = {0, 0, 0};
  for (int step = 0; step < 4; ++step) {
    const std::vector<int32_t> slots = {1, 2, 0}, tokens = {int32_t(10 + step), int32_t(50 + step), int32_t(90 + step)};
    std::vector<float> got(3 * spec.vocab_size);
    float* rows[3] = {&got[0], nullptr, &got[2 * spec.vocab_size]};  // row 1's logits are not wanted
    decode.run(tokens.data(), slots.data(), pos.data(), 3, rows);
    for (int b = 0; b < 3; ++b) {
      at::Tensor expected = reference.forward(ids({tokens[b]}).unsqueeze(0), pos[slots[b]], 1, slots[b]).view({-1});
      if (rows[b]) {
        at::Tensor row = at::from_blob(rows[b], {spec.vocab_size}, at::kFloat);
        EXPECT_LE(max_relative_difference(row, expected), 1e-5) << "step " << step << " row " << b;
      }
    }
    for (int64_t& p : pos) ++p;
  }
}

// Device sampling's host side: rows that sample for a sequence draw with their slot's state, every
// other row (logits only, padding) with a spare state of its own past the scratch slot.
TEST(TransformerDecode, DeviceSamplingSlotsKeepStrayRowsOffSequences) {
  const std::vector<int32_t> slots = {5, 1, 3};
  int32_t a = 0, c = 0;
  int32_t* sampled[3] = {&a, nullptr, &c};
  std::vector<int64_t> got;
  for (int64_t b = 0; b < 4; ++b) got.push_back(gptfast::DeviceDecode::sampling_slot(b, 3, slots.data(), sampled, 8));
  EXPECT_EQ(got, (std::vector<int64_t>{5, 9, 3, 11}));
  EXPECT_EQ(gptfast::DeviceDecode::sampling_slot(0, 3, slots.data(), nullptr, 8), 8);
}

// Without CUDA, sampling stays with the CPU Sampler: DeviceDecode says so, and a row asking for a
// device-sampled token is an error naming why, not a wrong token.
TEST(TransformerDecode, DeviceDecodeWithoutCudaSamplesOnTheCpu) {
  const gptfast::ModelSpec spec = small_llama();
  gptfast::Transformer model(spec, gptfast::random_weights(spec, "7"), at::TensorOptions().dtype(at::kFloat), {},
                             spec.block_size, 2);
  gptfast::DeviceDecode decode(model, /*max_batch=*/1, /*scratch_slot=*/1);
  EXPECT_FALSE(decode.device_sampling());
  EXPECT_EQ(decode.sampling_mode().rfind("cpu (", 0), 0u) << decode.sampling_mode();
  const int32_t token = 7, slot = 0;
  const int64_t position = 0;
  int32_t id = -1;
  int32_t* sampled[1] = {&id};
  float* logits[1] = {nullptr};
  try {
    decode.run(&token, &slot, &position, 1, logits, sampled);
    ADD_FAILURE() << "no error";
  } catch (const gptfast::Error& e) {
    EXPECT_NE(std::string(e.what()).find("sampling is on the CPU"), std::string::npos) << e.what();
  }
  const gptfast::SamplingSpec greedy;
  EXPECT_THROW(decode.start_sampling(0, greedy, &token, 1), gptfast::Error);
}

// The comparison can fail: a decode that reads the wrong slot's cache is caught.
TEST(TransformerDecode, WrongSlotIsDetected) {
  const gptfast::ModelSpec spec = small_llama();
  const auto options = at::TensorOptions().dtype(at::kFloat);
  gptfast::Transformer model(spec, gptfast::random_weights(spec, "7"), options, {}, spec.block_size, 2);
  model.forward(ids({5, 17, 42}).unsqueeze(0), 0, 0, 0);
  model.forward(ids({200, 3, 9}).unsqueeze(0), 0, 0, 1);
  at::Tensor slot0 = model.decode(ids({30}), ids({0}), ids({3}));
  at::Tensor slot1 = model.decode(ids({30}), ids({1}), ids({3}));
  EXPECT_GT(max_relative_difference(slot0, slot1), 1e-3);
}

}  // namespace
