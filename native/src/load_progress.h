// What the checkpoint loaders tell the LoadProgress (engine_api.h) the loading thread watches,
// if any: the bytes they will read, then the bytes read as each tensor arrives. A tensor a loader
// maps (mapped_file.h) is read later, when ranks copy from it: the loader owes its bytes, each copy
// out of a mapping pays them off, and the end of the load settles what is left (bytes no rank of
// this process copies: other nodes' shards, tensors never used).
#pragma once

#include <cstdint>

namespace gptfast {

void load_progress_expect(int64_t bytes);
void load_progress_read(int64_t bytes);
void load_progress_owe(int64_t bytes);
void load_progress_copied(int64_t bytes);
void load_progress_settle();

}  // namespace gptfast
