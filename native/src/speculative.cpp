#include "speculative.h"

#include <algorithm>
#include <string>

namespace gptfast {

SpeculativeState::SpeculativeState(TransformerSession& target, TransformerSession& draft, int k)
    : target_(target), draft_(draft), k_(k) {
  if (k < 1 || k > 64) throw Error("speculate_k must be in [1, 64], got " + std::to_string(k));
  if (target.vocab() != draft.vocab()) {
    throw Error("draft model vocabulary (" + std::to_string(draft.vocab()) + ") differs from the target's (" +
                std::to_string(target.vocab()) + "): they must share a tokenizer");
  }
  const int64_t vocab = target.vocab();
  p_.assign((k + 1) * vocab, 0.0f);
  q_.assign(k * vocab, 0.0f);
  residual_.assign(vocab, 0.0f);
  proposal_.assign(k + 1, 0);
}

int SpeculativeState::prefill(const int32_t* tokens, int n) {
  target_.check_prompt(tokens, n);
  if (target_.sampler().uses_history()) {
    throw Error("repetition/presence/frequency penalties are not supported with speculative decoding");
  }
  target_.rewind(0);
  draft_.rewind(0);
  at::Tensor logits = target_.forward(tokens, n, false);
  draft_.forward(tokens, n, false);
  target_.sampler().reset_history(tokens, n);
  return target_.sampler().sample(logits.data_ptr<float>());
}

int SpeculativeState::step(int32_t last, int32_t* out, int capacity) {
  if (capacity < k_ + 1) throw Error("speculative step needs room for k+1 tokens");
  target_.check_token(last);
  const int64_t start = target_.position(), max_seq = target_.max_seq_len();
  if (start == 0) throw Error("speculative step called before prefill");
  if (start >= max_seq) return 0;  // context full
  // The verify pass writes positions start .. start+k: shrink k near the end of the context.
  const int k = int(std::min<int64_t>(k_, max_seq - start - 1));
  Sampler& sampler = target_.sampler();
  const int vocab = target_.vocab();
  if (k == 0) {  // last position: a plain step
    out[0] = sampler.sample(target_.step(last));
    draft_.step(last);
    return 1;
  }
  // Draft proposes k tokens autoregressively from its own cache.
  proposal_[0] = last;
  for (int i = 0; i < k; ++i) {
    float* qi = q_.data() + int64_t(i) * vocab;
    sampler.distribution(draft_.step(proposal_[i]), qi);
    proposal_[i + 1] = sampler.draw(qi);
  }
  // Target scores [last, d_1 .. d_k] in one pass.
  at::Tensor logits = target_.forward(proposal_.data(), k + 1, true);
  for (int i = 0; i <= k; ++i) {
    sampler.distribution(logits.data_ptr<float>() + int64_t(i) * vocab, p_.data() + int64_t(i) * vocab);
  }
  int kept = 0;
  const int n = accept_or_resample(p_.data(), q_.data(), proposal_.data() + 1, k, vocab, sampler.random(),
                                   residual_.data(), out, &kept);
  // Keep `last` and the accepted draft tokens in both caches; the rest is overwritten later.
  target_.rewind(start + kept + 1);
  if (kept == k) {
    draft_.step(proposal_[k]);  // the draft never saw its own last proposal
  } else {
    draft_.rewind(start + kept + 1);
  }
  rounds += 1;
  proposed += k;
  accepted += kept;
  return n;
}

}  // namespace gptfast
