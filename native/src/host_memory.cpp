#include "host_memory.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "env_switch.h"

namespace gptfast {

namespace {

bool is_norm_or_embedding(const std::string& name) {
  return name == "tok_embeddings.weight" || ends_with(name, "norm.weight");
}

// First number after `key` in /proc/meminfo, in bytes; -1 if absent.
int64_t meminfo(const std::string& text, const std::string& key) {
  const size_t at = text.find("\n" + key + ":");
  if (at == std::string::npos) return -1;
  long long kib = -1;
  if (std::sscanf(text.c_str() + at + key.size() + 2, " %lld", &kib) != 1) return -1;
  return int64_t(kib) * 1024;
}

std::string read_all(const char* path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

int64_t cgroup_room(const char* limit_path, const char* usage_path, const char* stat_path, const char* inactive_key) {
  long long limit = -1, usage = -1;
  const std::string l = read_all(limit_path), u = read_all(usage_path);
  if (std::sscanf(l.c_str(), "%lld", &limit) != 1 || std::sscanf(u.c_str(), "%lld", &usage) != 1) return -1;
  if (limit <= 0 || limit >= (int64_t(1) << 60)) return -1;  // v1 writes "no limit" as ~2^63
  const std::string stat = "\n" + read_all(stat_path);
  const size_t at = stat.find("\n" + std::string(inactive_key) + " ");
  long long inactive = 0;
  if (at != std::string::npos) std::sscanf(stat.c_str() + at + 1 + std::strlen(inactive_key), " %lld", &inactive);
  return std::max<int64_t>(0, limit - std::max<int64_t>(0, usage - inactive));
}

std::string gib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", double(bytes) / double(int64_t(1) << 30));
  return buf;
}

HostWeights plan_host_weights(const StateDict& weights, const QuantSpec& quant, at::ScalarType dtype) {
  HostWeights plan;
  const int64_t element = int64_t(c10::elementSize(dtype));
  for (const auto& [name, t] : weights) {
    const int64_t numel = t.numel();
    plan.source += numel * int64_t(t.element_size());
    plan.largest = std::max(plan.largest, numel);
    int64_t kept = 0, held = 0;
    if (name.rfind("gptfast4j.", 0) == 0) {
      continue;  // a marker (state_dict.h), read and dropped
    } else if (const WeightKind scales = scales_kind(name); scales != WeightKind::dense) {
      // A quantized file's: int8 scales are kept in fp32, int4 scales and zeros in bf16.
      kept = numel * int64_t(scales == WeightKind::int8 ? sizeof(float) : sizeof(at::BFloat16));
      held = kept + numel * int64_t(t.element_size());
    } else if (!at::isFloatingType(t.scalar_type())) {
      kept = numel * int64_t(t.element_size());  // already quantized: stored as is
      held = kept;
    } else if (is_norm_or_embedding(name) || t.dim() != 2) {
      kept = numel * element;
      held = kept;
      if (is_norm_or_embedding(name)) plan.replicated += kept;
    } else if (quant.kind == WeightKind::dense) {
      kept = numel * element;
      held = kept;
    } else {
      // A Linear weight quantized at load: its copy in the file's dtype, quantize()'s fp32
      // temporaries for one block of rows (at most three alive at once), and the result.
      const int64_t out = t.size(0), in = t.size(1);
      if (quant.kind == WeightKind::int8) {
        kept = out * in + out * int64_t(sizeof(float));  // int8 weights, fp32 scales
      } else {  // int4: two columns a byte over the padded width, a bf16 scale and zero per group
        const int64_t padded = int4_padded_in(in, quant.group);
        kept = out * (padded / 2) + out * (padded / quant.group) * 2 * int64_t(sizeof(at::BFloat16));
      }
      held = numel * int64_t(t.element_size()) + 3 * std::min(out, kQuantizeRows) * in * int64_t(sizeof(float)) + kept;
    }
    if (name == "output.weight" || name == std::string("output") + kInt8ScalesSuffix ||
        name == std::string("output") + kInt4ScalesSuffix) {
      plan.replicated += kept;  // every tensor-parallel rank holds the whole head
    }
    plan.resident += kept;
    plan.transient = std::max(plan.transient, held);
  }
  return plan;
}

int64_t host_memory_available(std::string* from) {
  const std::string info = read_all("/proc/meminfo");
  const int64_t available = meminfo(info, "MemAvailable"), swap = meminfo(info, "SwapFree");
  int64_t room = available < 0 ? -1 : available + std::max<int64_t>(0, swap);
  if (from) *from = swap > 0 ? "MemAvailable + SwapFree" : "MemAvailable";
  struct Cgroup {
    const char *limit, *usage, *stat, *inactive;
  };
  for (const Cgroup& c : {Cgroup{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current",
                                 "/sys/fs/cgroup/memory.stat", "inactive_file"},
                          Cgroup{"/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                 "/sys/fs/cgroup/memory/memory.usage_in_bytes", "/sys/fs/cgroup/memory/memory.stat",
                                 "total_inactive_file"}}) {
    const int64_t cgroup = cgroup_room(c.limit, c.usage, c.stat, c.inactive);
    if (cgroup >= 0 && (room < 0 || cgroup < room)) {
      room = cgroup;
      if (from) *from = std::string("the cgroup limit ") + c.limit;
    }
  }
  return room;
}

void check_host_memory(int64_t need, const std::string& what, const std::string& advice) {
  if (!switched_on("GPTFAST_MEMORY_CHECK")) return;
  std::string from;
  const int64_t room = host_memory_available(&from);
  if (room < 0 || need <= room) return;
  throw Error("not enough memory: " + what + " need about " + gib(need) + ", but " + gib(room) +
              " is available (" + from + "); " + advice + " (GPTFAST_MEMORY_CHECK=0 goes ahead anyway)");
}

}  // namespace gptfast
