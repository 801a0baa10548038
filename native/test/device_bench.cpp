// Manual benchmark (not a test), the decode benchmark of benchmarks/gpu-check.sh: greedy decode
// of a random-weight model of any shape on any device, batch as a dimension, next to the memory
// limit measured in the same process (on a GPU the device-to-device copy bandwidth, counted as
// bandwidthTest does, bytes read + bytes written; on the CPU the streaming read bandwidth).
// One JSON object per line on stdout, with the fraction of the weight-streaming roofline reached.
//   gptfast_device_bench --name 7B --dim 4096 --layers 32 --heads 32 --kv-heads 32 --ffn 11008
//                        --vocab 32000 [--rope-base 10000] [--device cuda] [--dtype bf16]
//                        [--quantize int8|int4[:G]] [--batch 1] [--new-tokens 128] [--runs 3]
//                        [--compare-aten 1]
// With --quantize on a CUDA device (and --compare-aten 1, the default), a second line times one
// decode step's quantized Linear layers of the same shapes with the engine's gemv kernels and
// with libtorch's _weight_int8pack_mm / _weight_int4pack_mm ("kind":"quantized_linears").
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "gptfast/bench_api.h"
#include "gptfast/engine_api.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Best of several copies of a 1 GiB buffer on the device, in (read + written) bytes per second.
double device_copy_bandwidth(const at::Device& device) {
  const int64_t bytes = int64_t(1) << 30;
  at::Tensor a = at::empty({bytes}, at::TensorOptions().dtype(at::kByte).device(device)).fill_(1);
  at::Tensor b = at::empty_like(a);
  double best = 0;
  for (int i = 0; i < 8; ++i) {
    b.copy_(a);  // the first copy warms up
    if (device.is_cuda()) at::zeros({1}, a.options()).cpu();  // waits for the device
    const auto t0 = Clock::now();
    for (int r = 0; r < 4; ++r) b.copy_(a);
    if (device.is_cuda()) b.narrow(0, 0, 1).cpu();
    if (i > 0) best = std::max(best, 4.0 * 2 * double(bytes) / seconds_since(t0));
  }
  return best;
}

std::string json_string(std::string s) {
  std::replace(s.begin(), s.end(), '"', '\'');
  std::replace(s.begin(), s.end(), '\\', '/');
  return s;
}

void print_quantized_linears(const std::string& name, const std::string& quantize, int batch,
                             const gptfast::ModelSpec& spec) {
  const gptfast::QuantLinearTiming t = gptfast::time_quantized_linears(
      quantize, batch, spec.dim, spec.n_layer, spec.n_head, spec.n_local_heads, spec.intermediate_size, spec.vocab_size);
  std::printf(
      "{\"kind\":\"quantized_linears\",\"name\":\"%s\",\"quantize\":\"%s\",\"batch_size\":%d,"
      "\"own_us_per_step\":%.1f,\"own_mode\":\"%s\",\"own_error\":\"%s\",\"aten_op\":\"%s\","
      "\"aten_us_per_step\":%.1f,\"aten_mode\":\"%s\",\"aten_error\":\"%s\",\"max_relative_difference\":%.3g}\n",
      name.c_str(), quantize.c_str(), batch, t.own_us_per_step, json_string(t.own_mode).c_str(),
      json_string(t.own_error).c_str(), t.aten_op.c_str(), t.aten_us_per_step, json_string(t.aten_mode).c_str(),
      json_string(t.aten_error).c_str(), t.max_relative_difference);
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> a = {{"--name", "model"}, {"--device", "cuda"}, {"--dtype", "bf16"},
                                          {"--quantize", ""},   {"--batch", "1"},       {"--new-tokens", "128"},
                                          {"--runs", "3"},      {"--rope-base", "10000"}, {"--threads", "0"},
                                          {"--compare-aten", "1"}};
  for (int i = 1; i + 1 < argc; i += 2) a[argv[i]] = argv[i + 1];
  for (const char* required : {"--dim", "--layers", "--heads", "--kv-heads", "--ffn", "--vocab"}) {
    if (!a.count(required)) {
      std::fprintf(stderr, "missing %s\nusage: %s --dim D --layers L --heads H --kv-heads K --ffn F --vocab V [--name N] "
                   "[--device cuda] [--dtype bf16] [--quantize int8|int4[:G]] [--batch B] [--new-tokens N] [--runs R]\n",
                   required, argv[0]);
      return 2;
    }
  }
  try {
    gptfast::ModelSpec spec;
    spec.dim = std::stoi(a["--dim"]);
    spec.n_layer = std::stoi(a["--layers"]);
    spec.n_head = std::stoi(a["--heads"]);
    spec.n_local_heads = std::stoi(a["--kv-heads"]);
    spec.head_dim = spec.dim / spec.n_head;
    spec.intermediate_size = std::stoi(a["--ffn"]);
    spec.vocab_size = std::stoi(a["--vocab"]);
    spec.rope_base = std::stof(a["--rope-base"]);
    const int batch = std::stoi(a["--batch"]), new_tokens = std::stoi(a["--new-tokens"]), runs = std::stoi(a["--runs"]);
    const int threads = std::stoi(a["--threads"]);
    // 5 prompt tokens, as GPT-Fast's benchmark prompt has, inside any vocabulary.
    std::vector<int32_t> prompt = {1, 450, 4996, 17354, 1701};
    for (int32_t& t : prompt) t %= spec.vocab_size;
    // A cache as long as the run needs (GPT-Fast sizes it prompt + new tokens too): attention
    // reads the whole cache under a mask each step.
    const int cache = int(prompt.size()) + new_tokens + 8;
    spec.block_size = cache;
    const at::Device device(a["--device"]);
    if (device.is_cuda() && (!at::hasCUDA() || at::getNumGPUs() <= std::max<int>(device.index(), 0))) {
      // Said first, in one line, before the bandwidth probe meets it as a libtorch error.
      throw std::runtime_error("--device " + device.str() + ": no CUDA device (libtorch CUDA available: " +
                               (at::hasCUDA() ? "yes" : "no") + ", devices: " +
                               std::to_string(at::hasCUDA() ? at::getNumGPUs() : 0) + ")");
    }

    const double bandwidth = device.is_cpu() ? gptfast::measure_machine_limits(std::max(threads, 1)).read_bytes_per_second
                                             : device_copy_bandwidth(device);
    {  // the session's weights leave the device before the Linear comparison's arrive
      const auto load0 = Clock::now();
      gptfast::Session session("1", "random", spec, a["--dtype"], a["--device"], threads, cache, batch, 0, a["--quantize"], 1);
      const double load_s = seconds_since(load0);

      std::vector<int32_t> slots(batch), counts(batch), out(batch * session.max_tokens_per_step());
      for (int b = 0; b < batch; ++b) slots[b] = b;
      std::vector<double> rates, prefill_s;
      for (int run = 0; run <= runs; ++run) {  // run 0 warms up (and captures the graphs)
        for (int b = 0; b < batch; ++b) session.start(b, gptfast::SamplingSpec{}, 0, prompt.data(), int(prompt.size()));
        const auto p0 = Clock::now();
        session.step(slots.data(), batch, out.data(), session.max_tokens_per_step(), counts.data());  // prefill + 1st token
        const double p = seconds_since(p0);
        const auto t0 = Clock::now();
        for (int i = 1; i < new_tokens; ++i) {
          session.step(slots.data(), batch, out.data(), session.max_tokens_per_step(), counts.data());
        }
        const double s = seconds_since(t0);
        for (int b = 0; b < batch; ++b) session.release(b);
        if (run > 0) {
          rates.push_back(double(new_tokens - 1) * batch / s);
          prefill_s.push_back(p);
        }
      }
      const double tok_s = median(rates);
      const double weight_bytes = double(session.weight_bytes());
      // Each decode step streams every weight once for the whole batch.
      const double roofline_steps = bandwidth / weight_bytes;
      const double steps = tok_s / batch;
      std::string describe = session.describe();
      std::replace(describe.begin(), describe.end(), '"', '\'');
      std::printf(
          "{\"name\":\"%s\",\"device\":\"%s\",\"dtype\":\"%s\",\"quantize\":\"%s\",\"batch_size\":%d,\"prompt_tokens\":%zu,"
          "\"new_tokens\":%d,\"decode_tokens_per_second\":%.1f,\"decode_tokens_per_second_per_sequence\":%.1f,"
          "\"first_step_seconds\":%.4f,\"weight_bytes\":%.0f,\"bandwidth_bytes_per_second\":%.4g,"
          "\"roofline_steps_per_second\":%.1f,\"roofline_fraction\":%.3f,\"load_seconds\":%.1f,\"describe\":\"%s\"}\n",
          a["--name"].c_str(), a["--device"].c_str(), a["--dtype"].c_str(), a["--quantize"].c_str(), batch, prompt.size(),
          new_tokens, tok_s, steps, median(prefill_s), weight_bytes, bandwidth, roofline_steps, steps / roofline_steps, load_s,
          describe.c_str());
      std::fflush(stdout);
    }
    if (!a["--quantize"].empty() && device.is_cuda() && a["--compare-aten"] != "0") {
      print_quantized_linears(a["--name"], a["--quantize"], batch, spec);
    }
  } catch (const std::exception& e) {
    std::string what = e.what();
    std::fprintf(stderr, "gptfast_device_bench: %s\n", what.substr(0, what.find('\n')).c_str());
    return 1;
  }
  return 0;
}
