// GPT-Fast's model.pth: a torch.save zip archive holding a flat {name: tensor} dict.
#include <torch/csrc/jit/serialization/pickle.h>

#include <fstream>
#include <iterator>
#include <vector>

#include "state_dict.h"

namespace gptfast {

namespace {

std::vector<char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open checkpoint '" + path + "'");
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 4 || bytes[0] != 'P' || bytes[1] != 'K') {
    throw Error("checkpoint '" + path + "' is not a torch.save zip archive (bad magic)");
  }
  return bytes;
}

}  // namespace

StateDict load_pth(const std::string& path) {
  std::vector<char> bytes = read_file(path);
  c10::IValue root;
  try {
    root = torch::jit::pickle_load(bytes);
  } catch (const c10::Error& e) {
    throw Error("checkpoint '" + path + "' is corrupt or truncated: " + e.what_without_backtrace());
  }
  if (!root.isGenericDict()) {
    throw Error("checkpoint '" + path + "' does not hold a state dict (found " +
                root.tagKind() + ")");
  }
  StateDict weights;
  for (const auto& entry : root.toGenericDict()) {
    if (!entry.key().isString() || !entry.value().isTensor()) continue;  // e.g. metadata
    weights.emplace(entry.key().toStringRef(), entry.value().toTensor());
  }
  if (weights.empty()) throw Error("checkpoint '" + path + "' holds no tensors");
  return weights;
}

void merge_qkv(StateDict& weights, int n_layer) {
  for (int i = 0; i < n_layer; ++i) {
    const std::string prefix = "layers." + std::to_string(i) + ".attention.";
    auto q = weights.find(prefix + "wq.weight");
    auto k = weights.find(prefix + "wk.weight");
    auto v = weights.find(prefix + "wv.weight");
    if (q == weights.end() || k == weights.end() || v == weights.end()) continue;
    weights[prefix + "wqkv.weight"] = at::cat({q->second, k->second, v->second}, 0);
    weights.erase(prefix + "wq.weight");
    weights.erase(prefix + "wk.weight");
    weights.erase(prefix + "wv.weight");
  }
}

}  // namespace gptfast
