// Machine limits for benchmarks: what one CPU configuration can stream and compute, so measured
// decode throughput can be set against a memory roofline (bytes of weights per token) and a FLOP
// roofline (2 * parameters per token). Torch-free, like the other public headers.
#pragma once

#include <cstdint>
#include <string>

namespace gptfast {

struct MachineLimits {
  double read_bytes_per_second = 0;    // streaming read of a buffer far larger than the last-level cache,
                                       // in huge pages, by the decode step's thread team
  double matmul_flops_per_second = 0;  // fp32 at::mm of 1024 x 1024 matrices, 2*M*N*K per product
  int threads = 0;
};

// Measures with `threads` intra-op threads (the previous count is restored afterwards); takes well
// under 2 seconds. Read bandwidth: best of several passes summing a 512 MiB buffer. Matmul peak:
// median of several products. Throws std::runtime_error on failure (e.g. threads < 1).
MachineLimits measure_machine_limits(int threads);

// The read bandwidth of measure_machine_limits alone (about a quarter of a second). Benchmarks take
// one between timed runs and set each run against the probes beside it: a virtual machine's
// bandwidth drifts by a third within minutes, so one probe for a whole benchmark misstates the
// fraction of the limit reached. Throws std::runtime_error for threads < 1.
double measure_read_bandwidth(int threads);

// The thread count of the OpenBLAS that libtorch's CPU GEMMs run on (a session sets it to its own
// thread count, process-wide), or -1 where the loaded BLAS is not OpenBLAS.
int blas_thread_count();

// FLOP rate (2 * n_vectors * rows * cols per call, median of several calls) of the engine's own
// weights x vectors kernel (matmul_rows) on random fp32 data with `threads` threads, to compare it
// with at::mm and the machine limits. Throws std::runtime_error on invalid sizes.
double matmul_rows_flops(int threads, int n_vectors, int64_t rows, int64_t cols);

// One decode step's weight-only quantized Linear layers (per layer wqkv, wo, w1, w3, w2, then the
// output head: the engine's shapes for a Llama-shaped model) on random weights and `batch` rows of
// bf16 activations, timed on CUDA device 0 two ways: the engine's gemv kernels (cuda/kernels.h)
// and libtorch's weight-only ops (_weight_int8pack_mm; _weight_int4pack_mm on the weight after
// _convert_weight_to_int4pack), each path captured in a CUDA graph where it can be (else eager).
// quantize: "int8" or "int4[:G]". Never throws for a missing op or device: the field says why.
struct QuantLinearTiming {
  double own_us_per_step = -1;   // < 0: not measured (own_error says why)
  double aten_us_per_step = -1;  // < 0: not measured (aten_error says why)
  std::string own_mode, aten_mode;  // "graph" or "eager (<why the capture failed>)"
  std::string aten_op;
  std::string own_error, aten_error;
  double max_relative_difference = -1;  // |own - aten| / max |own| over one layer's outputs
};
QuantLinearTiming time_quantized_linears(const std::string& quantize, int batch, int dim, int n_layer, int n_head,
                                         int n_kv_heads, int ffn, int vocab);

// What this process runs on, for `gptfast doctor` and bug reports, as "key: value" lines: the CPU
// kernels chosen for this CPU, libtorch's parallel settings (at::get_parallel_info()) and CUDA
// devices. Never throws for a machine without CUDA.
std::string runtime_report();

}  // namespace gptfast
