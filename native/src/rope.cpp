#include "rope.h"

#include <cmath>
#include <vector>

namespace gptfast {

namespace {

// Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, a smooth blend between.
std::vector<double> scaled_frequencies(std::vector<double> freqs, const ModelSpec& s) {
  if (s.rope_scaling_factor <= 0) return freqs;
  const double old_len = s.rope_original_max_position;
  const double low_wavelen = old_len / s.rope_low_freq_factor;
  const double high_wavelen = old_len / s.rope_high_freq_factor;
  for (double& f : freqs) {
    const double wavelen = 2 * M_PI / f;
    if (wavelen < high_wavelen) continue;
    if (wavelen > low_wavelen) {
      f /= s.rope_scaling_factor;
    } else {
      const double smooth = (old_len / wavelen - s.rope_low_freq_factor) /
                            (s.rope_high_freq_factor - s.rope_low_freq_factor);
      f = (1 - smooth) * f / s.rope_scaling_factor + smooth * f;
    }
  }
  return freqs;
}

}  // namespace

at::Tensor rope_table(const ModelSpec& spec, int64_t max_seq_len) {
  const int64_t half = spec.head_dim / 2;
  // Same arithmetic as GPT-Fast (fp32 powers and products) so fp32 results match bit for bit
  // as closely as the libm allows.
  at::Tensor exponents = at::arange(0, spec.head_dim, 2, at::kFloat).slice(0, 0, half) / float(spec.head_dim);
  at::Tensor freqs = 1.0 / at::pow(at::scalar_tensor(spec.rope_base, at::kFloat), exponents);
  if (spec.rope_scaling_factor > 0) {
    std::vector<double> f(freqs.data_ptr<float>(), freqs.data_ptr<float>() + half);
    f = scaled_frequencies(f, spec);
    for (int64_t i = 0; i < half; ++i) freqs[i] = f[i];
  }
  at::Tensor angles = at::outer(at::arange(max_seq_len, at::kFloat), freqs);
  return at::stack({at::cos(angles), at::sin(angles)}, -1).contiguous();
}

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& table_rows) {
  const auto sizes = x.sizes();
  at::Tensor xs = x.to(at::kFloat).reshape({sizes[0], sizes[1], sizes[2], sizes[3] / 2, 2});
  at::Tensor f = table_rows.view({table_rows.dim() == 4 ? sizes[0] : 1, sizes[1], 1, sizes[3] / 2, 2});
  at::Tensor x0 = xs.select(-1, 0), x1 = xs.select(-1, 1);
  at::Tensor c = f.select(-1, 0), s = f.select(-1, 1);
  return at::stack({x0 * c - x1 * s, x1 * c + x0 * s}, -1).flatten(3).to(x.scalar_type());
}

}  // namespace gptfast
