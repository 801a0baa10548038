// The memory check made before a model's weights are copied on the host: a load that cannot fit
// fails with a message naming the sizes, instead of the kernel's OOM killer ending the process
// (exit 137, nothing printed) half-way through a multi-minute load.
#pragma once

#include <cstdint>
#include <string>

#include "linear_weight.h"
#include "state_dict.h"

namespace gptfast {

// Bytes a Transformer keeps on the host for the tensors of `weights` (names, shapes and dtypes
// only: a mapped file or a plan on the meta device is not read), in `dtype` or quantized as
// `quant` asks, as take_linear stores them.
struct HostWeights {
  int64_t resident = 0;    // everything a single rank keeps
  int64_t replicated = 0;  // of which every tensor-parallel rank keeps a copy (embeddings, head, norms)
  int64_t transient = 0;   // the most held at once while one tensor is taken (copies when quantizing)
  int64_t source = 0;      // the tensors themselves, in their own dtypes
  int64_t largest = 0;     // elements of the largest tensor
};
HostWeights plan_host_weights(const StateDict& weights, const QuantSpec& quant, at::ScalarType dtype);

// Memory this process can still take: MemAvailable plus free swap, capped by a cgroup (v2 or v1)
// limit; -1 where neither /proc/meminfo nor a cgroup says. `from` names the source for messages.
int64_t host_memory_available(std::string* from = nullptr);

// What a cgroup (v2 or v1) still lets this process take, from its files: the limit less the usage,
// where the usage leaves out inactive file pages (`inactive_key` in the stat file: page cache the
// kernel reclaims before it would OOM-kill, a build's or a checkpoint's cached bytes), as
// MemAvailable does. -1 if there is no limit ("max", absurdly large, or a file unreadable).
int64_t cgroup_room(const char* limit_path, const char* usage_path, const char* stat_path, const char* inactive_key);

// Throws, naming `what` and its parts and suggesting `advice`, when `need` bytes exceed
// host_memory_available(). GPTFAST_MEMORY_CHECK=0 skips the check (e.g. where overcommitted
// memory is known to be there).
void check_host_memory(int64_t need, const std::string& what, const std::string& advice);

std::string gib(int64_t bytes);  // "13.5 GiB"

}  // namespace gptfast
