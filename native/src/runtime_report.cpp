#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <sstream>
#include <string>

#include "gptfast/bench_api.h"
#include "matvec.h"

namespace gptfast {

std::string runtime_report() {
  std::ostringstream out;
  out << "decode kernels: " << automatic_kernel_name() << "\n";
  // at::get_parallel_info() is libtorch's own multi-line account (threads, OpenMP, MKL/OpenBLAS).
  std::istringstream info(at::get_parallel_info());
  for (std::string line; std::getline(info, line);) {
    size_t start = line.find_first_not_of(" \t");
    if (start != std::string::npos) out << "parallel: " << line.substr(start) << "\n";
  }
  bool cuda = at::hasCUDA();
  out << "cuda: " << (cuda ? "available" : "not available in this libtorch build or no driver") << "\n";
  if (cuda) out << "cuda devices: " << at::getNumGPUs() << "\n";
  return out.str();
}

}  // namespace gptfast
