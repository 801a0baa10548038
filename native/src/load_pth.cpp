// GPT-Fast's model.pth: a torch.save zip archive holding a flat {name: tensor} dict.
//
// Read with libtorch's own zip reader and unpickler. Tensor records are not read: torch.save
// stores them uncompressed at 64-byte aligned offsets, so each storage views a mapping of the
// file (mapped_file.h) at getRecordOffset; a record stored otherwise (compressed, or unaligned by
// another zip tool) is read into memory instead. One adaptation: torch.save(module.state_dict()) pickles an OrderedDict
// with a _metadata attribute, which libtorch's C++ unpickler turns into None (it only expects
// OrderedDicts as a tensor's unused backward hooks). The pickle is rewritten first so that
// every OrderedDict is built as a plain dict and the _metadata state is dropped (see
// plain_dicts below); GPT-Fast's quantize.py writes exactly such files.
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/unpickler.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

#include "load_progress.h"
#include "mapped_file.h"
#include "state_dict.h"

namespace gptfast {

namespace {

void check_zip_magic(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open checkpoint '" + path + "'");
  char head[2] = {0, 0};
  in.read(head, 2);
  if (in.gcount() != 2 || head[0] != 'P' || head[1] != 'K') {
    throw Error("checkpoint '" + path + "' is not a torch.save zip archive (bad magic)");
  }
}

// Walks a pickle (protocols 2-4 as torch.save writes them) opcode by opcode and rewrites
//   GLOBAL collections.OrderedDict ... EMPTY_TUPLE REDUCE   ->  ... NEWOBJ EMPTY_DICT
// (also where the class is fetched again from the memo), and BUILD -> NEWOBJ (the only BUILD in
// a state dict sets the OrderedDict's _metadata). libtorch's unpickler has no POP, but its NEWOBJ
// just drops the top of the stack. Returns nullopt when it meets an opcode it does
// not know, so that the caller unpickles the original bytes and reports libtorch's error.
// Throws CorruptPickle for what libtorch would turn into a huge allocation instead of an error:
// an argument running past the end (a string of up to 4 GiB) or a memo index beyond anything
// this pickle could have stored (libtorch resizes its memo table to the index).
struct CorruptPickle : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::optional<std::string> plain_dicts(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  size_t pos = 0;
  auto need = [&](size_t n) { return pos + n <= in.size(); };
  auto past_end = [&](size_t n) {
    return CorruptPickle("pickle opcode at byte " + std::to_string(pos - 1) + " needs " + std::to_string(n) +
                         " bytes, " + std::to_string(in.size() - pos) + " left");
  };
  auto le = [&](size_t at, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | uint8_t(in[at + size_t(i)]);
    return v;
  };
  int64_t od_memo = -1;  // memo slot holding collections.OrderedDict (-1: none)
  bool od_on_top = false;           // the last value pushed is that class
  bool empty_tuple_after_od = false;
  while (pos < in.size()) {
    const char op = in[pos];
    const size_t start = pos++;
    size_t arg = 0;  // bytes of argument after the opcode
    bool pushes_od = false;
    switch (op) {
      case '(': case '.': case '0': case '1': case '2': case 'N': case 'Q': case 'a': case 'd': case '}':
      case 'e': case 'l': case ']': case 's': case 'u': case 't': case '\x85': case '\x86': case '\x87':
      case '\x88': case '\x89': case '\x81': case '\x94':
        break;
      case ')':
        if (od_on_top) {
          empty_tuple_after_od = true;
          od_on_top = false;
          continue;  // held back until we see whether REDUCE follows
        }
        break;
      case 'R':
        if (empty_tuple_after_od) {
          out += "\x81}";  // drop the class, push a plain dict
          empty_tuple_after_od = false;
          continue;
        }
        break;
      case 'b':
        if (empty_tuple_after_od) out += ')';
        out += '\x81';  // drop the state (the state dict's _metadata)
        empty_tuple_after_od = od_on_top = false;
        continue;
      case '\x80': case 'K': case 'q': case 'h': arg = 1; break;
      case 'M': arg = 2; break;
      case 'J': case 'r': case 'j': arg = 4; break;
      case 'G': case '\x95': arg = 8; break;
      case '\x8a': case '\x8c': case 'C': case 'U':
        if (!need(1)) throw past_end(1);
        arg = 1 + size_t(uint8_t(in[pos]));
        break;
      case '\x8b': case 'X': case 'B': case 'T':
        if (!need(4)) throw past_end(4);
        arg = 4 + size_t(le(pos, 4));
        break;
      case '\x8d':
        if (!need(8)) throw past_end(8);
        arg = 8 + std::min<uint64_t>(le(pos, 8), in.size());  // capped: the check below fails
        break;
      case 'c': {  // module\nname\n
        const size_t a = in.find('\n', pos);
        const size_t b = a == std::string::npos ? a : in.find('\n', a + 1);
        if (b == std::string::npos) return std::nullopt;
        pushes_od = in.compare(pos, b - pos, "collections\nOrderedDict") == 0;
        arg = b + 1 - pos;
        break;
      }
      case 'I': case 'L': case 'S': case 'V': case 'F': case 'g': case 'p': {
        const size_t a = in.find('\n', pos);
        if (a == std::string::npos) return std::nullopt;
        arg = a + 1 - pos;
        break;
      }
      default:
        return std::nullopt;
    }
    if (!need(arg)) throw past_end(arg);
    if ((op == 'r' || op == 'j') && le(pos, 4) >= in.size()) {
      throw CorruptPickle("pickle memo index " + std::to_string(le(pos, 4)) + " at byte " + std::to_string(start) +
                          " is beyond its " + std::to_string(in.size()) + " bytes");
    }
    if (empty_tuple_after_od) {  // an EMPTY_TUPLE after the class but no REDUCE: keep it as it was
      out += ')';
      empty_tuple_after_od = false;
    }
    // Track the OrderedDict class through the memo: PUT after GLOBAL, GET of that slot.
    if (op == 'q' || op == 'r') {
      const uint64_t slot = le(pos, op == 'q' ? 1 : 4);
      if (od_on_top) od_memo = int64_t(slot);
      else if (od_memo == int64_t(slot)) od_memo = -1;
      pushes_od = od_on_top;  // PUT leaves the value on the stack
    } else if (op == 'h' || op == 'j') {
      pushes_od = od_memo >= 0 && int64_t(le(pos, op == 'h' ? 1 : 4)) == od_memo;
    }
    od_on_top = pushes_od;
    out.append(in, start, 1 + arg);
    pos += arg;
  }
  if (empty_tuple_after_od) out += ')';
  return out;
}

}  // namespace

namespace {

// The record's bytes in the mapping when the zip stores it uncompressed at a 64-byte aligned
// offset inside the file; an empty DataPtr otherwise.
at::DataPtr mapped_record(caffe2::serialize::PyTorchStreamReader& reader, MappedFile& file, const std::string& name,
                          size_t size) {
  const uint64_t header = reader.getRecordHeaderOffset(name);
  // Local file header: signature "PK\3\4", then the compression method at byte 8 (0: stored).
  if (header > file.size() || file.size() - header < 30) return {};
  const uint8_t* h = file.data() + header;
  const bool stored = h[0] == 'P' && h[1] == 'K' && h[2] == 3 && h[3] == 4 && h[8] == 0 && h[9] == 0;
  if (!stored) return {};
  const uint64_t offset = reader.getRecordOffset(name);
  if (offset % 64 != 0) return {};
  return file.data_ptr(offset, size, "record '" + name + "'");  // throws when it runs past the end
}

}  // namespace

StateDict load_pth(const std::string& path) {
  check_zip_magic(path);
  c10::IValue root;
  // The bytes handed out for each storage, to check the pickle's sizes against.
  std::map<const void*, std::pair<std::string, size_t>> records;
  try {
    const std::shared_ptr<MappedFile> file = MappedFile::open(path);
    caffe2::serialize::PyTorchStreamReader reader(path);
    const int64_t file_size = int64_t(file->size());
    int64_t counted = 0;
    load_progress_expect(file_size);
    auto [data, size] = reader.getRecord("data.pkl");
    const std::string original(static_cast<const char*>(data.get()), size);
    const std::string pickle = plain_dicts(original).value_or(original);
    size_t read = 0;
    torch::jit::Unpickler unpickler(
        [&](char* buffer, size_t n) {
          n = std::min(n, pickle.size() - read);
          std::memcpy(buffer, pickle.data() + read, n);
          read += n;
          return n;
        },
        /*type_resolver=*/nullptr, /*obj_loader=*/nullptr,
        [&](const std::string& key) {
          const std::string name = "data/" + key;
          const size_t bytes = reader.getRecordSize(name);
          at::DataPtr record = mapped_record(reader, *file, name, bytes);
          if (record) {
            load_progress_owe(int64_t(bytes));  // read when a rank copies it
          } else {
            record = std::get<0>(reader.getRecord(name));
            load_progress_read(int64_t(bytes));
          }
          counted += int64_t(bytes);
          records[record.get()] = {name, bytes};
          return record;
        },
        /*device=*/std::nullopt);
    root = unpickler.parse_ivalue();
    if (file_size > counted) load_progress_read(file_size - counted);  // the pickle and zip headers
  } catch (const c10::Error& e) {
    throw Error("checkpoint '" + path + "' is corrupt or truncated: " + e.what_without_backtrace());
  } catch (const CorruptPickle& e) {
    throw Error("checkpoint '" + path + "' is corrupt or truncated: " + e.what());
  }
  if (!root.isGenericDict()) {
    throw Error("checkpoint '" + path + "' does not hold a state dict (found " + root.tagKind() + ")");
  }
  StateDict weights;
  for (const auto& entry : root.toGenericDict()) {
    if (!entry.key().isString() || !entry.value().isTensor()) continue;  // e.g. metadata
    const std::string& name = entry.key().toStringRef();
    const at::Tensor& t = entry.value().toTensor();
    // The pickle gives each storage its size; a record must hold it (a mapped one would otherwise
    // be read past its end, or past the file's).
    auto record = records.find(t.storage().data());
    if (record != records.end() && t.storage().nbytes() > record->second.second) {
      throw Error("checkpoint '" + path + "' is corrupt or truncated: tensor '" + name + "' needs " +
                  std::to_string(t.storage().nbytes()) + " bytes, its record '" + record->second.first + "' holds " +
                  std::to_string(record->second.second));
    }
    weights.emplace(name, t);
  }
  if (weights.empty()) throw Error("checkpoint '" + path + "' holds no tensors");
  return weights;
}

}  // namespace gptfast
