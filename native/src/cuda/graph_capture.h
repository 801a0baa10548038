// Capturing a CUDA graph that may fail (an op that cannot be captured): one way to back out.
// CUDA builds only.
#pragma once

#include <ATen/cuda/CUDAGraph.h>
#include <cuda_runtime_api.h>

#include <exception>
#include <string>

#include "errors.h"

namespace gptfast::cuda {

// Captures f() into graph (allocations from pool) on the current stream. Returns "" when the
// capture succeeded, else the first line of why. A failure inside f leaves capture mode first
// (capture_end also stops routing the stream's allocations to the graph's pool; it throws for
// the invalidated capture) and clears CUDA's sticky error, so the caller can go on eagerly.
template <class F>
std::string try_capture(at::cuda::CUDAGraph& graph, F&& f, at::cuda::MempoolId_t pool = {0, 0}) {
  try {
    graph.capture_begin(pool);
    try {
      f();
    } catch (...) {
      try {
        graph.capture_end();
      } catch (...) {
      }
      cudaGetLastError();
      throw;
    }
    graph.capture_end();
  } catch (const std::exception& e) {
    return first_line(e.what());
  }
  return "";
}

}  // namespace gptfast::cuda
