// Manual benchmark (not a test): the engine step alone, in C++ (no JNI, no Java bookkeeping, no
// detokenization; sampling included, as it runs inside Session::step): greedy decode tok/s of
// `new_tokens` steps after a 5-token prompt, median of `runs` after one warm-up run, and the
// median fraction of that time outside the model's forward passes (sampling, step planning). The baseline
// for the end-to-end overhead of the Java TokenListener and CLI paths
// (benchmarks/end-to-end-overhead.sh).
//   gptfast_decode_bench model.bin [threads=1] [new_tokens=256] [runs=9] [dtype=fp32] [quantize, e.g. int8]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "gptfast/engine_api.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s llama2c-model.bin [threads] [new_tokens] [runs] [dtype]\n", argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  const int threads = argc > 2 ? std::atoi(argv[2]) : 1;
  const int new_tokens = argc > 3 ? std::atoi(argv[3]) : 256;
  const int runs = argc > 4 ? std::atoi(argv[4]) : 9;
  const std::string dtype = argc > 5 ? argv[5] : "fp32";
  const std::string quantize = argc > 6 ? argv[6] : "";
  try {
    gptfast::Session session(path, "llama2c", gptfast::llama2c_model(path), dtype, "cpu", threads, 0, 1, 0, quantize, 1);
    const int32_t prompt[] = {1, 200, 300, 400, 500};
    std::vector<int32_t> out(session.max_tokens_per_step());
    std::vector<double> rates, outside;
    for (int run = 0; run <= runs; ++run) {
      gptfast::SamplingSpec greedy;
      session.start(0, greedy, 0, prompt, 5);
      const int32_t slot = 0;
      int32_t count = 0;
      session.step(&slot, 1, out.data(), int(out.size()), &count);  // prompt + first token
      const int64_t forward0 = session.forward_nanos();
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 1; i < new_tokens; ++i) session.step(&slot, 1, out.data(), int(out.size()), &count);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double forward = (session.forward_nanos() - forward0) / 1e9;
      session.release(0);
      if (run > 0) rates.push_back((new_tokens - 1) / s);
      if (run > 0) outside.push_back(1 - forward / s);
    }
    std::sort(rates.begin(), rates.end());
    std::sort(outside.begin(), outside.end());
    std::printf("{\"path\":\"native\",\"threads\":%d,\"dtype\":\"%s\",\"quantize\":\"%s\",\"new_tokens\":%d,"
                "\"decode_tokens_per_second\":%.1f,\"overhead_fraction\":%.4f}\n",
                threads, dtype.c_str(), quantize.c_str(), new_tokens, rates[rates.size() / 2], outside[outside.size() / 2]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
