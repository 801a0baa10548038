#include "gptfast/tokenizer_api.h"

#include <algorithm>
#include <vector>

#include "errors.h"

#if GPTFAST_WITH_SENTENCEPIECE
#include <sentencepiece_processor.h>

namespace gptfast {

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& model_path)
    : processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  const auto status = processor_->Load(model_path);
  if (!status.ok()) {
    throw Error("cannot load SentencePiece model '" + model_path + "': " + status.ToString());
  }
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

int SentencePieceTokenizer::vocab_size() const { return processor_->GetPieceSize(); }
int SentencePieceTokenizer::bos_id() const { return processor_->bos_id(); }
int SentencePieceTokenizer::eos_id() const { return processor_->eos_id(); }

int SentencePieceTokenizer::encode(const char* utf8, int n_bytes, int32_t* ids, int capacity) const {
  std::vector<int> out;
  const auto status = processor_->Encode(std::string(utf8, std::max(n_bytes, 0)), &out);
  if (!status.ok()) throw Error("SentencePiece encode failed: " + status.ToString());
  std::copy_n(out.begin(), std::min<size_t>(out.size(), std::max(capacity, 0)), ids);
  return int(out.size());
}

int SentencePieceTokenizer::decode(const int32_t* ids, int n_ids, char* utf8, int capacity) const {
  const int vocab = vocab_size();
  for (int i = 0; i < n_ids; ++i) {
    if (ids[i] < 0 || ids[i] >= vocab) {
      throw Error("token id " + std::to_string(ids[i]) + " is outside the tokenizer's vocabulary [0, " +
                  std::to_string(vocab) + ")");
    }
  }
  std::string text;
  const auto status = processor_->Decode(std::vector<int>(ids, ids + std::max(n_ids, 0)), &text);
  if (!status.ok()) throw Error("SentencePiece decode failed: " + status.ToString());
  std::copy_n(text.begin(), std::min<size_t>(text.size(), std::max(capacity, 0)), utf8);
  return int(text.size());
}

}  // namespace gptfast

#else
// Built without SentencePiece (benchmarks/gpu-check.sh on a machine with no network to fetch it):
// the engine is whole, and this tokenizer says why it cannot be used.
namespace sentencepiece {
class SentencePieceProcessor {};
}  // namespace sentencepiece

namespace gptfast {

namespace {
[[noreturn]] void missing() { throw Error("this libgptfast was built without SentencePiece (configure with GPTFAST_SPM_PREFIX)"); }
}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const std::string&) { missing(); }
SentencePieceTokenizer::~SentencePieceTokenizer() = default;
int SentencePieceTokenizer::vocab_size() const { missing(); }
int SentencePieceTokenizer::bos_id() const { missing(); }
int SentencePieceTokenizer::eos_id() const { missing(); }
int SentencePieceTokenizer::encode(const char*, int, int32_t*, int) const { missing(); }
int SentencePieceTokenizer::decode(const int32_t*, int, char*, int) const { missing(); }

}  // namespace gptfast
#endif
