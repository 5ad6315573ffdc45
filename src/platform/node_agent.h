// The node agent (spec platform.md §5, §10, §12, §16): takes jobs from the control plane, runs each
// op as a child process on a free local port, runs the health checks, streams the process output
// and its own system lines into the job's log, and stops jobs with SIGTERM then SIGKILL.
//
// The agent talks to the control plane only through NodeLink: in-process for the platform's local
// node, over HTTP for `infera node run` on another host. One thread runs the heartbeat loop; each
// job has its own supervisor thread and two output reader threads.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "http/http_server.h"
#include "platform/control_plane.h"

namespace infera::platform {

class NodeLink {
 public:
  virtual ~NodeLink() = default;
  virtual Result<std::string> register_node(const std::string& name, const std::vector<std::string>& markets,
                                            const json& resources, const std::string& address) = 0;
  virtual Result<NodeOrders> heartbeat(const NodeHeartbeat& hb) = 0;
  virtual Status report_exit(const std::string& job, std::optional<int> exit_code,
                             std::optional<std::string> reason) = 0;
  virtual Status append_logs(const std::string& job, std::vector<LogRecord> records) = 0;
};

struct NodeOptions {
  std::string name = "local";
  std::string bind_host = "127.0.0.1";       // where replicas listen (0.0.0.0 on a remote node)
  std::vector<std::string> markets = {"local-cpu"};
  std::string address = "127.0.0.1";         // where the gateway reaches this node's replicas
  std::string models_dir;                     // the model store
  std::string hf_cache;                       // Hugging Face cache ("" = default)
  std::string infera_binary;                  // runs `infera serve` for native vLLM ops
  int max_jobs = 4;
  int serve_threads = 0;                      // --threads for each replica (0: engine default)
  std::chrono::milliseconds heartbeat{1000};
  std::chrono::milliseconds health_interval{5000};     // start-up checks: 5 s after the previous attempt
  std::chrono::milliseconds continuous_interval{30000};
  std::chrono::milliseconds stop_grace{10000};          // SIGTERM, then SIGKILL
};

class NodeAgent {
 public:
  NodeAgent(NodeLink& link, NodeOptions opt);
  ~NodeAgent();
  Status start();  // registers, then heartbeats in the background
  void stop();     // stops every job (SIGTERM, SIGKILL after the grace), then the loop
  const std::string& node_id() const { return node_id_; }

  struct JobRun;  // one job's supervisor (node_agent.cc)

 private:
  void loop();
  json resources() const;

  NodeLink& link_;
  NodeOptions opt_;
  std::string node_id_;
  json gpus_ = json::array();  // detected once at start
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<JobRun>> jobs_;  // guarded by mu_
};

// NodeLink of `infera node run`: JSON over HTTP to the platform's /api/nodes routes. Registers with
// a join token, then authenticates with the node token the platform returns.
std::unique_ptr<NodeLink> make_http_link(const std::string& platform_url, const std::string& join_token);

// NodeLink for the platform's own node: each call runs on the platform's io_context thread (the
// only thread that touches the ControlPlane) and waits for it.
std::unique_ptr<NodeLink> make_local_link(http::net::io_context& io, ControlPlane& cp, bool& cp_alive);

}  // namespace infera::platform
