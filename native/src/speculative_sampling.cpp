#include "speculative_sampling.h"

#include <algorithm>

#include "sampler.h"

namespace gptfast {

int accept_or_resample(const float* p, const float* q, const int32_t* draft, int k, int vocab, Random& random,
                       float* residual, int32_t* out, int* accepted) {
  for (int i = 0; i < k; ++i) {
    const float* pi = p + int64_t(i) * vocab;
    const float* qi = q + int64_t(i) * vocab;
    const int32_t x = draft[i];
    // Accept x with probability min(1, p(x) / q(x)); q(x) > 0 because x was drawn from q.
    if (qi[x] <= 0 || random.uniform() * qi[x] < pi[x]) {
      out[i] = x;
      continue;
    }
    // First rejection: resample from normalize(max(0, p - q)), which restores p exactly.
    for (int v = 0; v < vocab; ++v) residual[v] = std::max(0.0f, pi[v] - qi[v]);
    *accepted = i;
    out[i] = draw_dense(residual, vocab, random);
    return i + 1;
  }
  *accepted = k;
  out[k] = draw_dense(p + int64_t(k) * vocab, vocab, random);  // all accepted: bonus token
  return k + 1;
}

}  // namespace gptfast
