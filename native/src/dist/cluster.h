// Tensor parallelism across processes (and machines), in torchrun's vocabulary: `world` ranks
// (--tp) over `nnodes` processes, node r holding ranks r*world/nnodes .. (r+1)*world/nnodes-1.
// The processes meet through a c10d TCPStore served by node 0 at master_addr:master_port.
//
// Node 0 (the leader) owns the API; the other nodes (followers, follow()) own no session of their
// own and replay the leader's: every Model the leader creates, every forward pass, the test hook
// and every destruction is pushed as one request (a short JSON text) onto each follower's queue
// in the store, before the leader runs it itself, so every rank runs the same passes in the same
// order and their all-reduces pair up. Requests go through the store rather than a Gloo
// broadcast because a follower may wait for the next one for hours (an idle server), longer than
// any collective timeout, and a store wait can simply be repeated.
//
// Followers report back through store keys: `loaded/<model>/<node>` after loading a Model ("" or
// the error), `failed/<model>/<node>` when a pass failed there, so that the leader's error
// names the rank that failed rather than its own timed-out all-reduce, and `alive/<node>`, a
// counter a follower's heartbeat thread raises every second (faster for short timeouts).
#pragma once

#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace gptfast {

struct ClusterSpec {
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  // the leader may ask for 0: any free port (port() then says which)
  int nnodes = 1, node_rank = 0, world = 1;
  // Joining (every node must connect within it), and how long a follower that does not report
  // bounds the leader's waits.
  std::chrono::milliseconds timeout{30000};
};

class Cluster {
 public:
  static constexpr std::chrono::milliseconds kReportWait{5000}, kLeaveWait{10000};

  // Node 0 starts the store's server on master_port (without waiting for the others: see
  // await_nodes); any other node connects to it, retrying until the timeout.
  explicit Cluster(const ClusterSpec& spec);
  ~Cluster();

  // The cluster this process joined, or null: Models with tp > 1 span it.
  static std::shared_ptr<Cluster> current();
  // Joins (node 0: listens) and becomes current(); one per process.
  static std::shared_ptr<Cluster> join(const ClusterSpec& spec);
  // Leaves current(); node 0 first tells the followers to exit and waits until they say they left.
  static void leave();

  const ClusterSpec& spec() const { return spec_; }
  bool leader() const { return spec_.node_rank == 0; }
  int port() const;
  int local_ranks() const { return spec_.world / spec_.nnodes; }
  int first_rank() const { return spec_.node_rank * local_ranks(); }
  // A store of its own (a new connection, prefixed) for the Gloo group of one Model.
  c10::intrusive_ptr<c10d::Store> group_store(int64_t model);

  // Leader: waits (once) until every node joined and agrees on nnodes and world; throws naming
  // the missing nodes after the timeout.
  void await_nodes();
  // Leader: the id of a new Model (its group, its keys), and sending a request to every follower.
  int64_t next_model_id();
  void send(const std::string& request);
  // Leader: waits for every follower's load report of `model`; throws with a follower's error,
  // or when a follower's heartbeat stopped for the timeout (a load itself may take any time).
  // Follower: reports `error` ("" = loaded).
  void loaded(int64_t model, const std::string& error = "");
  // Follower: reports a failed pass. Leader, whose own ranks only saw a collective of `model`
  // break (`own`): a follower's report of a failure of its own, waiting a few seconds for it,
  // else `own` naming the nodes that did not report.
  void report_failure(int64_t model, const std::string& what, bool collective);
  std::string remote_failure(int64_t model, const std::string& own);

  // Follower: the next request, waiting as long as it takes; throws when the leader is gone.
  std::string next_request();

 private:
  std::string wait_get(const std::string& key, std::chrono::milliseconds timeout);
  std::chrono::milliseconds beat_interval() const;
  void beat(c10::intrusive_ptr<c10d::Store> store);  // a follower's heartbeat thread

  ClusterSpec spec_;
  c10::intrusive_ptr<c10d::Store> store_;  // the connection requests go through
  std::mutex mutex_;                       // orders the leader's requests
  int64_t next_model_ = 0;
  bool joined_ = false;
  std::thread beat_;
  std::mutex beat_mutex_;
  std::condition_variable beat_wake_;
  bool stop_beat_ = false;  // guarded by beat_mutex_
};

}  // namespace gptfast
