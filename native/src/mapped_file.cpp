#include "mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "errors.h"
#include "huge_pages.h"
#include "load_progress.h"

namespace gptfast {

namespace {

thread_local int64_t copied_bytes = 0;

// The context of every DataPtr into a mapping: one reference to it. Compared by address in
// views_mapping(), so nothing else may use this deleter.
void release_view(void* context) { delete static_cast<std::shared_ptr<MappedFile>*>(context); }

const MappedFile* mapping_of(const at::Tensor& t) {
  if (!t.defined() || !t.has_storage()) return nullptr;
  const at::DataPtr& p = t.storage().data_ptr();
  if (p.get_deleter() != &release_view) return nullptr;
  return static_cast<std::shared_ptr<MappedFile>*>(p.get_context())->get();
}

std::string str(uint64_t v) { return std::to_string(v); }

}  // namespace

MappedFile::MappedFile(std::string path, int fd, void* base, uint64_t size)
    : path_(std::move(path)), fd_(fd), base_(base), size_(size) {}

MappedFile::~MappedFile() {
  if (base_ != nullptr) munmap(base_, size_);
  close(fd_);
}

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open checkpoint '" + path + "': " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    throw Error("checkpoint '" + path + "' is not a regular file");
  }
  const uint64_t size = uint64_t(st.st_size);
  void* base = nullptr;
  if (size > 0) {
    // MAP_PRIVATE, PROT_READ: nothing writes through it; pages are read on first touch.
    base = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (base == MAP_FAILED) {
      const int err = errno;
      close(fd);
      throw Error("cannot map checkpoint '" + path + "': " + std::strerror(err));
    }
  }
  return std::shared_ptr<MappedFile>(new MappedFile(path, fd, base, size));
}

at::DataPtr MappedFile::data_ptr(uint64_t offset, uint64_t bytes, const std::string& what) {
  if (offset > size_ || bytes > size_ - offset) {
    throw Error("checkpoint '" + path_ + "' is truncated or corrupt: " + what + " needs bytes " + str(offset) + ".." +
                str(offset + bytes) + " of a " + str(size_) + "-byte file");
  }
  void* where = const_cast<uint8_t*>(data()) + offset;
  return at::DataPtr(where, new std::shared_ptr<MappedFile>(shared_from_this()), &release_view, at::Device(at::kCPU));
}

at::Tensor MappedFile::view(uint64_t offset, at::IntArrayRef shape, at::ScalarType dtype, const std::string& what) {
  uint64_t bytes = c10::elementSize(dtype);
  for (const int64_t d : shape) bytes *= uint64_t(d);
  at::DataPtr p = data_ptr(offset, bytes, what);  // checks the range first
  if (offset % c10::elementSize(dtype) != 0) return {};  // misaligned elements: not viewed in place
  c10::Storage storage(c10::Storage::use_byte_size_t(), bytes, std::move(p), /*allocator=*/nullptr,
                       /*resizable=*/false);
  return at::empty({0}, at::TensorOptions().dtype(dtype)).set_(storage, 0, shape);
}

void MappedFile::check_still_holds(uint64_t end) const {
  struct stat st {};
  if (fstat(fd_, &st) != 0 || uint64_t(st.st_size) < end) {
    throw Error("checkpoint '" + path_ + "' changed while loading: it now has " + str(uint64_t(st.st_size)) +
                " bytes, " + str(end) + " were mapped (truncated or rewritten?)");
  }
}

bool views_mapping(const at::Tensor& t) { return mapping_of(t) != nullptr; }

at::Tensor new_weights(at::IntArrayRef shape, const at::TensorOptions& options, bool huge_pages) {
  int64_t numel = 1;
  for (const int64_t d : shape) numel *= d;
  const size_t bytes = size_t(numel) * c10::elementSize(c10::typeMetaToScalarType(options.dtype()));
  if (huge_pages && options.device().is_cpu() && bytes >= (size_t(2) << 20)) {
    if (auto memory = huge_page_alloc(bytes)) {
      at::Tensor t = at::from_blob(memory.get(), shape, [](void* q) { std::free(q); }, options);
      memory.release();  // owned by the tensor's deleter now
      return t;
    }
  }
  return at::empty(shape, options);
}

void copy_into(at::Tensor dest, const at::Tensor& part) {
  if (const MappedFile* file = mapping_of(part)) {
    if (part.numel() > 0) {  // the furthest byte this view reads must still be in the file
      int64_t last = 0;
      for (int64_t d = 0; d < part.dim(); ++d) last += (part.size(d) - 1) * part.stride(d);
      const uint64_t begin = uint64_t(static_cast<const uint8_t*>(part.data_ptr()) - file->data());
      file->check_still_holds(begin + uint64_t(last + 1) * part.element_size());
    }
    copied_bytes += int64_t(part.nbytes());
    load_progress_copied(int64_t(part.nbytes()));
  }
  if (part.numel() == 0) return;
  if (dest.sizes() == part.sizes()) dest.copy_(part);
  else dest.view(part.sizes()).copy_(part);
}

at::Tensor copy_weights(const std::vector<at::Tensor>& parts, at::IntArrayRef shape, const at::TensorOptions& options,
                        bool huge_pages) {
  if (parts.size() == 1) {
    const at::Tensor& p = parts[0];
    const bool large_cpu = huge_pages && options.device().is_cpu() && p.nbytes() >= (size_t(2) << 20);
    const at::Device want = options.device();
    const bool same_device = p.device().type() == want.type() && (!want.has_index() || p.device().index() == want.index());
    if (!views_mapping(p) && !large_cpu && p.is_contiguous() && p.scalar_type() == options.dtype() && same_device) {
      return p.view(shape);
    }
  }
  at::Tensor out = new_weights(shape, options, huge_pages);
  int64_t row = 1;
  for (size_t i = 1; i < shape.size(); ++i) row *= shape[i];
  const int64_t rows_in_all = shape.empty() ? 1 : shape[0];
  int64_t at_row = 0;
  for (const at::Tensor& part : parts) {
    const int64_t rows = row == 0 ? 0 : part.numel() / row;
    if (rows * row != part.numel() || at_row + rows > rows_in_all) throw Error("internal: weight parts do not fit");
    copy_into(shape.empty() ? out : out.narrow(0, at_row, rows), part);
    at_row += rows;
  }
  if (at_row != rows_in_all) throw Error("internal: weight parts do not fill the tensor");
  return out;
}

at::Tensor owned(const at::Tensor& t) {
  if (!views_mapping(t)) return t;
  return copy_weights({t}, t.sizes(), t.options(), /*huge_pages=*/false);
}

int64_t mapped_bytes_copied() { return copied_bytes; }

}  // namespace gptfast
