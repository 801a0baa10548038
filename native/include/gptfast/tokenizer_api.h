// SentencePiece for Java, torch-free and bound by JavaCPP. Text crosses the boundary as UTF-8
// bytes (JNI's modified UTF-8 would mangle emoji). Buffers are caller-owned: each call returns
// the size it needs, and the caller retries with a larger buffer when that exceeds capacity.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace sentencepiece { class SentencePieceProcessor; }

namespace gptfast {

class SentencePieceTokenizer {
 public:
  explicit SentencePieceTokenizer(const std::string& model_path);
  ~SentencePieceTokenizer();
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  int vocab_size() const;
  int bos_id() const;
  int eos_id() const;

  // Encodes utf8[0..n_bytes) without BOS/EOS; writes at most capacity ids; returns the id count.
  int encode(const char* utf8, int n_bytes, int32_t* ids, int capacity) const;
  // Decodes ids into UTF-8; writes at most capacity bytes; returns the byte count.
  int decode(const int32_t* ids, int n_ids, char* utf8, int capacity) const;

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

}  // namespace gptfast
