// What the checkpoint loaders tell the LoadProgress (engine_api.h) the loading thread watches,
// if any: the bytes they will read, then the bytes read as each tensor arrives.
#pragma once

#include <cstdint>

namespace gptfast {

void load_progress_expect(int64_t bytes);
void load_progress_read(int64_t bytes);

}  // namespace gptfast
