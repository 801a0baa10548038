// Checkpoints are mapped, not read: the loaders hand out tensors that view a read-only mapping of
// the file, and each rank copies out only what it keeps (its shards, the replicated tensors). So
// a process's memory during loading is what its ranks keep, plus page cache the kernel can drop.
// copy_weights() is the one way weights leave a mapping: just before copying it checks that the
// file still holds the bytes (touching pages of a file truncated after mapping raises SIGBUS; only
// a truncation racing with the copy itself still can) and counts them.
//
// A loaded model keeps no view of the mapping, with tp = 1 too: a weight left mapped would fault
// (SIGBUS) if the file were truncated or rewritten while serving, and its pages could be evicted
// and read again mid-decode. Owning costs the single rank nothing extra: its large Linear weights
// are copied once, straight into the 2 MiB pages the fused decode step wants (before, they were
// read into memory and then copied there).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gptfast {

class MappedFile : public std::enable_shared_from_this<MappedFile> {
 public:
  // Maps the whole file read-only; throws Error naming the path.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }  // when mapped
  const uint8_t* data() const { return static_cast<const uint8_t*>(base_); }
  // Bytes [offset, offset + bytes) as a DataPtr that keeps this mapping alive; throws Error naming
  // the path and `what` when they are not inside the file.
  at::DataPtr data_ptr(uint64_t offset, uint64_t bytes, const std::string& what);
  // A contiguous CPU tensor of `shape` and `dtype` over those bytes; undefined when the offset is
  // not a multiple of the element size (the caller reads such a tensor instead).
  at::Tensor view(uint64_t offset, at::IntArrayRef shape, at::ScalarType dtype, const std::string& what);
  // Throws Error when the file is now shorter than `end` bytes (truncated since it was mapped).
  void check_still_holds(uint64_t end) const;

 private:
  MappedFile(std::string path, int fd, void* base, uint64_t size);
  std::string path_;
  int fd_;
  void* base_;
  uint64_t size_;
};

// Whether t's storage is a checkpoint mapping.
bool views_mapping(const at::Tensor& t);

// A new tensor of `shape` in `options` (dtype, device) holding `parts` one after another along
// dimension 0 (each part may be strided and of any shape with a whole number of rows of `shape`),
// converted. On the CPU, when huge_pages and the copy is 2 MiB or more, its memory is 2 MiB
// aligned with MADV_HUGEPAGE (decode streams each weight once per token: fewer TLB misses). A
// single part that is not a mapping and needs no conversion is returned as it is.
at::Tensor copy_weights(const std::vector<at::Tensor>& parts, at::IntArrayRef shape, const at::TensorOptions& options,
                        bool huge_pages);
// Uninitialised memory for weights of `shape` in `options` (2 MiB pages as above when asked).
at::Tensor new_weights(at::IntArrayRef shape, const at::TensorOptions& options, bool huge_pages);
// dest.copy_(part) (dest of part's shape, or contiguous with its element count), counted and
// checked like copy_weights when part views a mapping.
void copy_into(at::Tensor dest, const at::Tensor& part);
// t owning its memory: t itself unless it views a mapping, else a copy (same dtype, device).
at::Tensor owned(const at::Tensor& t);

// Bytes this thread has copied out of mappings (a test hook: Model counts them per rank).
int64_t mapped_bytes_copied();

}  // namespace gptfast
