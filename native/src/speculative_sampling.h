// The exact accept/reject rule of speculative sampling, torch-free and unit-testable.
#pragma once

#include <cstdint>

#include "random.h"

namespace gptfast {

// The accept/reject rule, a pure function. p: k+1 rows of target probabilities (row i is the
// distribution after the i-th proposed position; row k is the bonus row); q: k rows of draft
// probabilities; draft: the k proposed ids, each drawn from its q row. Writes the accepted ids
// followed by one resampled (or bonus) id to out and returns how many (1..k+1); *accepted gets
// the number of draft ids kept. residual: scratch of `vocab` floats.
int accept_or_resample(const float* p, const float* q, const int32_t* draft, int k, int vocab, Random& random,
                       float* residual, int32_t* out, int* accepted);

}  // namespace gptfast
