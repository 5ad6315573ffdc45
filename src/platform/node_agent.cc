#include "platform/node_agent.h"

#include <poll.h>
#include <signal.h>
#include <sys/sysinfo.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <regex>

#include <fmt/format.h>

#include "http/http_fetch.h"
#include "hub/pull.h"
#include "platform/job_definition.h"
#include "platform/node_protocol.h"
#include "platform/process.h"
#include "platform/replica_command.h"

namespace infera::platform {

namespace {

using SteadyClock = std::chrono::steady_clock;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct HealthCheck {
  std::string type = "http", method = "GET", path = "/", expected_response;
  http::Headers headers;
  std::string body;
  int expected_status = 200;
  bool continuous = false;
  double timeout_s = 120;
};

struct ExposedPort {
  int port = 0;
  std::vector<HealthCheck> checks;
};

// Health checks of an op's `expose` (§9.1), with the bounded-inference rule of §12.
std::vector<ExposedPort> exposed_ports_of(const json& args) {
  std::vector<ExposedPort> out;
  if (!args.contains("expose")) return out;
  auto add = [&](const json& e) {
    ExposedPort p;
    if (e.is_number_integer()) {
      p.port = e;
    } else if (e.is_string()) {
      p.port = std::atoi(e.get<std::string>().c_str());
    } else if (e.is_object()) {
      p.port = e.value("port", 0);
      for (const json& c : e.value("health_checks", json::array())) {
        HealthCheck h;
        h.type = c.value("type", "http");
        h.method = c.value("method", "GET");
        h.path = c.value("path", "/");
        h.expected_status = c.value("expected_status", 200);
        h.continuous = c.value("continuous", false);
        h.timeout_s = c.value("timeout_s", 120.0);
        h.expected_response = c.value("expected_response", "");
        const json hdrs = c.value("headers", json::object());
        for (const auto& [k, v] : hdrs.items())
          if (v.is_string()) h.headers.emplace_back(k, v.get<std::string>());
        if (c.contains("body")) {
          json b = c["body"];
          if (b.is_string()) {
            h.body = b;
          } else {
            h.body = b.dump();
          }
          if (h.method == "POST" && (h.path == "/v1/chat/completions" || h.path == "/v1/completions")) {
            try {
              json parsed = json::parse(h.body);
              if (parsed.is_object() && !parsed.contains("max_tokens") && !parsed.contains("max_completion_tokens")) {
                parsed["max_tokens"] = 16;
                h.body = parsed.dump();
              }
            } catch (const std::exception&) {
            }
          }
        }
        p.checks.push_back(std::move(h));
      }
    }
    if (p.port > 0) out.push_back(std::move(p));
  };
  const json& ex = args["expose"];
  if (ex.is_array()) {
    for (const json& e : ex) add(e);
  } else {
    add(ex);
  }
  return out;
}

}  // namespace

// One job on this node: its ops' processes, health checks, log shipping and stop.
struct NodeAgent::JobRun {
  struct Op {
    std::string id;
    int index = 0;
    std::vector<std::string> argv;
    std::map<std::string, std::string> env;
    std::string work_dir;
    std::vector<ExposedPort> ports;
    int local_port = 0;       // where the process listens
    std::string restart = "no";
    int restart_tries = -1;   // on-failure limit (-1: unlimited)
    Child child;
    bool running = false, ever_ready = false, ready = false;
    std::deque<SteadyClock::time_point> exits;  // for the crash-loop rule
    std::thread out_reader, err_reader;
    int attempts = 0;
    SteadyClock::time_point next_check{}, restart_at{};
    int restarts = 0;
    int continuous_failures = 0;
  };

  JobRun(NodeLink& link, const NodeOptions& opt, Assignment a) : link(link), opt(opt), a(std::move(a)) {}

  NodeLink& link;
  const NodeOptions& opt;
  Assignment a;
  std::thread supervisor;
  std::atomic<bool> stop_requested{false}, finished{false};
  std::atomic<bool> node_shutdown{false};  // the agent itself is stopping: the job ends NODE_LOST

  std::mutex mu;  // guards phase, endpoint, upstreams, pending logs
  std::string phase = "PREPARING", endpoint = "OFFLINE";
  json upstreams = json::object();
  std::vector<LogRecord> pending;

  std::vector<std::unique_ptr<Op>> ops;

  void log(const std::string& msg, const char* type = "info", const std::string& op = "", const std::string& stream = "") {
    LogRecord r;
    r.job = a.job;
    r.op = op;
    r.type = type;
    r.stream = stream;
    r.ts = wall_ms();
    r.message = msg;
    std::lock_guard<std::mutex> l(mu);
    pending.push_back(std::move(r));
  }

  void flush_logs() {
    std::vector<LogRecord> batch;
    {
      std::lock_guard<std::mutex> l(mu);
      batch.swap(pending);
    }
    if (batch.empty()) return;
    Status s = link.append_logs(a.job, batch);
    if (!s) {  // platform unreachable: keep the lines for the next attempt (bounded)
      std::lock_guard<std::mutex> l(mu);
      if (pending.size() + batch.size() < 200'000) pending.insert(pending.begin(), batch.begin(), batch.end());
    }
  }

  void set_state(const std::string& p, const std::string& e) {
    std::lock_guard<std::mutex> l(mu);
    phase = p;
    endpoint = e;
  }

  std::atomic<int> health_failures{0};  // worst run of failed continuous checks over the ops

  NodeJobReport report() {
    std::lock_guard<std::mutex> l(mu);
    return NodeJobReport{a.job, phase, endpoint, upstreams, health_failures.load()};
  }

  Status prepare() {
    if (!a.job_definition.is_object() || !a.job_definition.contains("ops")) return error("job has no job definition");
    const json global = a.job_definition.value("global", json::object());
    int index = 0;
    for (const json& op : a.job_definition["ops"]) {
      const std::string type = op.value("type", "");
      const std::string id = op.value("id", fmt::format("op{}", index));
      if (type == "container/create-volume") {
        log(fmt::format("Volume {} created", id));
        ++index;
        continue;
      }
      json args = op.value("args", json::object());
      auto o = std::make_unique<Op>();
      o->id = id;
      o->index = index++;
      o->ports = exposed_ports_of(args);
      const std::string image = args.value("image", global.value("image", std::string()));
      const json global_env = global.value("env", json::object()), op_env = args.value("env", json::object());
      for (const auto& [k, v] : global_env.items())
        if (v.is_string()) o->env[k] = v;
      for (const auto& [k, v] : op_env.items())
        if (v.is_string()) o->env[k] = v;
      o->work_dir = args.value("work_dir", std::string());
      const json rp = args.value("restart_policy", json("no"));
      if (rp.is_string()) {
        o->restart = rp;
      } else if (rp.is_object()) {
        o->restart = rp.value("policy", "on-failure");
        o->restart_tries = rp.value("restart_tries", -1);
      }
      INFERA_ASSIGN_OR_RETURN(int local_port, free_local_port());
      o->local_port = local_port;
      if (is_native_vllm_image(image) && !args.contains("entrypoint")) {
        INFERA_ASSIGN_OR_RETURN(std::vector<std::string> cmd, op_cmd_list(args.value("cmd", json())));
        INFERA_ASSIGN_OR_RETURN(ServeCommand sc, map_vllm_args(cmd));
        for (const std::string& n : sc.notes) log(n, "info", id);
        log(fmt::format("Resolving model {}", sc.model), "info", id);
        const std::string hf_cache = opt.hf_cache.empty() ? default_hf_cache() : opt.hf_cache;
        auto m = resolve_model(sc.model, opt.models_dir, hf_cache);
        if (!m && hub::is_repo_id(sc.model)) {
          INFERA_RETURN_IF_ERROR(pull_model(sc.model, hf_cache, id));
          m = resolve_model(sc.model, opt.models_dir, hf_cache);
        }
        if (!m) return m.status();
        log(fmt::format("Model {} found in the {}: {}", sc.model, m->source, m->path), "info", id);
        if (m->demo)
          log("This is a generated demo model with RANDOM weights: it answers with random text. Import real weights "
              "with `infera model import PATH --as " + sc.model + "`.", "error", id);
        o->argv = {opt.infera_binary, "serve", "--model", m->path, "--host", opt.bind_host, "--port",
                   std::to_string(o->local_port)};
        if (opt.serve_threads > 0) {
          o->argv.push_back("--threads");
          o->argv.push_back(std::to_string(opt.serve_threads));
        }
        o->argv.insert(o->argv.end(), sc.serve_args.begin(), sc.serve_args.end());
        bool port_exposed = false;
        for (auto& p : o->ports) port_exposed = port_exposed || p.port == sc.port;
        if (!port_exposed) o->ports.insert(o->ports.begin(), ExposedPort{sc.port, {}});
        std::lock_guard<std::mutex> l(mu);
        for (auto& p : o->ports)
          if (p.port == sc.port) upstreams[fmt::format("{}:{}", id, p.port)] = fmt::format("{}:{}", opt.address, o->local_port);
      } else {
        std::string runtime = find_in_path("podman");
        if (runtime.empty()) runtime = find_in_path("docker");
        if (runtime.empty()) return error("no container runtime on node {} for image {}", opt.name, image);
        if (o->ports.size() > 1) return error("op {}: several exposed ports need a container network (not supported yet)", id);
        o->argv = {runtime, "run", "--rm", "--name", fmt::format("infera-{}-{}", a.job.substr(0, 8), o->index)};
        for (const auto& [k, v] : o->env) {
          o->argv.push_back("-e");
          o->argv.push_back(k + "=" + v);
        }
        if (!o->ports.empty()) {
          o->argv.push_back("-p");
          o->argv.push_back(fmt::format("127.0.0.1:{}:{}", o->local_port, o->ports[0].port));
          std::lock_guard<std::mutex> l(mu);
          upstreams[fmt::format("{}:{}", id, o->ports[0].port)] = fmt::format("{}:{}", opt.address, o->local_port);
        }
        if (args.contains("entrypoint")) {
          INFERA_ASSIGN_OR_RETURN(std::vector<std::string> ep, op_cmd_list(args["entrypoint"]));
          if (!ep.empty()) {
            o->argv.push_back("--entrypoint");
            o->argv.push_back(ep[0]);
          }
        }
        o->argv.push_back(image);
        INFERA_ASSIGN_OR_RETURN(std::vector<std::string> cmd, op_cmd_list(args.value("cmd", json())));
        o->argv.insert(o->argv.end(), cmd.begin(), cmd.end());
        o->env.clear();
      }
      ops.push_back(std::move(o));
    }
    if (ops.empty()) return error("the job definition has no container/run op");
    return Status::ok();
  }

  // The model from the Hugging Face Hub into the node's HF cache, progress lines in the job's log
  // (every 2 s, shipped at once: the supervisor loop that flushes logs has not started yet).
  Status pull_model(const std::string& model, const std::string& hf_cache, const std::string& op) {
    hub::HubConfig cfg = hub::HubConfig::from_env();
    cfg.cache_dir = hf_cache;
    if (cfg.offline)
      return error("model {} is not on node {} (model store {}, Hugging Face cache {}) and HF_HUB_OFFLINE is set",
                   model, opt.name, opt.models_dir, hf_cache);
    log(fmt::format("Model {} is not on this node: downloading it from {} into {}", model, cfg.endpoint, hf_cache),
        "info", op);
    flush_logs();
    hub::PullOptions po;
    po.repo = model;
    auto last = SteadyClock::now() - std::chrono::seconds(10);
    std::mutex cb_mu;  // messages come from the download's connection threads too
    hub::PullCallbacks cb;
    cb.message = [&](const std::string& m) {
      std::lock_guard<std::mutex> l(cb_mu);
      log(m, "info", op);
      flush_logs();
    };
    cb.progress = [&](const hub::PullProgress& p) {
      std::lock_guard<std::mutex> l(cb_mu);
      const auto now = SteadyClock::now();
      if (!p.finished && now - last < std::chrono::seconds(2)) return;
      last = now;
      log("Downloading " + hub::format_progress_line(p), "info", op);
      flush_logs();
    };
    auto r = hub::pull(cfg, po, cb, &stop_requested);
    if (!r) return error("downloading model {} failed: {}", model, r.error());
    log(fmt::format("Model {} downloaded: {} files, {} fetched, {} reused, in {}", model, r->files.size(),
                    hub::format_bytes(r->fetched_bytes), hub::format_bytes(r->reused_bytes), r->folder),
        "info", op);
    return Status::ok();
  }

  void read_pipe(int fd, const std::string& op, const char* stream) {
    std::string buf;
    char chunk[4096];
    for (;;) {
      ssize_t n = ::read(fd, chunk, sizeof(chunk));
      if (n <= 0) break;
      buf.append(chunk, static_cast<size_t>(n));
      size_t nl;
      while ((nl = buf.find('\n')) != std::string::npos) {
        std::string line = buf.substr(0, nl);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        log(line, "container", op, stream);
        buf.erase(0, nl + 1);
      }
      if (buf.size() > 65536) {
        log(buf, "container", op, stream);
        buf.clear();
      }
    }
    if (!buf.empty()) log(buf, "container", op, stream);
    ::close(fd);
  }

  Status launch(Op& o) {
    std::string shown;
    for (const auto& s : o.argv) shown += (shown.empty() ? "" : " ") + s;
    log(fmt::format("Starting: {}", shown), "info", o.id);
    INFERA_ASSIGN_OR_RETURN(o.child, spawn_process(o.argv, o.env, o.work_dir));
    o.running = true;
    o.ready = false;
    o.attempts = 0;
    o.next_check = SteadyClock::now() + std::chrono::milliseconds(std::min<int64_t>(1000, opt.health_interval.count()));
    const std::string id = o.id;
    o.out_reader = std::thread([this, fd = o.child.out_fd, id] { read_pipe(fd, id, "stdout"); });
    o.err_reader = std::thread([this, fd = o.child.err_fd, id] { read_pipe(fd, id, "stderr"); });
    log(fmt::format("Process {} started; listening on 127.0.0.1:{}{}", o.child.pid, o.local_port,
                    o.ports.empty() ? "" : fmt::format(" (exposed port {})", o.ports[0].port)),
        "info", o.id);
    return Status::ok();
  }

  void join_readers(Op& o) {
    if (o.out_reader.joinable()) o.out_reader.join();
    if (o.err_reader.joinable()) o.err_reader.join();
  }

  // One round of checks on every exposed port of `o`; true when all pass.
  bool check(Op& o, bool continuous_only) {
    bool all = true;
    for (const ExposedPort& p : o.ports) {
      if (p.checks.empty()) {
        if (!continuous_only && !tcp_accepts("127.0.0.1", o.local_port, 2000)) all = false;
        continue;
      }
      for (const HealthCheck& h : p.checks) {
        if (continuous_only && !h.continuous) continue;
        ++o.attempts;
        const auto t0 = SteadyClock::now();
        std::string outcome;
        bool pass = false;
        if (h.type == "websocket") {
          pass = tcp_accepts("127.0.0.1", o.local_port, 2000);
          outcome = pass ? "connected" : "connection refused";
        } else {
          auto r = http::fetch("127.0.0.1", static_cast<uint16_t>(o.local_port), h.method, h.path, h.headers, h.body,
                               std::chrono::milliseconds(static_cast<int64_t>(h.timeout_s * 1000)));
          const double secs = std::chrono::duration<double>(SteadyClock::now() - t0).count();
          if (!r) {
            outcome = r.error();
          } else {
            pass = r->status == h.expected_status;
            outcome = fmt::format("{} in {:.1f} s{}", r->status, secs,
                                  pass ? "" : fmt::format(" (expected {})", h.expected_status));
          }
        }
        log(fmt::format("health check #{} {} {} \u2192 {}", o.attempts, h.type == "websocket" ? "WS" : h.method, h.path,
                        outcome),
            pass ? "info" : "info", o.id);
        all = all && pass;
        if (!pass) break;
      }
    }
    return all;
  }

  bool any_continuous(const Op& o) const {
    for (const auto& p : o.ports)
      for (const auto& h : p.checks)
        if (h.continuous) return true;
    return false;
  }

  bool all_ready() const {
    for (const auto& o : ops)
      if (!o->ready) return false;
    return true;
  }

  std::string endpoint_status() const {
    bool checks = false;
    for (const auto& o : ops)
      for (const auto& p : o->ports) checks = checks || !p.checks.empty();
    return checks ? "ONLINE" : "UNKNOWN";
  }

  std::optional<int> stopped_code;  // exit code of the last process reaped by stop_all

  void stop_all(const char* why) {
    log(fmt::format("Stopping ({}): SIGTERM, SIGKILL after {} s", why,
                    std::chrono::duration_cast<std::chrono::seconds>(opt.stop_grace).count()));
    for (auto& o : ops)
      if (o->running) signal_group(o->child.pid, SIGTERM);
    const auto deadline = SteadyClock::now() + opt.stop_grace;
    for (;;) {
      bool any = false;
      for (auto& o : ops) {
        if (!o->running) continue;
        if (auto code = try_reap(o->child.pid)) {
          o->running = false;
          join_readers(*o);
          stopped_code = *code;
          log(fmt::format("Process exited with code {}", *code), "info", o->id);
        } else {
          any = true;
        }
      }
      if (!any) break;
      if (SteadyClock::now() >= deadline) {
        for (auto& o : ops)
          if (o->running) signal_group(o->child.pid, SIGKILL);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      flush_logs();
    }
  }

  void finish(std::optional<int> code, std::optional<std::string> reason) {
    set_state("EXITED", "OFFLINE");
    flush_logs();
    for (int attempt = 0; attempt < 600; ++attempt) {  // the platform may be restarting
      if (link.report_exit(a.job, code, reason)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    flush_logs();
    finished = true;
  }

  void run() {
    log(fmt::format("Preparing job on node {}", opt.name));
    if (Status s = prepare(); !s) {
      log(s.message(), "error");
      finish(std::nullopt, "FAILED");
      return;
    }
    set_state("STARTING", "OFFLINE");
    for (auto& o : ops) {
      if (Status s = launch(*o); !s) {
        log(s.message(), "error", o->id);
        stop_all("start failed");
        finish(std::nullopt, "FAILED");
        return;
      }
    }
    auto last_flush = SteadyClock::now();
    std::optional<int> last_code;
    for (;;) {
      if (stop_requested) {
        // A stop the platform ordered ends the job as it said; the node going away ends it NODE_LOST
        // (not an exit of its own: its processes did not finish).
        const bool shutdown = node_shutdown;
        stop_all(shutdown ? "the node is shutting down" : "stop requested");
        finish(stopped_code ? stopped_code : last_code, shutdown ? std::optional<std::string>("NODE_LOST") : std::nullopt);
        return;
      }
      bool alive = false;
      for (auto& o : ops) {
        if (o->running) {
          if (auto code = try_reap(o->child.pid)) {
            o->running = false;
            o->ready = false;
            join_readers(*o);
            last_code = *code;
            log(fmt::format("Process exited with code {}", *code), *code == 0 ? "info" : "error", o->id);
            set_state(phase == "READY" ? "UNHEALTHY" : phase, "OFFLINE");
            const bool restart = o->restart == "always" || o->restart == "unless-stopped" ||
                                 (o->restart == "on-failure" && *code != 0 &&
                                  (o->restart_tries < 0 || o->restarts < o->restart_tries));
            if (restart) {
              const auto now = SteadyClock::now();
              o->exits.push_back(now);
              while (!o->exits.empty() && now - o->exits.front() > std::chrono::minutes(10)) o->exits.pop_front();
              if (o->exits.size() >= 5 && !o->ever_ready) {
                log("Crash loop: 5 exits within 10 minutes without becoming ready", "error", o->id);
                stop_all("crash loop");
                finish(last_code, "CRASH_LOOP");
                return;
              }
              const int backoff = std::min(60, 1 << std::min(o->restarts, 6));
              ++o->restarts;
              o->restart_at = now + std::chrono::seconds(backoff);
              log(fmt::format("Restarting in {} s (restart_policy {}, restart {})", backoff, o->restart, o->restarts),
                  "info", o->id);
            }
          }
        } else if (o->restart_at != SteadyClock::time_point{} && SteadyClock::now() >= o->restart_at) {
          o->restart_at = {};
          if (Status s = launch(*o); !s) log(s.message(), "error", o->id);
        }
        alive = alive || o->running || o->restart_at != SteadyClock::time_point{};
      }
      if (!alive) {
        stop_all("all processes exited");
        finish(last_code, std::nullopt);
        return;
      }
      // Health checks: start-up phase every health_interval, then the continuous ones.
      for (auto& o : ops) {
        if (!o->running || SteadyClock::now() < o->next_check) continue;
        if (!o->ready) {
          if (check(*o, false)) {
            o->ready = o->ever_ready = true;
            log(o->ports.empty() ? "Process is up" : "Health checks passed: the endpoint is ready", "info", o->id);
          }
          o->next_check = SteadyClock::now() + (o->ready ? opt.continuous_interval : opt.health_interval);
        } else if (any_continuous(*o)) {
          const bool ok = check(*o, true);
          o->continuous_failures = ok ? 0 : o->continuous_failures + 1;
          int worst = 0;
          for (const auto& other : ops) worst = std::max(worst, other->continuous_failures);
          health_failures = worst;
          if (!ok && endpoint != "OFFLINE") set_state("UNHEALTHY", "OFFLINE");
          if (ok && phase == "UNHEALTHY") set_state("READY", endpoint_status());
          o->next_check = SteadyClock::now() + opt.continuous_interval;
        } else {
          o->next_check = SteadyClock::now() + opt.continuous_interval;
        }
      }
      if (all_ready() && phase != "READY" && phase != "UNHEALTHY") {
        flush_logs();  // the health-check lines reach the logs before anyone sees READY
        last_flush = SteadyClock::now();
        set_state("READY", endpoint_status());
      }
      if (SteadyClock::now() - last_flush >= std::chrono::milliseconds(200)) {
        flush_logs();
        last_flush = SteadyClock::now();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
};

NodeAgent::NodeAgent(NodeLink& link, NodeOptions opt) : link_(link), opt_(std::move(opt)) {}

NodeAgent::~NodeAgent() { stop(); }

namespace {
// NVIDIA GPUs as nvidia-smi reports them; empty without a driver.
json detect_gpus() {
  json gpus = json::array();
  const std::string smi = find_in_path("nvidia-smi");
  if (smi.empty()) return gpus;
  FILE* p = popen((smi + " --query-gpu=name,memory.total,driver_version --format=csv,noheader,nounits 2>/dev/null").c_str(), "r");
  if (!p) return gpus;
  char line[512];
  while (std::fgets(line, sizeof(line), p)) {
    std::string l = line;
    std::vector<std::string> f;
    size_t pos = 0;
    while (pos <= l.size()) {
      size_t c = l.find(',', pos);
      if (c == std::string::npos) c = l.size();
      std::string v = l.substr(pos, c - pos);
      while (!v.empty() && (v.front() == ' ')) v.erase(0, 1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\n')) v.pop_back();
      f.push_back(v);
      pos = c + 1;
    }
    if (f.size() >= 3) gpus.push_back(json{{"model", f[0]}, {"vram_mb", std::atoll(f[1].c_str())}, {"driver", f[2]}});
  }
  pclose(p);
  return gpus;
}
}  // namespace

json NodeAgent::resources() const {
  struct sysinfo si {};
  sysinfo(&si);
  struct statvfs vfs {};
  uint64_t disk_free_mb = 0;
  if (statvfs(opt_.models_dir.empty() ? "." : opt_.models_dir.c_str(), &vfs) == 0)
    disk_free_mb = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize / (1024 * 1024);
  return json{{"cpu_cores", static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN))},
              {"ram_mb", static_cast<uint64_t>(si.totalram) * si.mem_unit / (1024 * 1024)},
              {"ram_free_mb", static_cast<uint64_t>(si.freeram) * si.mem_unit / (1024 * 1024)},
              {"disk_free_mb", disk_free_mb},
              {"gpus", gpus_}};
}

Status NodeAgent::start() {
  gpus_ = detect_gpus();
  auto id = link_.register_node(opt_.name, opt_.markets, resources(), opt_.address);
  if (!id) return id.status();
  node_id_ = *id;
  thread_ = std::thread([this] { loop(); });
  return Status::ok();
}

void NodeAgent::loop() {
  auto last_resources = SteadyClock::now() - std::chrono::hours(1);
  json res;
  while (!stopping_) {
    NodeHeartbeat hb;
    hb.node = node_id_;
    if (SteadyClock::now() - last_resources > std::chrono::seconds(10)) {
      res = resources();
      last_resources = SteadyClock::now();
    }
    hb.resources = res;
    std::vector<std::string> done;
    {
      std::lock_guard<std::mutex> l(mu_);
      for (auto& [id, run] : jobs_) {
        if (run->finished) done.push_back(id);
        else hb.jobs.push_back(run->report());
      }
      for (const auto& id : done) {
        auto run = jobs_[id];
        if (run->supervisor.joinable()) run->supervisor.join();
        jobs_.erase(id);
      }
      hb.free_slots = std::max(0, opt_.max_jobs - static_cast<int>(jobs_.size()));
    }
    auto orders = link_.heartbeat(hb);
    if (orders) {
      std::lock_guard<std::mutex> l(mu_);
      for (const std::string& id : orders->stop)
        if (auto it = jobs_.find(id); it != jobs_.end()) it->second->stop_requested = true;
      for (Assignment& a : orders->start) {
        auto run = std::make_shared<JobRun>(link_, opt_, std::move(a));
        run->supervisor = std::thread([run] { run->run(); });
        jobs_[run->a.job] = run;
      }
    }
    for (int i = 0; i < 20 && !stopping_; ++i) std::this_thread::sleep_for(opt_.heartbeat / 20);
  }
}

void NodeAgent::stop() {
  if (stopping_.exchange(true)) return;
  if (thread_.joinable()) thread_.join();
  std::map<std::string, std::shared_ptr<JobRun>> jobs;
  {
    std::lock_guard<std::mutex> l(mu_);
    jobs.swap(jobs_);
  }
  for (auto& [id, run] : jobs) {
    run->node_shutdown = true;
    run->stop_requested = true;
  }
  for (auto& [id, run] : jobs)
    if (run->supervisor.joinable()) run->supervisor.join();
}

// --- local link ---

namespace {

class LocalLink final : public NodeLink {
 public:
  LocalLink(http::net::io_context& io, ControlPlane& cp, bool& alive) : io_(io), cp_(cp), alive_(alive) {}

  template <typename F>
  auto on_io(F f) -> std::optional<decltype(f())> {
    using R = decltype(f());
    auto p = std::make_shared<std::promise<R>>();
    auto fut = p->get_future();
    http::net::post(io_, [this, p, f = std::move(f)]() mutable {
      try {
        if (!alive_) throw std::runtime_error("platform stopping");
        p->set_value(f());
      } catch (...) {
        p->set_exception(std::current_exception());
      }
    });
    if (fut.wait_for(std::chrono::seconds(30)) != std::future_status::ready) return std::nullopt;
    try {
      return fut.get();
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }

  Result<std::string> register_node(const std::string& name, const std::vector<std::string>& markets,
                                    const json& resources, const std::string& address) override {
    auto r = on_io([&] { return cp_.register_node(name, markets, resources, address, true, "0.1.0"); });
    if (!r) return error("platform unavailable");
    return *r;
  }
  Result<NodeOrders> heartbeat(const NodeHeartbeat& hb) override {
    auto r = on_io([&] { return cp_.node_heartbeat(hb); });
    if (!r) return error("platform unavailable");
    return *r;
  }
  Status report_exit(const std::string& job, std::optional<int> code, std::optional<std::string> reason) override {
    auto r = on_io([&] { return cp_.report_job_exit(job, code, reason).is_ok(); });
    return r ? Status::ok() : error("platform unavailable");
  }
  Status append_logs(const std::string& job, std::vector<LogRecord> records) override {
    auto r = on_io([&] {
      cp_.append_logs(job, records);
      return true;
    });
    return r ? Status::ok() : error("platform unavailable");
  }

 private:
  http::net::io_context& io_;
  ControlPlane& cp_;
  bool& alive_;
};

}  // namespace

namespace {

class HttpLink final : public NodeLink {
 public:
  HttpLink(std::string url, std::string join_token) : join_token_(std::move(join_token)) {
    std::string base;
    ok_ = http::parse_http_url(url, &host_, &port_, &base);
  }

  Result<json> call(const std::string& path, const json& body) {
    if (!ok_) return error("--platform must be an http:// URL");
    http::Headers h{{"Content-Type", "application/json"}};
    if (!node_token_.empty()) h.emplace_back("Authorization", "Bearer " + node_token_);
    auto r = http::fetch(host_, port_, "POST", "/api/nodes" + path, h, body.dump(), std::chrono::seconds(30));
    if (!r) return r.status();
    json j;
    try {
      j = json::parse(r->body);
    } catch (const std::exception&) {
      return error("platform answered {} with a body that is not JSON", r->status);
    }
    if (r->status != 200) return error("platform answered {}: {}", r->status, j.value("error", r->body));
    return j;
  }

  Result<std::string> register_node(const std::string& name, const std::vector<std::string>& markets,
                                    const json& resources, const std::string& address) override {
    INFERA_ASSIGN_OR_RETURN(json j, call("/register", json{{"token", join_token_}, {"name", name}, {"markets", markets},
                                                          {"resources", resources}, {"address", address}}));
    node_token_ = j.value("node_token", "");
    node_id_ = j.value("id", "");
    return node_id_;
  }
  Result<NodeOrders> heartbeat(const NodeHeartbeat& hb) override {
    INFERA_ASSIGN_OR_RETURN(json j, call("/" + node_id_ + "/heartbeat", to_json(hb)));
    try {
      return orders_from_json(j);
    } catch (const std::exception& e) {
      return error("malformed orders from the platform: {}", e.what());
    }
  }
  Status report_exit(const std::string& job, std::optional<int> code, std::optional<std::string> reason) override {
    auto r = call("/" + node_id_ + "/jobs/" + job + "/exit",
                  json{{"exit_code", code ? json(*code) : json(nullptr)}, {"reason", reason ? json(*reason) : json(nullptr)}});
    return r ? Status::ok() : r.status();
  }
  Status append_logs(const std::string& job, std::vector<LogRecord> records) override {
    json logs = json::array();
    for (const LogRecord& l : records) logs.push_back(to_json(l));
    auto r = call("/" + node_id_ + "/jobs/" + job + "/logs", json{{"logs", logs}});
    return r ? Status::ok() : r.status();
  }

 private:
  std::string host_, join_token_, node_token_, node_id_;
  uint16_t port_ = 0;
  bool ok_ = false;
};

}  // namespace

std::unique_ptr<NodeLink> make_http_link(const std::string& platform_url, const std::string& join_token) {
  return std::make_unique<HttpLink>(platform_url, join_token);
}

std::unique_ptr<NodeLink> make_local_link(http::net::io_context& io, ControlPlane& cp, bool& alive) {
  return std::make_unique<LocalLink>(io, cp, alive);
}

}  // namespace infera::platform
