#include "dist/follower.h"

#include <c10/core/InferenceMode.h>
#include <nlohmann/json.hpp>

#include <iostream>
#include <map>
#include <memory>
#include <vector>

#include "thread_team.h"

namespace gptfast {

namespace {

using nlohmann::json;

json spec_json(const ModelSpec& s) {
  return {{"dim", s.dim}, {"n_layer", s.n_layer}, {"n_head", s.n_head}, {"n_local_heads", s.n_local_heads},
          {"head_dim", s.head_dim}, {"intermediate_size", s.intermediate_size}, {"vocab_size", s.vocab_size},
          {"block_size", s.block_size}, {"rope_base", s.rope_base}, {"norm_eps", s.norm_eps},
          {"rope_scaling_factor", s.rope_scaling_factor}, {"rope_low_freq_factor", s.rope_low_freq_factor},
          {"rope_high_freq_factor", s.rope_high_freq_factor}, {"rope_original_max_position", s.rope_original_max_position}};
}

ModelSpec spec_of(const json& j) {
  ModelSpec s;
  j.at("dim").get_to(s.dim);
  j.at("n_layer").get_to(s.n_layer);
  j.at("n_head").get_to(s.n_head);
  j.at("n_local_heads").get_to(s.n_local_heads);
  j.at("head_dim").get_to(s.head_dim);
  j.at("intermediate_size").get_to(s.intermediate_size);
  j.at("vocab_size").get_to(s.vocab_size);
  j.at("block_size").get_to(s.block_size);
  j.at("rope_base").get_to(s.rope_base);
  j.at("norm_eps").get_to(s.norm_eps);
  j.at("rope_scaling_factor").get_to(s.rope_scaling_factor);
  j.at("rope_low_freq_factor").get_to(s.rope_low_freq_factor);
  j.at("rope_high_freq_factor").get_to(s.rope_high_freq_factor);
  j.at("rope_original_max_position").get_to(s.rope_original_max_position);
  return s;
}

// A model a follower replays, with the tokens of the pass being replayed.
struct Replayed {
  std::unique_ptr<Model> model;
  std::vector<std::vector<int32_t>> tokens;
  std::vector<Segment> segments;
};

void replay_forward(Replayed& r, const json& request) {
  const json& segments = request.at("segments");
  r.tokens.resize(segments.size());
  r.segments.resize(segments.size());
  for (size_t i = 0; i < segments.size(); ++i) {
    const json& s = segments[i];
    s.at("tokens").get_to(r.tokens[i]);
    // No logits: only rank 0 (on node 0) runs the output head.
    r.segments[i] = Segment{s.at("slot").get<int32_t>(), r.tokens[i].data(), int32_t(r.tokens[i].size()),
                            s.at("start").get<int64_t>(), s.at("n_logits").get<int32_t>(), nullptr};
  }
  try {
    r.model->forward(r.segments.data(), int(r.segments.size()));
  } catch (const Error&) {
    // Reported to node 0 by the model; it now refuses further passes, and node 0 will destroy it.
  }
}

}  // namespace

std::string create_request(int64_t model, const std::string& path, const std::string& format, const ModelSpec& spec,
                           const RuntimeSpec& runtime, int slots) {
  return json{{"op", "create"}, {"id", model}, {"path", path}, {"format", format}, {"spec", spec_json(spec)},
              {"dtype", runtime.dtype}, {"device", runtime.device}, {"threads", runtime.threads},
              {"max_seq_len", runtime.max_seq_len}, {"quantize", runtime.quantize}, {"tp", runtime.tp},
              {"tp_timeout_ms", runtime.tp_timeout.count()}, {"slots", slots}}
      .dump();
}

std::string forward_request(int64_t model, const Segment* segments, int n) {
  json list = json::array();
  for (int i = 0; i < n; ++i) {
    const Segment& s = segments[i];
    list.push_back({{"slot", s.slot}, {"start", s.start}, {"n_logits", s.n_logits},
                    {"tokens", std::vector<int32_t>(s.tokens, s.tokens + s.n)}});
  }
  return json{{"op", "forward"}, {"id", model}, {"segments", std::move(list)}}.dump();
}

std::string fail_request(int64_t model, int rank, int64_t n, std::chrono::milliseconds timeout) {
  return json{{"op", "fail"}, {"id", model}, {"rank", rank}, {"n", n}, {"timeout_ms", timeout.count()}}.dump();
}

std::string destroy_request(int64_t model) { return json{{"op", "destroy"}, {"id", model}}.dump(); }

void follow(const ClusterSpec& spec) {
  if (spec.node_rank == 0) throw Error("node 0 leads the group; followers have node_rank 1..nnodes-1");
  auto cluster = Cluster::join(spec);
  std::map<int64_t, Replayed> models;
  c10::InferenceMode no_grad;
  struct Leave {  // whichever way this ends, the process may join again
    ~Leave() { Cluster::leave(); }
  } leave;
  for (;;) {
    const json request = json::parse(cluster->next_request());
    const std::string op = request.at("op");
    if (op == "shutdown") break;
    const int64_t id = request.at("id");
    if (op == "create") {
      RuntimeSpec runtime{request.at("dtype"), request.at("device"), request.at("threads"), request.at("max_seq_len"),
                          request.at("quantize")};
      runtime.tp = request.at("tp");
      runtime.tp_timeout = std::chrono::milliseconds(request.at("tp_timeout_ms").get<int64_t>());
      try {
        // Intra-op threads are process-wide; node 0 chose them for its model, so this node follows.
        if (runtime.threads > 0) set_intra_op_threads(runtime.threads);
        models[id].model = std::make_unique<Model>(request.at("path"), request.at("format"), spec_of(request.at("spec")),
                                                   runtime, request.at("slots"), id);
      } catch (const std::exception& e) {
        models.erase(id);
        // Before the load report, node 0 learns of it from there; after it, from its own join timing out.
        std::cerr << "tensor-parallel node " << spec.node_rank << ": model " << id << ": " << e.what() << std::endl;
      }
    } else if (op == "forward") {
      auto it = models.find(id);
      if (it != models.end()) replay_forward(it->second, request);
    } else if (op == "fail") {
      auto it = models.find(id);
      if (it != models.end()) {
        it->second.model->fail_rank_after(request.at("rank"), request.at("n"),
                                          std::chrono::milliseconds(request.at("timeout_ms").get<int64_t>()));
      }
    } else if (op == "destroy") {
      models.erase(id);
    }
  }
}

}  // namespace gptfast
