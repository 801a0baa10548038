// The requests node 0 sends its followers (dist/cluster.h), as JSON texts, and a follower's
// life: replaying them until node 0 shuts the group down.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "dist/cluster.h"
#include "model.h"

namespace gptfast {

std::string create_request(int64_t model, const std::string& path, const std::string& format, const ModelSpec& spec,
                           const RuntimeSpec& runtime, int slots);
std::string forward_request(int64_t model, const Segment* segments, int n);
std::string fail_request(int64_t model, int rank, int64_t n, std::chrono::milliseconds timeout);
std::string destroy_request(int64_t model);

// A follower node: joins the cluster (becoming Cluster::current()), then replays node 0's
// requests until it shuts the group down (returns) or goes away (throws).
void follow(const ClusterSpec& spec);

}  // namespace gptfast
