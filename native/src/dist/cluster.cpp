#include "dist/cluster.h"

#include <c10/util/Exception.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <algorithm>

#include "errors.h"

namespace gptfast {

namespace {

std::mutex current_mutex;
std::shared_ptr<Cluster> current_cluster;  // guarded by current_mutex

std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }
std::string text(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }
std::string seconds(std::chrono::milliseconds t) {
  return t.count() % 1000 == 0 ? std::to_string(t.count() / 1000) + " s" : std::to_string(t.count()) + " ms";
}

std::string where(const ClusterSpec& spec) {
  return spec.master_addr + ":" + std::to_string(spec.master_port);
}

std::string node_key(const std::string& what, int64_t model, int node) {
  return what + "/" + std::to_string(model) + "/" + std::to_string(node);
}

}  // namespace

Cluster::Cluster(const ClusterSpec& spec) : spec_(spec) {
  if (spec.nnodes < 2) throw Error("nnodes must be >= 2 for a multi-process group, got " + std::to_string(spec.nnodes));
  if (spec.node_rank < 0 || spec.node_rank >= spec.nnodes) {
    throw Error("node_rank must be in [0, " + std::to_string(spec.nnodes) + "), got " + std::to_string(spec.node_rank));
  }
  if (spec.world % spec.nnodes != 0) {
    throw Error("tp " + std::to_string(spec.world) + " (all ranks) is not divisible by nnodes " +
                std::to_string(spec.nnodes));
  }
  if (spec.master_port < 0 || spec.master_port > 65535 || (!leader() && spec.master_port == 0)) {
    throw Error("master_port must be in [1, 65535], got " + std::to_string(spec.master_port));
  }
  c10d::TCPStoreOptions options;
  options.port = uint16_t(spec.master_port);
  options.isServer = leader();
  options.waitWorkers = false;  // await_nodes() waits, with a message naming who is missing
  options.timeout = spec.timeout;
  try {
    store_ = c10::make_intrusive<c10d::TCPStore>(spec.master_addr, options);
  } catch (const std::exception& e) {
    throw Error(std::string(leader() ? "cannot listen for tensor-parallel nodes on " : "cannot reach the tensor-parallel master at ") +
                where(spec) + ": " + first_line(e.what()));
  }
  spec_.master_port = static_cast<c10d::TCPStore&>(*store_).getPort();
  if (!leader()) {
    // Tells the leader this node is here, and with which sizes (await_nodes checks they agree).
    store_->set("node/" + std::to_string(spec.node_rank), bytes(std::to_string(spec.nnodes) + " " + std::to_string(spec.world)));
    // While this node's one thread loads a model, only this heartbeat (its own connection) tells
    // node 0 it is alive.
    beat_ = std::thread([this, store = store_->clone()] { beat(store); });
  }
}

Cluster::~Cluster() {
  {
    std::lock_guard<std::mutex> lock(beat_mutex_);
    stop_beat_ = true;
  }
  beat_wake_.notify_all();
  if (beat_.joinable()) beat_.join();
}

std::shared_ptr<Cluster> Cluster::current() {
  std::lock_guard<std::mutex> lock(current_mutex);
  return current_cluster;
}

std::shared_ptr<Cluster> Cluster::join(const ClusterSpec& spec) {
  std::lock_guard<std::mutex> lock(current_mutex);
  if (current_cluster) {
    throw Error("this process is already node " + std::to_string(current_cluster->spec().node_rank) +
                " of a tensor-parallel group (master port " + std::to_string(current_cluster->port()) + ")");
  }
  current_cluster = std::make_shared<Cluster>(spec);
  return current_cluster;
}

void Cluster::leave() {
  std::shared_ptr<Cluster> cluster;
  {
    std::lock_guard<std::mutex> lock(current_mutex);
    std::swap(cluster, current_cluster);
  }
  if (!cluster) return;
  if (!cluster->leader()) {
    try {
      cluster->store_->set("left/" + std::to_string(cluster->spec_.node_rank), std::vector<uint8_t>{});
    } catch (const std::exception&) {
      // Node 0 is gone already.
    }
    return;
  }
  // Followers that joined exit on this request. The store's server must outlive their reading
  // it, so wait (bounded) until each says it left; one that never joined or is gone is skipped.
  cluster->send(R"({"op":"shutdown"})");
  for (int r = 1; r < cluster->spec_.nnodes; ++r) {
    const std::string key = "left/" + std::to_string(r);
    try {
      // Bounded more tightly than joining: a follower that died after joining never answers.
      if (cluster->store_->check({"node/" + std::to_string(r)})) {
        cluster->store_->wait({key}, std::min<std::chrono::milliseconds>(cluster->spec_.timeout, kLeaveWait));
      }
    } catch (const std::exception&) {
    }
  }
}

int Cluster::port() const { return spec_.master_port; }

c10::intrusive_ptr<c10d::Store> Cluster::group_store(int64_t model) {
  return c10::make_intrusive<c10d::PrefixStore>("group/" + std::to_string(model), store_->clone());
}

void Cluster::await_nodes() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (joined_) return;
  std::vector<std::string> keys;
  for (int r = 1; r < spec_.nnodes; ++r) keys.push_back("node/" + std::to_string(r));
  try {
    store_->wait(keys, spec_.timeout);
  } catch (const std::exception&) {
    std::string missing;
    for (const std::string& key : keys) {
      if (!store_->check({key})) missing += (missing.empty() ? "" : ", ") + key.substr(5);
    }
    throw Error("tensor-parallel node(s) " + missing + " of " + std::to_string(spec_.nnodes) + " did not join within " +
                seconds(spec_.timeout) + " (master " + where(spec_) +
                "); start each with the same --tp, --nnodes, --master-addr and --master-port and its --node-rank");
  }
  const std::string expected = std::to_string(spec_.nnodes) + " " + std::to_string(spec_.world);
  for (const std::string& key : keys) {
    const std::string got = text(store_->get(key));
    if (got != expected) {
      throw Error("tensor-parallel " + key.substr(0, 4) + " " + key.substr(5) + " was started with nnodes/tp " + got +
                  ", node 0 with " + expected);
    }
  }
  joined_ = true;
}

int64_t Cluster::next_model_id() {
  std::lock_guard<std::mutex> lock(mutex_);
  return next_model_++;
}

void Cluster::send(const std::string& request) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (int r = 1; r < spec_.nnodes; ++r) store_->queuePush("requests/" + std::to_string(r), bytes(request));
}

std::string Cluster::wait_get(const std::string& key, std::chrono::milliseconds timeout) {
  store_->wait({key}, timeout);
  return text(store_->get(key));
}

void Cluster::loaded(int64_t model, const std::string& error) {
  if (!leader()) {
    store_->set(node_key("loaded", model, spec_.node_rank), bytes(error));
    return;
  }
  // A load may take as long as it takes, as long as the node's heartbeat goes on.
  for (int r = 1; r < spec_.nnodes; ++r) {
    const std::string key = node_key("loaded", model, r), alive = "alive/" + std::to_string(r);
    int64_t beats = -1;
    auto last_beat = std::chrono::steady_clock::now();
    for (;;) {
      try {
        store_->wait({key}, beat_interval());
        break;
      } catch (const std::exception&) {
        // not loaded yet: is it still alive?
      }
      const int64_t now_beats = store_->add(alive, 0);
      const auto now = std::chrono::steady_clock::now();
      if (now_beats != beats) {
        beats = now_beats;
        last_beat = now;
      } else if (now - last_beat > spec_.timeout) {
        throw Error("tensor-parallel node " + std::to_string(r) + " stopped responding while loading the model (no "
                    "heartbeat for " + seconds(spec_.timeout) + ")");
      }
    }
    const std::string reported = text(store_->get(key));
    if (!reported.empty()) throw Error("tensor-parallel node " + std::to_string(r) + " could not load the model: " + reported);
  }
}

std::chrono::milliseconds Cluster::beat_interval() const {
  return std::clamp<std::chrono::milliseconds>(spec_.timeout / 4, std::chrono::milliseconds(50), std::chrono::seconds(1));
}

void Cluster::beat(c10::intrusive_ptr<c10d::Store> store) {
  const std::string key = "alive/" + std::to_string(spec_.node_rank);
  std::unique_lock<std::mutex> lock(beat_mutex_);
  while (!stop_beat_) {
    lock.unlock();
    try {
      store->add(key, 1);
    } catch (const std::exception&) {
      return;  // node 0 is gone; the request loop finds out too
    }
    lock.lock();
    beat_wake_.wait_for(lock, beat_interval(), [this] { return stop_beat_; });
  }
}

void Cluster::report_failure(int64_t model, const std::string& what, bool collective) {
  store_->set(node_key("failed", model, spec_.node_rank), bytes((collective ? "1" : "0") + what));
}

std::string Cluster::remote_failure(int64_t model, const std::string& own) {
  // A follower reports right after its rank fails, while node 0 only sees its collective break
  // after the collective timeout or once the peer's connection closed (its process died, and then
  // no report comes): a few seconds are ample.
  const auto deadline = std::chrono::steady_clock::now() + std::min<std::chrono::milliseconds>(spec_.timeout, kReportWait);
  std::string silent;
  for (int r = 1; r < spec_.nnodes; ++r) {
    try {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      const std::string report = wait_get(node_key("failed", model, r), std::max(left, std::chrono::milliseconds(1)));
      if (!report.empty() && report[0] == '0') return report.substr(1);
    } catch (const std::exception&) {
      silent += (silent.empty() ? "" : ", ") + std::to_string(r);
    }
  }
  return silent.empty() ? own : own + " (node(s) " + silent + " did not report: the process may be gone)";
}

std::string Cluster::next_request() {
  const std::string queue = "requests/" + std::to_string(spec_.node_rank);
  for (;;) {
    try {
      return text(store_->queuePop(queue, true));
    } catch (const std::exception& e) {
      // An idle leader makes the blocking pop time out; ask again unless the leader is gone.
      try {
        store_->queueLen(queue);
      } catch (const std::exception&) {
        throw Error("the tensor-parallel leader (node 0 at " + where(spec_) + ") is gone: " + first_line(e.what()));
      }
    }
  }
}

}  // namespace gptfast
