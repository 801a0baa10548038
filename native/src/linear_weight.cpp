#include "linear_weight.h"

#include <algorithm>

#include <limits>
#include <sstream>

#include "mapped_file.h"

#if GPTFAST_WITH_CUDA
#include "cuda/quant_linear.h"
#endif

namespace gptfast {

namespace {

std::string shape_string(at::IntArrayRef shape) {
  std::ostringstream s;
  s << shape;
  return s.str();
}

std::string str(int64_t v) { return std::to_string(v); }

bool allowed_group(int64_t g) { return g == 32 || g == 64 || g == 128 || g == 256; }

constexpr int kDefaultGroup = 128;  // GPT-Fast's --groupsize default

}  // namespace

std::string QuantSpec::name() const {
  switch (kind) {
    case WeightKind::dense: return "";
    case WeightKind::int8: return "int8";
    case WeightKind::int4: return "int4:" + str(group);
  }
  return "";
}

WeightKind scales_kind(const std::string& tensor_name) {
  if (ends_with(tensor_name, kInt8ScalesSuffix)) return WeightKind::int8;
  if (ends_with(tensor_name, kInt4ScalesSuffix)) return WeightKind::int4;
  return WeightKind::dense;
}

QuantSpec parse_quantize(const std::string& value) {
  if (value.empty() || value == "none") return {};
  if (value == "int8") return {WeightKind::int8, 0};
  if (value == "int4") return {WeightKind::int4, kDefaultGroup};
  if (value.rfind("int4:", 0) == 0) {
    const std::string g = value.substr(5);
    if (g == "32" || g == "64" || g == "128" || g == "256") return {WeightKind::int4, std::stoi(g)};
  }
  throw Error("quantize: expected int8, int4 or int4:G with G one of 32, 64, 128, 256 (GPT-Fast's group sizes), got '" +
              value + "'");
}

int64_t int4_padded_in(int64_t in, int64_t group) {
  // GPT-Fast: in_features must be a multiple of the group and of inner_k_tiles * 16 = 128,
  // otherwise the weight is padded to a multiple of 1024.
  return (in % group == 0 && in % 128 == 0) ? in : (in + 1023) / 1024 * 1024;
}

const at::Tensor& check_tensor(const StateDict& w, const std::string& name, std::vector<int64_t> shape) {
  auto it = w.find(name);
  if (it == w.end()) throw Error("checkpoint has no tensor '" + name + "'");
  const at::Tensor& t = it->second;
  if (t.sizes() != at::IntArrayRef(shape)) {
    throw Error("tensor '" + name + "' has shape " + shape_string(t.sizes()) + " but the model config expects " +
                shape_string(shape) + " (wrong --config for this checkpoint?)");
  }
  if (!at::isFloatingType(t.scalar_type())) {
    throw Error("tensor '" + name + "' has dtype " + std::string(c10::toString(t.scalar_type())) +
                ", expected a floating-point weight");
  }
  return t;
}

at::Tensor take_tensor(StateDict& w, const std::string& name, std::vector<int64_t> shape,
                       const at::TensorOptions& options) {
  at::Tensor t = copy_weights({check_tensor(w, name, shape)}, shape, options, /*huge_pages=*/false);
  w.erase(name);
  return t;
}

int64_t LinearWeight::bytes() const {
  switch (kind) {
    case WeightKind::dense: return weight.numel() * int64_t(weight.element_size());
    case WeightKind::int8: return out * in + out * int64_t(sizeof(float));
    case WeightKind::int4: return out * ((in + 1) / 2) + out * ((in + group - 1) / group) * 4;
  }
  return 0;
}

at::Tensor LinearWeight::dequantize(at::ScalarType dtype) const {
  switch (kind) {
    case WeightKind::dense: return weight.to(dtype);
    case WeightKind::int8: return (weight.to(at::kFloat) * scales.unsqueeze(1)).to(dtype);
    case WeightKind::int4: {
      const int64_t padded = weight.size(1) * 2;
      at::Tensor q = at::stack({at::bitwise_right_shift(weight, 4), at::bitwise_and(weight, 15)}, -1)
                         .view({out, padded / group, group})
                         .to(at::kFloat);
      at::Tensor sz = scales.to(at::kFloat);  // [out, groups, 2]
      at::Tensor w = (q - 8) * sz.narrow(2, 0, 1) + sz.narrow(2, 1, 1);
      return w.view({out, padded}).narrow(1, 0, in).to(dtype).contiguous();
    }
  }
  return {};
}

at::Tensor LinearWeight::linear(const at::Tensor& x) const {
#if GPTFAST_WITH_CUDA
  // Decode rows on a GPU: the fused gemv kernels read the quantized weight once.
  if (kind != WeightKind::dense && x.is_cuda()) {
    at::Tensor y = cuda_quantized_linear(*this, x);
    if (y.defined()) return y;
  }
#endif
  switch (kind) {
    case WeightKind::dense: return at::linear(x, weight);
    case WeightKind::int8:  // GPT-Fast's WeightOnlyInt8Linear
      return at::linear(x, weight.to(x.scalar_type())) * scales.to(x.scalar_type());
    case WeightKind::int4: return at::linear(x, dequantize(x.scalar_type()));
  }
  return {};
}

LinearWeight LinearWeight::to(at::Device device) const {
  LinearWeight w = *this;
  w.weight = weight.to(device);
  if (scales.defined()) w.scales = scales.to(device);
  w.aten_weight = w.aten_scales = at::Tensor();  // a device's layout, made after the move (add_aten_layout)
  return w;
}

at::Tensor int8_scales_of(const at::Tensor& weight) {
  // GPT-Fast's dynamically_quantize_per_channel(-128, 127): scale = max|w| / 127.5 (at least fp32
  // eps), stored as bf16. In blocks of rows: a mapped weight is copied out a block at a time.
  constexpr int64_t kBlock = 256;
  const int64_t out = weight.size(0), in = weight.size(1);
  at::Tensor amax = at::empty({out}, at::kFloat);
  for (int64_t r = 0; r < out; r += kBlock) {
    const int64_t n = std::min(kBlock, out - r);
    const at::Tensor rows = copy_weights({weight.narrow(0, r, n)}, {n, in}, at::TensorOptions().dtype(at::kFloat), false);
    amax.narrow(0, r, n).copy_(std::get<0>(rows.abs().max(1)));
  }
  return (amax / 127.5).clamp_min(std::numeric_limits<float>::epsilon()).to(at::kBFloat16).to(at::kFloat);
}

LinearWeight quantize(const at::Tensor& weight, const QuantSpec& spec, const at::Tensor& int8_scales) {
  LinearWeight out;
  out.kind = spec.kind;
  out.out = weight.size(0);
  out.in = weight.size(1);
  if (spec.kind == WeightKind::dense) {
    out.weight = weight;
    return out;
  }
  // Rows are quantized on their own, so a block of rows at a time gives the same values: the fp32
  // temporaries are a block's, not the whole weight's (an 8B's output head is 2 GB in fp32).
  constexpr int64_t kBlock = kQuantizeRows;
  const int64_t rows = out.out, group = spec.group;
  const int64_t padded = spec.kind == WeightKind::int4 ? int4_padded_in(out.in, group) : out.in;
  if (spec.kind == WeightKind::int8) {
    out.weight = at::empty({rows, out.in}, at::kChar);
    out.scales = int8_scales.defined() ? int8_scales.to(at::kFloat).contiguous() : at::empty({rows}, at::kFloat);
  } else {
    out.weight = at::empty({rows, padded / 2}, at::kByte);
    out.scales = at::empty({rows, padded / group, 2}, at::kBFloat16);  // [out, groups, 2]
    out.group = group;
  }
  for (int64_t r = 0; r < rows; r += kBlock) {
    const int64_t n = std::min(kBlock, rows - r);
    const at::Tensor w = weight.narrow(0, r, n).to(at::kFloat).contiguous();
    if (spec.kind == WeightKind::int8) {
      // Rows are rounded with the stored scale, so that q * scale is the nearest representable value to w.
      const at::Tensor scales = int8_scales.defined() ? out.scales.narrow(0, r, n) : int8_scales_of(w);
      out.weight.narrow(0, r, n).copy_((w / scales.unsqueeze(1)).round().clamp(-128, 127).to(at::kChar));
      if (!int8_scales.defined()) out.scales.narrow(0, r, n).copy_(scales);
      continue;
    }
    // int4, GPT-Fast's get_group_qparams + group_quantize_tensor_from_qparams, in fp32 with the
    // stored bf16 scale and zero: scale = (max - min) / 15 (at least 1e-6), zero = min + 8 * scale,
    // q = round((w - (zero - 8 * scale)) / scale) clamped to [0, 15].
    const at::Tensor wp = at::constant_pad_nd(w, {0, padded - out.in}).view({n, padded / group, group});
    const at::Tensor max = std::get<0>(wp.max(2)), min = std::get<0>(wp.min(2));
    const at::Tensor scale = ((max - min).clamp_min(1e-6) / 15).to(at::kBFloat16).to(at::kFloat);
    const at::Tensor zero = (min + scale * 8).to(at::kBFloat16).to(at::kFloat);
    const at::Tensor low = (zero - scale * 8).unsqueeze(2);
    const at::Tensor q = ((wp - low) / scale.unsqueeze(2)).round().clamp(0, 15).to(at::kByte).view({n, padded / 2, 2});
    out.weight.narrow(0, r, n).copy_(at::bitwise_or(at::bitwise_left_shift(q.select(2, 0), 4), q.select(2, 1)));
    out.scales.narrow(0, r, n).copy_(at::stack({scale, zero}, 2));
  }
  return out;
}

namespace {

void check_same_quantization(const std::string& name, const QuantSpec& file, const QuantSpec& asked) {
  if (asked.kind != WeightKind::dense && asked.name() != file.name()) {
    throw Error("checkpoint is already quantized (" + file.name() + " at '" + name + "'); drop --quantize " +
                asked.name() + " or quantize the original checkpoint");
  }
}

// The row ranges a shard names (every row when it names none), checked.
std::vector<std::pair<int64_t, int64_t>> row_ranges(const Shard& shard, int64_t out, int64_t in, const std::string& name) {
  if (shard.column_count != 0) {
    if (!shard.rows.empty()) throw Error("internal: a shard of '" + name + "' cuts both rows and columns");
    if (shard.column_start < 0 || shard.column_count < 0 || shard.column_start + shard.column_count > in) {
      throw Error("column shard outside the " + str(in) + " columns of '" + name + "'");
    }
  }
  if (shard.rows.empty()) return {{0, out}};
  for (const auto& [start, count] : shard.rows) {
    if (start < 0 || count < 1 || start + count > out) {
      throw Error("row shard outside the " + str(out) + " rows of '" + name + "'");
    }
  }
  return shard.rows;
}

// Where a dense weight's rows live: `name`.weight, or for a wqkv the file keeps apart, its wq, wk
// and wv, one after another; head_dim > 0 where a part's rows are in Hugging Face's half-split
// RoPE order (kRopeHalvesKey).
struct RowSource {
  at::Tensor tensor;
  int64_t head_dim = 0;
};

// "...attention.w" for a "...attention.wqkv" (its parts are prefix + "q.weight", ...), else "".
std::string qkv_parts_prefix(const std::string& name) {
  return ends_with(name, ".wqkv") ? name.substr(0, name.size() - 3) : "";
}

std::vector<RowSource> dense_sources(const StateDict& w, const std::string& name, int64_t out, int64_t in) {
  const std::string prefix = qkv_parts_prefix(name);
  if (w.count(name + ".weight") || prefix.empty() || !w.count(prefix + "q.weight")) {
    return {{check_tensor(w, name + ".weight", {out, in}), 0}};
  }
  auto flag = w.find(kRopeHalvesKey);
  const int64_t hd = flag == w.end() ? 0 : flag->second.to(at::kInt).item<int32_t>();
  auto part = [&](const char* p) -> const at::Tensor& {
    const std::string part_name = prefix + p + ".weight";
    auto it = w.find(part_name);
    if (it == w.end()) throw Error("checkpoint has '" + prefix + "q.weight' but no tensor '" + part_name + "'");
    if (!at::isFloatingType(it->second.scalar_type()) || it->second.dim() != 2 || it->second.size(1) != in) {
      throw Error("tensor '" + part_name + "' has shape " + shape_string(it->second.sizes()) + " and dtype " +
                  std::string(c10::toString(it->second.scalar_type())) + ", expected floating-point [rows, " +
                  str(in) + "]");
    }
    return it->second;
  };
  const at::Tensor &q = part("q"), &k = part("k"), &v = part("v");
  if (q.size(0) + k.size(0) + v.size(0) != out || k.size(0) != v.size(0) ||
      (hd > 0 && (q.size(0) % hd != 0 || k.size(0) % hd != 0))) {
    throw Error("tensors '" + prefix + "q/k/v.weight' have " + str(q.size(0)) + ", " + str(k.size(0)) + " and " +
                str(v.size(0)) + " rows, but the model config expects " + str(out) + " in all (wrong --config?)");
  }
  return {{q, hd}, {k, hd}, {v, 0}};
}

// Views of rows [start, start + count) in GPT-Fast's order: no copy; half-split q/k rows become
// [heads, head_dim/2, 2, in] views that read them in adjacent-pair order.
std::vector<at::Tensor> row_views(const std::vector<RowSource>& sources, int64_t start, int64_t count) {
  std::vector<at::Tensor> views;
  int64_t offset = 0;
  for (const RowSource& s : sources) {
    const int64_t n = s.tensor.size(0), begin = std::max(start, offset), end = std::min(start + count, offset + n);
    if (begin < end) {
      at::Tensor v = s.tensor.narrow(0, begin - offset, end - begin);
      if (s.head_dim > 0) {
        const int64_t hd = s.head_dim;
        if ((begin - offset) % hd != 0 || (end - begin) % hd != 0) throw Error("internal: a q/k shard splits a head");
        v = v.view({(end - begin) / hd, 2, hd / 2, v.size(1)}).transpose(1, 2);
      }
      views.push_back(v);
    }
    offset += n;
  }
  return views;
}

LinearWeight take_int8(StateDict& w, const std::string& name, int64_t out, int64_t in, const QuantSpec& quant,
                       const std::vector<std::pair<int64_t, int64_t>>& ranges, const Shard& shard) {
  const at::Tensor& q = w.at(name + ".weight");
  const at::Tensor& s = w.at(name + kInt8ScalesSuffix);
  if (q.scalar_type() != at::kChar) {
    throw Error("tensor '" + name + ".weight' has dtype " + std::string(c10::toString(q.scalar_type())) +
                ", but a layer with '" + name + kInt8ScalesSuffix + "' is int8 and needs int8 [out, in] weights" +
                (q.scalar_type() == at::kByte || q.scalar_type() == at::kInt ? " (an int4 file used as int8?)" : ""));
  }
  if (q.sizes() != at::IntArrayRef({out, in})) {
    throw Error("tensor '" + name + ".weight' has shape " + shape_string(q.sizes()) + " but the model config expects " +
                shape_string({out, in}));
  }
  if (s.dim() != 1 || s.size(0) != out || !at::isFloatingType(s.scalar_type())) {
    throw Error("tensor '" + name + kInt8ScalesSuffix + "' has shape " + shape_string(s.sizes()) + " and dtype " +
                std::string(c10::toString(s.scalar_type())) + ", expected floating-point [" + str(out) + "]");
  }
  check_same_quantization(name, {WeightKind::int8, 0}, quant);
  LinearWeight lw;
  lw.kind = WeightKind::int8;
  lw.in = shard.column_count ? shard.column_count : in;
  std::vector<at::Tensor> qs, ss;
  for (const auto& [start, count] : ranges) {
    const at::Tensor rows = q.narrow(0, start, count);
    qs.push_back(shard.column_count ? rows.narrow(1, shard.column_start, lw.in) : rows);
    ss.push_back(s.narrow(0, start, count));  // per-row scales are unchanged by a column cut
    lw.out += count;
  }
  lw.weight = copy_weights(qs, {lw.out, lw.in}, at::TensorOptions().dtype(at::kChar), true);
  lw.scales = copy_weights(ss, {lw.out}, at::TensorOptions().dtype(at::kFloat), false);
  return lw;
}

void check_int4_columns(int64_t start, int64_t count, int64_t group, int64_t in) {
  if (start % group != 0 || count % group != 0) {
    throw Error("int4 group " + str(group) + " does not divide the tensor-parallel shard of " + str(count) +
                " input columns (of " + str(in) + "); use a smaller group or fewer ranks");
  }
}

LinearWeight take_int4(StateDict& w, const std::string& name, int64_t out, int64_t in, const QuantSpec& quant,
                       const std::vector<std::pair<int64_t, int64_t>>& ranges, const Shard& shard) {
  const at::Tensor& q = w.at(name + ".weight");
  const at::Tensor& sz = w.at(name + kInt4ScalesSuffix);
  if (q.scalar_type() == at::kInt && q.dim() == 4) {
    throw Error("tensor '" + name + ".weight' is int4 packed by GPT-Fast for CUDA tensor cores (" +
                shape_string(q.sizes()) +
                ", _convert_weight_to_int4pack), which gptfast4j does not unpack; quantize the bf16 checkpoint "
                "with ./gptfast quantize --mode int4 --groupsize G instead");
  }
  if (q.scalar_type() != at::kByte || q.dim() != 2) {
    throw Error("tensor '" + name + ".weight' of an int4 layer has dtype " + std::string(c10::toString(q.scalar_type())) +
                " and shape " + shape_string(q.sizes()) + ", expected uint8 [out, K/2]");
  }
  auto layout = w.find(kInt4LayoutKey);
  if (layout == w.end() || layout->second.numel() != 1 || owned(layout->second).to(at::kInt).item<int32_t>() != kInt4Layout) {
    throw Error("int4 tensor '" + name + "' has no '" + std::string(kInt4LayoutKey) + "' = " + str(kInt4Layout) +
                " entry, so its nibble packing is unknown (torch's CPU int4pack has the same shape); quantize the "
                "bf16 checkpoint with ./gptfast quantize --mode int4 instead");
  }
  const int64_t padded = q.size(1) * 2;
  if (sz.dim() != 3 || sz.size(1) != out || sz.size(2) != 2 || sz.size(0) < 1 || padded % sz.size(0) != 0 ||
      !at::isFloatingType(sz.scalar_type())) {
    throw Error("tensor '" + name + kInt4ScalesSuffix + "' has shape " + shape_string(sz.sizes()) +
                ", expected [K/G, " + str(out) + ", 2] for K = " + str(padded));
  }
  const int64_t group = padded / sz.size(0);
  if (!allowed_group(group)) {
    throw Error("int4 layer '" + name + "' has group size " + str(group) +
                "; GPT-Fast allows 32, 64, 128 or 256");
  }
  if (q.size(0) != out || padded != int4_padded_in(in, group)) {
    throw Error("tensor '" + name + ".weight' has shape " + shape_string(q.sizes()) + " but the model config expects [" +
                str(out) + ", " + str(int4_padded_in(in, group) / 2) + "] (in_features " + str(in) + ", group " +
                str(group) + ")");
  }
  check_same_quantization(name, {WeightKind::int4, int(group)}, quant);
  LinearWeight lw;
  lw.kind = WeightKind::int4;
  lw.group = group;
  const at::Tensor by_row = sz.transpose(0, 1);  // [out, K/G, 2]: a row's groups contiguous for the kernels
  const at::TensorOptions bytes = at::TensorOptions().dtype(at::kByte), bf16 = at::TensorOptions().dtype(at::kBFloat16);
  if (shard.column_count == 0) {
    std::vector<at::Tensor> qs, ss;
    for (const auto& [start, count] : ranges) {
      qs.push_back(q.narrow(0, start, count));
      ss.push_back(by_row.narrow(0, start, count));
      lw.out += count;
    }
    lw.in = in;
    lw.weight = copy_weights(qs, {lw.out, q.size(1)}, bytes, true);
    lw.scales = copy_weights(ss, {lw.out, sz.size(0), 2}, bf16, false);
    return lw;
  }
  const int64_t start = shard.column_start, count = shard.column_count;
  check_int4_columns(start, count, group, in);
  const int64_t width = int4_padded_in(count, group);  // padded columns are zero, as GPT-Fast pads
  lw.out = out;
  lw.in = count;
  lw.weight = new_weights({out, width / 2}, bytes, true).zero_();
  copy_into(lw.weight.narrow(1, 0, count / 2), q.narrow(1, start / 2, count / 2));
  lw.scales = at::zeros({out, width / group, 2}, bf16);
  copy_into(lw.scales.narrow(1, 0, count / group), by_row.narrow(1, start / group, count / group));
  return lw;
}

LinearWeight take_linear_from(StateDict& w, const std::string& name, int64_t out, int64_t in,
                              const at::TensorOptions& dense_options, const QuantSpec& quant, const Shard& shard) {
  const auto ranges = row_ranges(shard, out, in, name);
  LinearWeight lw;
  if (w.count(name + kInt4ScalesSuffix)) {
    if (!w.count(name + ".weight")) throw Error("checkpoint has no tensor '" + name + ".weight'");
    lw = take_int4(w, name, out, in, quant, ranges, shard);
  } else if (w.count(name + kInt8ScalesSuffix)) {
    if (!w.count(name + ".weight")) throw Error("checkpoint has no tensor '" + name + ".weight'");
    lw = take_int8(w, name, out, in, quant, ranges, shard);
  } else {
    auto it = w.find(name + ".weight");
    if (it != w.end() && !at::isFloatingType(it->second.scalar_type())) {
      throw Error("tensor '" + name + ".weight' has dtype " + std::string(c10::toString(it->second.scalar_type())) +
                  " but the checkpoint has neither '" + name + kInt8ScalesSuffix + "' (int8) nor '" + name +
                  kInt4ScalesSuffix + "' (int4)");
    }
    const std::vector<RowSource> sources = dense_sources(w, name, out, in);
    const int64_t cols = shard.column_count ? shard.column_count : in;
    std::vector<at::Tensor> parts;
    int64_t rows = 0;
    for (const auto& [start, count] : ranges) {
      for (const at::Tensor& v : row_views(sources, start, count)) {
        parts.push_back(shard.column_count ? v.narrow(-1, shard.column_start, cols) : v);
      }
      rows += count;
    }
    if (quant.kind == WeightKind::dense) {
      lw.weight = copy_weights(parts, {rows, cols}, dense_options, true);
      lw.out = rows;
      lw.in = cols;
      return lw;
    }
    if (quant.kind == WeightKind::int4 && shard.column_count) check_int4_columns(shard.column_start, cols, quant.group, in);
    // int8 scales are per output row: a column shard (wo, w2) takes those of its whole rows, so
    // that its values are GPT-Fast's (quantize the whole weight, then cut) and tp N computes what
    // tp 1 does; scales of the shard's own columns would differ. So every rank reads all of wo's
    // and w2's rows here (int8_scales_of, a block at a time), not just its columns: inherent in
    // quantizing at load. An int8 file (./gptfast quantize) stores the scales and avoids it.
    const at::Tensor scales = quant.kind == WeightKind::int8 && shard.column_count
                                  ? int8_scales_of(sources.at(0).tensor)
                                  : at::Tensor();
    // Joined in the file's dtype (quantize() widens a block of rows at a time to fp32).
    lw = quantize(copy_weights(parts, {rows, cols}, at::TensorOptions().dtype(parts.at(0).scalar_type()), false), quant,
                  scales);
    if (dense_options.device().is_cpu()) lw.weight = copy_weights({lw.weight}, lw.weight.sizes(), lw.weight.options(), true);
  }
  return lw.to(dense_options.device());
}

}  // namespace

LinearWeight take_linear(StateDict& w, const std::string& name, int64_t out, int64_t in,
                         const at::TensorOptions& dense_options, const QuantSpec& quant, const Shard& shard) {
  LinearWeight lw = take_linear_from(w, name, out, in, dense_options, quant, shard);
  // Dropped as taken: where the dict owns the tensors (random weights) this frees them one by one,
  // so loading peaks at the model's size plus one tensor, not twice the model.
  for (const char* suffix : {".weight", kInt8ScalesSuffix, kInt4ScalesSuffix}) w.erase(name + suffix);
  const std::string prefix = qkv_parts_prefix(name);
  if (!prefix.empty()) {
    for (const char* part : {"q.weight", "k.weight", "v.weight"}) w.erase(prefix + part);
  }
  return lw;
}

void check_dense_linear(const StateDict& weights, const std::string& name, int64_t out, int64_t in) {
  dense_sources(weights, name, out, in);
}

void put_linear(StateDict& weights, const std::string& name, const LinearWeight& w) {
  weights[name + ".weight"] = w.weight.cpu();
  if (w.kind == WeightKind::int8) weights[name + kInt8ScalesSuffix] = w.scales.to(at::kBFloat16).cpu();
  if (w.kind == WeightKind::int4) {
    weights[name + kInt4ScalesSuffix] = w.scales.transpose(0, 1).contiguous().cpu();
    weights[kInt4LayoutKey] = at::full({1}, kInt4Layout, at::kInt);
  }
}

}  // namespace gptfast
