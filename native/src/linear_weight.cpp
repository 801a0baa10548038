#include "linear_weight.h"

#include <limits>
#include <sstream>

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

at::Tensor take_tensor(StateDict& w, const std::string& name, std::vector<int64_t> shape,
                       const at::TensorOptions& options) {
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
  return t.to(options).contiguous();
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
  return w;
}

LinearWeight LinearWeight::rows(const std::vector<std::pair<int64_t, int64_t>>& ranges) const {
  std::vector<at::Tensor> w, s;
  LinearWeight r = *this;
  r.out = 0;
  for (const auto& [start, count] : ranges) {
    if (start < 0 || count < 1 || start + count > out) throw Error("row shard outside the weight's " + str(out) + " rows");
    w.push_back(weight.narrow(0, start, count));
    if (scales.defined()) s.push_back(scales.narrow(0, start, count));  // int8 [out], int4 [out, groups, 2]
    r.out += count;
  }
  r.weight = at::cat(w, 0).contiguous();
  if (scales.defined()) r.scales = at::cat(s, 0).contiguous();
  return r;
}

LinearWeight LinearWeight::columns(int64_t start, int64_t count) const {
  if (start < 0 || count < 1 || start + count > in) throw Error("column shard outside the weight's " + str(in) + " columns");
  LinearWeight r = *this;
  r.in = count;
  switch (kind) {
    case WeightKind::dense:
    case WeightKind::int8:  // per-row scales are unchanged by a column cut
      r.weight = weight.narrow(1, start, count).contiguous();
      return r;
    case WeightKind::int4: {
      if (start % group != 0 || count % group != 0) {
        throw Error("int4 group " + str(group) + " does not divide the tensor-parallel shard of " + str(count) +
                    " input columns (of " + str(in) + "); use a smaller group or fewer ranks");
      }
      const int64_t padded = int4_padded_in(count, group);
      r.weight = at::zeros({out, padded / 2}, weight.options());  // padded columns are zero, as GPT-Fast pads
      r.weight.narrow(1, 0, count / 2).copy_(weight.narrow(1, start / 2, count / 2));
      r.scales = at::zeros({out, padded / group, 2}, scales.options());
      r.scales.narrow(1, 0, count / group).copy_(scales.narrow(1, start / group, count / group));
      return r;
    }
  }
  return r;
}

LinearWeight quantize(const at::Tensor& weight, const QuantSpec& spec) {
  const at::Tensor w = weight.to(at::kFloat).contiguous();
  LinearWeight out;
  out.kind = spec.kind;
  out.out = w.size(0);
  out.in = w.size(1);
  if (spec.kind == WeightKind::dense) {
    out.weight = weight;
    return out;
  }
  if (spec.kind == WeightKind::int8) {
    // GPT-Fast's dynamically_quantize_per_channel(-128, 127): scale = max|w| / 127.5 (at least
    // fp32 eps), stored as bf16. Rows are rounded with the stored scale, so that q * scale is the
    // nearest representable value to w.
    const at::Tensor amax = std::get<0>(w.abs().max(1));
    const at::Tensor scales = (amax / 127.5).clamp_min(std::numeric_limits<float>::epsilon()).to(at::kBFloat16).to(at::kFloat);
    out.weight = (w / scales.unsqueeze(1)).round().clamp(-128, 127).to(at::kChar).contiguous();
    out.scales = scales.contiguous();
    return out;
  }
  // int4, GPT-Fast's get_group_qparams + group_quantize_tensor_from_qparams, in fp32 with the
  // stored bf16 scale and zero: scale = (max - min) / 15 (at least 1e-6), zero = min + 8 * scale,
  // q = round((w - (zero - 8 * scale)) / scale) clamped to [0, 15].
  const int64_t group = spec.group;
  const int64_t padded = int4_padded_in(out.in, group);
  const at::Tensor wp = at::constant_pad_nd(w, {0, padded - out.in}).view({out.out, padded / group, group});
  const at::Tensor max = std::get<0>(wp.max(2)), min = std::get<0>(wp.min(2));
  const at::Tensor scale = ((max - min).clamp_min(1e-6) / 15).to(at::kBFloat16).to(at::kFloat);
  const at::Tensor zero = (min + scale * 8).to(at::kBFloat16).to(at::kFloat);
  const at::Tensor low = (zero - scale * 8).unsqueeze(2);
  const at::Tensor q = ((wp - low) / scale.unsqueeze(2)).round().clamp(0, 15).to(at::kByte).view({out.out, padded / 2, 2});
  out.weight = at::bitwise_or(at::bitwise_left_shift(q.select(2, 0), 4), q.select(2, 1)).contiguous();
  out.scales = at::stack({scale, zero}, 2).to(at::kBFloat16).contiguous();  // [out, groups, 2]
  out.group = group;
  return out;
}

namespace {

void check_same_quantization(const std::string& name, const QuantSpec& file, const QuantSpec& asked) {
  if (asked.kind != WeightKind::dense && asked.name() != file.name()) {
    throw Error("checkpoint is already quantized (" + file.name() + " at '" + name + "'); drop --quantize " +
                asked.name() + " or quantize the original checkpoint");
  }
}

LinearWeight take_int8(StateDict& w, const std::string& name, int64_t out, int64_t in, const QuantSpec& quant) {
  const at::Tensor& q = w.at(name + ".weight");
  const at::Tensor& s = w.at(name + ".scales");
  if (q.scalar_type() != at::kChar) {
    throw Error("tensor '" + name + ".weight' has dtype " + std::string(c10::toString(q.scalar_type())) +
                ", but a layer with '" + name + ".scales' is int8 and needs int8 [out, in] weights" +
                (q.scalar_type() == at::kByte || q.scalar_type() == at::kInt ? " (an int4 file used as int8?)" : ""));
  }
  if (q.sizes() != at::IntArrayRef({out, in})) {
    throw Error("tensor '" + name + ".weight' has shape " + shape_string(q.sizes()) + " but the model config expects " +
                shape_string({out, in}));
  }
  if (s.dim() != 1 || s.size(0) != out || !at::isFloatingType(s.scalar_type())) {
    throw Error("tensor '" + name + ".scales' has shape " + shape_string(s.sizes()) + " and dtype " +
                std::string(c10::toString(s.scalar_type())) + ", expected floating-point [" + str(out) + "]");
  }
  check_same_quantization(name, {WeightKind::int8, 0}, quant);
  LinearWeight lw;
  lw.kind = WeightKind::int8;
  lw.weight = q.contiguous();
  lw.scales = s.to(at::kFloat).contiguous();
  lw.out = out;
  lw.in = in;
  return lw;
}

LinearWeight take_int4(StateDict& w, const std::string& name, int64_t out, int64_t in, const QuantSpec& quant) {
  const at::Tensor& q = w.at(name + ".weight");
  const at::Tensor& sz = w.at(name + ".scales_and_zeros");
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
  if (layout == w.end() || layout->second.numel() != 1 || layout->second.to(at::kInt).item<int32_t>() != kInt4Layout) {
    throw Error("int4 tensor '" + name + "' has no '" + std::string(kInt4LayoutKey) + "' = " + str(kInt4Layout) +
                " entry, so its nibble packing is unknown (torch's CPU int4pack has the same shape); quantize the "
                "bf16 checkpoint with ./gptfast quantize --mode int4 instead");
  }
  const int64_t padded = q.size(1) * 2;
  if (sz.dim() != 3 || sz.size(1) != out || sz.size(2) != 2 || sz.size(0) < 1 || padded % sz.size(0) != 0 ||
      !at::isFloatingType(sz.scalar_type())) {
    throw Error("tensor '" + name + ".scales_and_zeros' has shape " + shape_string(sz.sizes()) +
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
  lw.weight = q.contiguous();
  lw.scales = sz.to(at::kBFloat16).transpose(0, 1).contiguous();
  lw.out = out;
  lw.in = in;
  lw.group = group;
  return lw;
}

}  // namespace

LinearWeight take_linear(StateDict& w, const std::string& name, int64_t out, int64_t in,
                         const at::TensorOptions& dense_options, const QuantSpec& quant) {
  const std::string weight = name + ".weight";
  auto it = w.find(weight);
  if (it == w.end()) throw Error("checkpoint has no tensor '" + weight + "'");
  LinearWeight lw;
  if (w.count(name + ".scales_and_zeros")) {
    lw = take_int4(w, name, out, in, quant);
  } else if (w.count(name + ".scales")) {
    lw = take_int8(w, name, out, in, quant);
  } else if (!at::isFloatingType(it->second.scalar_type())) {
    throw Error("tensor '" + weight + "' has dtype " + std::string(c10::toString(it->second.scalar_type())) +
                " but the checkpoint has neither '" + name + ".scales' (int8) nor '" + name +
                ".scales_and_zeros' (int4)");
  } else if (quant.kind == WeightKind::dense) {
    lw.weight = take_tensor(w, weight, {out, in}, dense_options);
    lw.out = out;
    lw.in = in;
    return lw;
  } else {
    take_tensor(w, weight, {out, in}, at::TensorOptions());  // checks the shape
    lw = quantize(it->second, quant);
  }
  return lw.to(dense_options.device());
}

void put_linear(StateDict& weights, const std::string& name, const LinearWeight& w) {
  weights[name + ".weight"] = w.weight.cpu();
  if (w.kind == WeightKind::int8) weights[name + ".scales"] = w.scales.to(at::kBFloat16).cpu();
  if (w.kind == WeightKind::int4) {
    weights[name + ".scales_and_zeros"] = w.scales.transpose(0, 1).contiguous().cpu();
    weights[kInt4LayoutKey] = at::full({1}, kInt4Layout, at::kInt);
  }
}

}  // namespace gptfast
