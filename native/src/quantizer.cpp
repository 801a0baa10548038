// The Quantizer API: reads a checkpoint, quantizes its Linear layers one by one (linear_weight.h
// owns the formats and the math) and writes a torch.save zip.
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>

#include <cstdio>
#include <fstream>

#include "gptfast/engine_api.h"
#include "guarded.h"
#include "host_memory.h"
#include "linear_weight.h"
#include "load_progress.h"
#include "mapped_file.h"
#include "state_dict.h"

namespace gptfast {

struct LayerShape {
  std::string name;
  int64_t out, in;
};

class QuantizerState {
 public:
  QuantizerState(const std::string& path, const std::string& format, const ModelSpec& spec, const std::string& quantize)
      : quant_(parse_quantize(quantize)) {
    if (quant_.kind == WeightKind::dense) throw Error("quantize: give int8, int4 or int4:G");
    check_model(spec);
    // Random weights are drawn whole first: planned on the meta device before any is drawn.
    if (format == "random") check_memory(load_checkpoint(path, format, spec, at::TensorOptions().device(at::kMeta)), true);
    weights_ = load_checkpoint(path, format, spec);
    load_progress_settle();  // the rest is read while quantizing, not counted as loading
    for (const auto& [name, tensor] : weights_) {
      if (scales_kind(name) != WeightKind::dense) throw Error("checkpoint is already quantized ('" + name + "'); quantize the original checkpoint");
    }
    const int64_t dim = spec.dim, hd = spec.head_dim, ffn = spec.intermediate_size;
    const int64_t q_dim = int64_t(spec.n_head) * hd, kv_dim = int64_t(spec.n_local_heads) * hd;
    for (int i = 0; i < spec.n_layer; ++i) {
      const std::string p = "layers." + std::to_string(i) + ".";
      layers_.push_back({p + "attention.wqkv", q_dim + 2 * kv_dim, dim});
      layers_.push_back({p + "attention.wo", dim, q_dim});
      layers_.push_back({p + "feed_forward.w1", ffn, dim});
      layers_.push_back({p + "feed_forward.w2", dim, ffn});
      layers_.push_back({p + "feed_forward.w3", ffn, dim});
    }
    layers_.push_back({"output", spec.vocab_size, dim});
    // Check every shape, and the memory, before the long part starts (nothing is copied out of
    // the checkpoint yet: a file's tensors are views of its mapping, wq/wk/wv still apart).
    for (const LayerShape& l : layers_) check_dense_linear(weights_, l.name, l.out, l.in);
    if (format != "random") check_memory(weights_, false);
  }

  int layers() const { return int(layers_.size()); }
  int done() const { return done_; }
  std::string quantization() const { return quant_.name(); }

  std::string next() {
    if (done_ == layers()) throw Error("quantize: every layer is done");
    const LayerShape& l = layers_[done_];
    // take_linear copies the layer out of the checkpoint's mapping (joining wq/wk/wv where the
    // file keeps them apart), quantizes it as a load with --quantize does, and drops its entries.
    const LinearWeight w = take_linear(weights_, l.name, l.out, l.in, at::TensorOptions(), quant_);
    put_linear(weights_, l.name, w);
    ++done_;
    return l.name;
  }

  void save(const std::string& out_path) {
    if (done_ != layers()) throw Error("quantize: " + std::to_string(layers() - done_) + " layers are not done yet");
    c10::impl::GenericDict dict(c10::StringType::get(), c10::TensorType::get());
    for (const auto& [name, tensor] : weights_) {
      if (name != kRopeHalvesKey) dict.insert(name, owned(tensor).contiguous());  // read by take_linear only
    }
    // torch.save's zip, as torch::jit::pickle_save makes it, but streamed to the file: pickle_save
    // builds the whole file in memory first, which doubled the peak (a 70B int4 is ~35 GB).
    std::vector<char> pickled;  // the dict without its tensors' bytes: small
    torch::jit::Pickler pickler([&](const char* bytes, size_t n) { pickled.insert(pickled.end(), bytes, bytes + n); });
    pickler.protocol();
    pickler.pushIValue(dict);
    pickler.stop();
    const std::string tmp = out_path + ".tmp";
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error("cannot write '" + tmp + "'");
    try {
      // The callback never reports a failed write: the writer would raise it from its destructor
      // too (std::terminate). The stream's state is checked once at the end instead.
      caffe2::serialize::PyTorchStreamWriter writer([&](const void* bytes, size_t n) -> size_t {
        if (out) out.write(static_cast<const char*>(bytes), std::streamsize(n));
        return n;
      });
      torch::jit::writeArchiveAndTensors("data", pickled.data(), pickled.size(), pickler.tensorData(), writer);
      writer.writeEndOfFile();
      out.close();
    } catch (const std::exception& e) {
      out.close();
      std::remove(tmp.c_str());
      throw Error("writing '" + tmp + "' failed: " + first_line(e.what()));
    }
    if (!out) {
      std::remove(tmp.c_str());
      throw Error("writing '" + tmp + "' failed (disk full?)");
    }
    if (std::rename(tmp.c_str(), out_path.c_str()) != 0) {
      std::remove(tmp.c_str());
      throw Error("cannot rename '" + tmp + "' to '" + out_path + "'");
    }
  }

 private:
  // The quantized weights and one layer's copies against the memory here; random weights are
  // drawn whole (fp32) before the first layer is taken, mapped files are page cache.
  void check_memory(const StateDict& weights, bool random) const {
    auto embeddings = weights.find("tok_embeddings.weight");  // norms and embeddings are saved as they are
    const at::ScalarType dtype = embeddings == weights.end() ? at::kFloat : embeddings->second.scalar_type();
    const HostWeights plan = plan_host_weights(weights, quant_, dtype);
    const int64_t before = random ? std::max(plan.source, plan.resident) : plan.resident;
    check_host_memory(before + plan.transient,
                      "quantizing: the quantized weights (" + gib(plan.resident) + (random ? ", drawn at random first as " + gib(plan.source) : "") +
                          ") and one layer's copies (" + gib(plan.transient) + ")",
                      "free memory, or quantize on a machine with more");
  }

  QuantSpec quant_;
  StateDict weights_;
  std::vector<LayerShape> layers_;
  int done_ = 0;
};

Quantizer::Quantizer(const std::string& checkpoint_path, const std::string& format, const ModelSpec& model,
                     const std::string& quantize) {
  guarded("quantize", [&] { state_ = std::make_unique<QuantizerState>(checkpoint_path, format, model, quantize); });
}
Quantizer::~Quantizer() = default;
int Quantizer::layers() const { return state_->layers(); }
int Quantizer::done() const { return state_->done(); }
std::string Quantizer::quantization() const { return state_->quantization(); }
std::string Quantizer::next() {
  return guarded("quantize", [&] {
    c10::InferenceMode no_grad;
    return state_->next();
  });
}
void Quantizer::save(const std::string& out_path) {
  guarded("saving quantized checkpoint", [&] { state_->save(out_path); });
}

}  // namespace gptfast
