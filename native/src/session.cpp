#include "session.h"

#include <algorithm>
#include <sstream>
#include <string>

#include "speculative_sampling.h"

namespace gptfast {

namespace {

std::string str(int64_t v) { return std::to_string(v); }

}  // namespace

SessionState::SessionState(const std::string& path, const std::string& format, const ModelSpec& spec,
                           const RuntimeSpec& runtime, int slots, int prefill_chunk)
    : prefill_chunk_(checked_prefill_chunk(prefill_chunk)),
      target_(path, format, spec, runtime, slots),
      slots_(target_.slots()) {
  for (Slot& s : slots_) {
    s.tokens.assign(max_seq_len() + 1, 0);
    s.logits.assign(vocab(), 0.0f);
    s.sampler.configure(SamplingSpec{}, vocab());
  }
  segments_.resize(slots_.size());
  seen_.assign(slots_.size(), 0);
}

void SessionState::load_draft(const std::string& path, const std::string& format, const ModelSpec& spec, int max_k,
                              const std::string& quantize) {
  if (draft_) throw Error("a draft model is already loaded");
  checked_speculate_k(max_k);
  parse_quantize(quantize);
  for (const Slot& s : slots_) {
    if (s.active) throw Error("load the draft model before starting sequences");
  }
  if (spec.vocab_size != vocab()) {
    throw Error("draft model vocabulary (" + str(spec.vocab_size) + ") differs from the target's (" + str(vocab()) +
                "): they must share a tokenizer");
  }
  RuntimeSpec runtime = target_.runtime();
  runtime.max_seq_len = int(max_seq_len());  // the draft caches the same positions
  runtime.quantize = quantize;
  runtime.draft = true;
  draft_.emplace(path, format, spec, runtime, slots());
  max_k_ = max_k;
  for (Slot& s : slots_) {
    s.tokens.assign(max_seq_len() + max_k + 1, 0);  // room for the proposals after the last token
    s.cached = s.draft_cached = 0;
    s.logits.assign(int64_t(max_k + 1) * vocab(), 0.0f);
    s.draft_logits.assign(vocab(), 0.0f);
    s.q.assign(int64_t(max_k) * vocab(), 0.0f);
  }
  p_.assign(int64_t(max_k + 1) * vocab(), 0.0f);
  residual_.assign(vocab(), 0.0f);
}

SessionState::Slot& SessionState::slot_at(int slot) {
  if (slot < 0 || slot >= slots()) throw Error("slot " + str(slot) + " is outside [0, " + str(slots()) + ")");
  return slots_[slot];
}

const SessionState::Slot& SessionState::slot_at(int slot) const {
  return const_cast<SessionState*>(this)->slot_at(slot);
}

std::pair<int64_t, int64_t> SessionState::reusable(const Slot& s, const int32_t* prompt, int n) const {
  if (s.active || n < 2) return {0, 0};
  const int64_t most = std::max(s.cached, s.draft_cached);
  int64_t common = 0;
  while (common < most && common < n && s.tokens[common] == prompt[common]) ++common;
  const int64_t limit = std::min<int64_t>(common, n - 2);
  return {std::min(limit, s.cached), std::min(limit, s.draft_cached)};
}

int64_t SessionState::cached_prefix(int slot, const int32_t* prompt, int n) const {
  const Slot& s = slot_at(slot);
  if (n < 0) throw Error("cached_prefix: n must be >= 0, got " + str(n));
  return reusable(s, prompt, n).first;
}

void SessionState::start(int slot, const SamplingSpec& sampling, int speculate_k, const int32_t* prompt, int n,
                         bool reuse) {
  Slot& s = slot_at(slot);
  if (s.active) throw Error("slot " + str(slot) + " is busy");
  check_prompt(prompt, n);
  if (speculate_k != 0 && max_k_ == 0) {
    throw Error("speculate_k " + str(speculate_k) + " needs a draft model, and none is loaded");
  }
  if (speculate_k < 0 || speculate_k > max_k_) {
    throw Error("speculate_k must be in [0, " + str(max_k_) + "] (the draft was loaded for at most " + str(max_k_) +
                "), got " + str(speculate_k));
  }
  s.sampler.configure(sampling, vocab());
  if (speculate_k > 0 && s.sampler.uses_history()) {
    throw Error("repetition/presence/frequency penalties are not supported with speculative decoding");
  }
  const auto [kept, draft_kept] = reuse ? reusable(s, prompt, n) : std::pair<int64_t, int64_t>{0, 0};
  std::copy_n(prompt, n, s.tokens.begin());
  s.len = n;
  s.pos = kept;
  s.draft_pos = draft_kept;
  s.cached = s.draft_cached = 0;
  s.k = speculate_k;
  s.rounds = s.proposed = s.accepted = 0;
  s.sampler.reset_history(prompt, n);
  s.device_sampled = target_.device_sampling();
  if (s.device_sampled) target_.start_sampling(slot, sampling, prompt, n);
  s.active = true;
}

void SessionState::check_prompt(const int32_t* tokens, int n) const {
  if (n <= 0) throw Error("prompt is empty: at least one token (BOS) is needed");
  if (n > max_seq_len()) {
    throw Error("prompt has " + str(n) + " tokens, more than the context length " + str(max_seq_len()));
  }
  for (int i = 0; i < n; ++i) target_.check_token(tokens[i]);
}

void SessionState::suppress(int slot, const int32_t* ids, int n) {
  Slot& s = slot_at(slot);
  s.sampler.set_suppressed(ids, n);
  if (s.device_sampled) target_.suppress_sampling(slot, ids, n);
}

void SessionState::append(Slot& s, int32_t token) {
  s.tokens[s.len++] = token;
  s.sampler.record_generated(token);
}

void SessionState::step(const int32_t* slots, int n, int32_t* out, int stride, int32_t* counts) {
  if (n < 1 || n > this->slots()) throw Error("a step takes 1.." + str(this->slots()) + " slots, got " + str(n));
  if (stride < max_tokens_per_step()) {
    throw Error("step output stride must be >= " + str(max_tokens_per_step()) + ", got " + str(stride));
  }
  std::fill(seen_.begin(), seen_.end(), 0);
  for (int i = 0; i < n; ++i) {
    Slot& s = slot_at(slots[i]);
    if (!s.active) throw Error("slot " + str(slots[i]) + " has no sequence (start it first)");
    if (seen_[slots[i]]++) throw Error("slot " + str(slots[i]) + " appears twice in one step");
    if (s.len > max_seq_len()) throw Error("slot " + str(slots[i]) + ": context is full (" + str(max_seq_len()) + " tokens)");
  }
  try {
    step_slots(slots, n, out, stride, counts);
  } catch (...) {
    // A pass that failed may have written part of its positions, and the draft's position moves
    // before its pass runs: these slots' caches count as empty (a later step would run their
    // tokens again, and released they offer nothing to reuse).
    for (int i = 0; i < n; ++i) slots_[slots[i]].pos = slots_[slots[i]].draft_pos = 0;
    throw;
  }
}

void SessionState::step_slots(const int32_t* slots, int n, int32_t* out, int stride, int32_t* counts) {
  // Plan: what each slot feeds. A speculative round needs both caches within one chunk of the
  // last token; near the end of the context k shrinks (0: a plain step).
  for (int i = 0; i < n; ++i) {
    Slot& s = slots_[slots[i]];
    const int64_t remaining = s.len - s.pos;
    const int64_t chunk = prefill_chunk_ == 0 ? s.len : prefill_chunk_;
    s.k_step = 0;
    if (s.k > 0 && remaining <= chunk && s.len - s.draft_pos <= chunk) {
      s.k_step = int(std::min<int64_t>(s.k, max_seq_len() - s.len));
    }
    s.feed = s.k_step > 0 ? remaining : std::min(remaining, chunk);
  }
  if (draft_) draft_pass(slots, n);
  int count = 0;  // the batched target pass: every slot but those with a round on the device
  for (int i = 0; i < n; ++i) {
    Slot& s = slots_[slots[i]];
    if (s.device_round()) continue;
    const bool completes = s.pos + s.feed == s.len;
    segments_[count++] = Segment{slots[i], s.tokens.data() + s.pos, int32_t(s.feed + s.k_step), s.pos,
                                 completes ? s.k_step + 1 : 0, s.logits.data(),
                                 completes && s.device_sampled && s.k_step == 0 ? &s.sampled : nullptr};
  }
  if (count > 0) timed_forward(target_, segments_.data(), count);
  const int64_t V = vocab();
  for (int i = 0; i < n; ++i) {
    Slot& s = slots_[slots[i]];
    int32_t* o = out + int64_t(i) * stride;
    counts[i] = 0;
    if (s.device_round()) {
      device_round(s, slots[i], o, &counts[i]);
      continue;
    }
    s.pos += s.feed;
    if (s.pos < s.len) continue;  // still prefilling its prompt
    if (s.k_step == 0) {
      o[0] = s.device_sampled ? s.sampled : s.sampler.sample(s.logits.data());
      append(s, o[0]);
      counts[i] = 1;
      continue;
    }
    for (int r = 0; r <= s.k_step; ++r) s.sampler.distribution(s.logits.data() + r * V, p_.data() + r * V);
    int kept = 0;
    const int m = accept_or_resample(p_.data(), s.q.data(), s.tokens.data() + s.len, s.k_step, int(V),
                                     s.sampler.random(), residual_.data(), o, &kept);
    finish_round(s, o, m, kept);
    counts[i] = m;
  }
}

// A speculative round on the device: the draft catches up on tokens[draft_pos..len) and proposes,
// the target verifies tokens[pos..len) plus the proposals, the device accepts and rejects; only
// the emitted ids come back. Timed as a forward pass (its passes dominate it).
void SessionState::device_round(Slot& s, int slot, int32_t* out, int32_t* count) {
  const Segment draft_feed{slot, s.tokens.data() + s.draft_pos, int32_t(s.len - s.draft_pos), s.draft_pos};
  const Segment target_feed{slot, s.tokens.data() + s.pos, int32_t(s.feed), s.pos};
  int32_t kept = 0;
  int m = 0;
  timed([&] { m = target_.speculate(*draft_, draft_feed, target_feed, s.k_step, out, &kept); });
  s.draft_pos = s.len + s.k_step - 1;  // the draft never feeds its own last proposal
  finish_round(s, out, m, kept);
  *count = m;
}

// After a round (target fed up to len, draft up to draft_pos): the emitted ids join the sequence.
void SessionState::finish_round(Slot& s, const int32_t* emitted, int m, int kept) {
  const int64_t old_len = s.len;
  for (int j = 0; j < m; ++j) append(s, emitted[j]);
  // Both caches keep the last token and the accepted proposals; later entries are stale and
  // get overwritten before they are read.
  s.pos = old_len + kept;
  s.draft_pos = std::min(s.draft_pos, old_len + kept);
  s.rounds += 1;
  s.proposed += s.k_step;
  s.accepted += kept;
}

// The draft's part of a step: speculative slots that are still prefilling feed it their prompt
// (up to the token before the last), the others catch up to their last token and then propose
// k_step tokens one position at a time, all slots together per position.
void SessionState::draft_pass(const int32_t* slots, int n) {
  int count = 0;
  for (int i = 0; i < n; ++i) {
    Slot& s = slots_[slots[i]];
    if (s.k == 0 || s.device_round()) continue;  // a device round runs its draft itself
    if (s.k_step > 0) {
      segments_[count++] = Segment{slots[i], s.tokens.data() + s.draft_pos, int32_t(s.len - s.draft_pos), s.draft_pos,
                                   1, s.draft_logits.data()};
      s.draft_pos = s.len;
      continue;
    }
    const int64_t chunk = prefill_chunk_ == 0 ? s.len : prefill_chunk_;
    const int64_t end = std::min(s.len - 1, s.draft_pos + chunk);
    if (end <= s.draft_pos) continue;
    segments_[count++] = Segment{slots[i], s.tokens.data() + s.draft_pos, int32_t(end - s.draft_pos), s.draft_pos,
                                 0, nullptr};
    s.draft_pos = end;
  }
  const int64_t V = vocab();
  for (int j = 0; count > 0; ++j) {
    timed_forward(*draft_, segments_.data(), count);
    count = 0;
    for (int i = 0; i < n; ++i) {
      Slot& s = slots_[slots[i]];
      if (s.k_step <= j || s.device_round()) continue;
      float* q = s.q.data() + j * V;  // the distribution proposal d_{j+1} is drawn from
      s.sampler.distribution(s.draft_logits.data(), q);
      const int64_t at = s.len + j;
      s.tokens[at] = s.sampler.draw(q);
      if (j + 1 < s.k_step) {  // the draft never needs its own last proposal
        segments_[count++] = Segment{slots[i], s.tokens.data() + at, 1, at, 1, s.draft_logits.data()};
        s.draft_pos = at + 1;
      }
    }
  }
}

void SessionState::release(int slot) {
  Slot& s = slot_at(slot);
  if (s.active) {  // tokens[0..pos) stay in the cache for the next sequence to reuse
    s.cached = s.pos;
    s.draft_cached = s.draft_pos;
  }
  s.active = false;
  s.len = s.pos = s.draft_pos = 0;
}

void SessionState::prompt_logits(const int32_t* tokens, int n, float* out) {
  int free = -1;
  for (int i = 0; i < slots() && free < 0; ++i) {
    if (!slots_[i].active) free = i;
  }
  if (free < 0) throw Error("every slot is busy: prompt logits need a free slot");
  check_prompt(tokens, n);
  slots_[free].cached = 0;  // its target cache now holds these tokens, not its last sequence's
  const Segment all{free, tokens, n, 0, n, out};
  target_.forward(&all, 1);
}

std::string SessionState::describe() const {
  std::ostringstream out;
  out << target_.describe() << " prefill_chunk=" << prefill_chunk_;
  if (draft_) {
    // Where speculative rounds run: with the sampling (Model::speculate needs device sampling).
    out << " speculation="
        << (target_.device_sampling() ? "device (draft and verify passes eager, one read per round)"
                                      : target_.sampling_mode())
        << " | draft: " << draft_->describe() << " max_speculate_k=" << max_k_;
  }
  return out.str();
}

}  // namespace gptfast
