// Which loader reads a checkpoint file: told apart by name and magic bytes, here only.
#include <cctype>
#include <cstring>
#include <fstream>

#include "state_dict.h"

namespace gptfast {

std::string checkpoint_format(const std::string& path) {
  std::string name = path.substr(path.find_last_of('/') + 1);
  for (char& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (ends_with(name, ".safetensors") || ends_with(name, ".safetensors.index.json")) return "safetensors";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read checkpoint " + path);
  char head[4] = {0, 0, 0, 0};
  in.read(head, 4);
  const bool full = in.gcount() == 4;
  if (full && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) return "pth";  // zip
  int32_t first = 0;
  std::memcpy(&first, head, 4);
  if (full && first == kLlama2cMagic) return "llama2c";
  if (ends_with(name, ".bin")) return "llama2c";  // legacy llama2.c has no magic
  if (ends_with(name, ".pth") || ends_with(name, ".pt")) {
    throw Error("checkpoint " + path + " is not a torch.save zip archive (bad magic)");
  }
  throw Error("cannot tell the format of checkpoint " + path +
              " (expected .pth, .safetensors, .safetensors.index.json or llama2.c .bin)");
}

}  // namespace gptfast
