// infera platform: the control plane (REST API, reconciler, store) on one port.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>

#include "cli_util.h"
#include "commands.h"
#include "platform/control_plane.h"
#include "platform/node_agent.h"
#include "platform/platform_server.h"
#include "platform/templates.h"

namespace infera::cli {

namespace {

struct PlatformArgs {
  std::string host = "127.0.0.1", data_dir, endpoint_domain, public_url, auth = "key", deploy, local_cpu_price = "0";
  std::string models_dir, deploy_model;
  int port = 8080;
  int deploy_timeout_min = 60;
  bool no_local_node = false;
  int max_jobs = 4, serve_threads = 0;
  double health_interval_s = 5;
  double node_offline_s = 30, node_lost_grace_s = 60;
};

std::string default_data_dir() {
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return std::string(x) + "/infera";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.local/share/infera";
  return ".infera";
}

int run_platform(const PlatformArgs& a) {
  namespace fs = std::filesystem;
  using namespace infera::platform;
  const std::string dir = a.data_dir.empty() ? default_data_dir() : a.data_dir;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail(fmt::format("cannot create data directory {}: {}", dir, ec.message()));
  if (a.auth != "key" && a.auth != "none") return fail("--auth must be key or none");
  if (a.auth == "none" && a.host != "127.0.0.1" && a.host != "localhost" && a.host != "::1")
    return fail("--auth none is for local use only: bind --host 127.0.0.1");

  PlatformConfig cfg;
  cfg.endpoint_domain = a.endpoint_domain;
  cfg.public_url = a.public_url;
  while (!cfg.public_url.empty() && cfg.public_url.back() == '/') cfg.public_url.pop_back();
  cfg.local_cpu_price_per_hour = parse_usd(a.local_cpu_price);
  cfg.node_offline_ms = static_cast<int64_t>(a.node_offline_s * 1000);
  cfg.node_lost_grace_ms = static_cast<int64_t>(a.node_lost_grace_s * 1000);
  if (cfg.local_cpu_price_per_hour < 0) return fail("--local-cpu-price: expected a dollar amount such as 0.05");
  if (const char* k = std::getenv("INFERA_ADMIN_KEY"); k && *k) {
    if (std::string_view(k).size() < 16) return fail("INFERA_ADMIN_KEY must be at least 16 characters");
    cfg.admin_key = k;
  }
  SystemClock clock;
  auto cp = ControlPlane::open(dir + "/platform.db", clock, cfg);
  if (!cp) return fail(cp.error());
  ControlPlane& plane = **cp;

  http::net::io_context io(1);
  PlatformServerOptions so;
  so.host = a.host;
  so.port = static_cast<uint16_t>(a.port);
  so.auth_none = a.auth == "none";
  so.endpoint_domain = a.endpoint_domain;
  PlatformServer server(io, plane, so);
  if (Status s = server.start(); !s) return fail(s.message());
  if (cfg.public_url.empty()) {  // known only now when --port 0
    const std::string h = a.host == "0.0.0.0" || a.host == "::" ? "127.0.0.1" : a.host;
    cfg.public_url = fmt::format("http://{}:{}", h, server.port());
    plane.set_public_url(cfg.public_url);
  }

  // The local node: runs replicas of the local-cpu market on this machine.
  bool plane_alive = true;
  std::unique_ptr<NodeLink> link;
  std::unique_ptr<NodeAgent> agent;
  if (!a.no_local_node) {
    NodeOptions no;
    no.name = "local";
    no.models_dir = a.models_dir.empty() ? dir + "/models" : a.models_dir;
    fs::create_directories(no.models_dir, ec);
    no.infera_binary = fs::read_symlink("/proc/self/exe", ec).string();
    no.max_jobs = a.max_jobs;
    no.serve_threads = a.serve_threads;
    no.health_interval = std::chrono::milliseconds(static_cast<int64_t>(a.health_interval_s * 1000));
    link = make_local_link(io, plane, plane_alive);
    agent = std::make_unique<NodeAgent>(*link, no);
  }
  std::fprintf(stderr, "infera platform: listening on http://%s:%u (API /api, data %s)\n", a.host.c_str(),
               server.port(), dir.c_str());
  if (plane.new_admin_key())
    std::fprintf(stderr,
                 "infera platform: admin API key (shown once, store it now):\n  %s\n"
                 "  use it: infera login --platform %s --api-key <key>\n",
                 plane.new_admin_key()->c_str(), cfg.public_url.c_str());
  if (!a.deploy.empty()) {
    const Template* t = TemplateCatalog::builtin().find(a.deploy);
    if (!t) return fail(fmt::format("--deploy: unknown template {}", a.deploy));
    json jd = json::parse(t->job_definition_text);
    if (!a.deploy_model.empty()) {  // the op's --model becomes this path
      for (json& op : jd["ops"]) {
        json& cmd = op["args"]["cmd"];
        for (size_t i = 0; cmd.is_array() && i + 1 < cmd.size(); ++i)
          if (cmd[i] == "--model") cmd[i + 1] = fs::absolute(a.deploy_model).string();
      }
    }
    json body{{"market", "local-cpu"}, {"strategy", "SIMPLE"}, {"replicas", 1}, {"timeout", a.deploy_timeout_min},
              {"autostart", true}, {"template", t->id}, {"job_definition", jd}};
    auto d = plane.create_deployment(plane.admin(), body);
    if (!d) return fail(fmt::format("--deploy {}: {}", a.deploy, d.error().message));
    std::fprintf(stderr, "infera platform: deployment %s (%s) created from %s; endpoint %s\n",
                 (*d)["id"].get<std::string>().c_str(), (*d)["name"].get<std::string>().c_str(), a.deploy.c_str(),
                 (*d)["endpoints"].empty() ? "-" : (*d)["endpoints"][0]["url"].get<std::string>().c_str());
  }
  std::fflush(stderr);
  std::thread stopper;
  http::net::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& e, int sig) {
    if (e) return;
    std::fprintf(stderr, "infera platform: signal %d: stopping replicas, then the platform\n", sig);
    // The agent reports its jobs' ends through this io_context: stop it from another thread.
    stopper = std::thread([&] {
      if (agent) agent->stop();
      http::net::post(io, [&] {
        plane_alive = false;
        server.stop();
        io.stop();
      });
    });
  });
  if (agent) {
    std::thread starter([&] {
      if (Status s = agent->start(); !s) std::fprintf(stderr, "infera platform: local node: %s\n", s.message().c_str());
      else std::fprintf(stderr, "infera platform: local node %s serves market local-cpu\n", agent->node_id().c_str());
    });
    starter.detach();
  }
  io.run();
  if (stopper.joinable()) stopper.join();
  std::fprintf(stderr, "infera platform: stopped\n");
  return 0;
}

}  // namespace

void add_platform(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<PlatformArgs>();
  CLI::App* c = app.add_subcommand("platform", "Run the deployment platform (REST API, scheduler, credits)");
  c->add_option("--host", a->host, "address to bind")->capture_default_str();
  c->add_option("--port", a->port, "port of the API, dashboard and gateway (0: any)")->capture_default_str();
  c->add_option("--data-dir", a->data_dir, "where the store lives (default ~/.local/share/infera)");
  c->add_option("--endpoint-domain", a->endpoint_domain, "wildcard domain for endpoint URLs (https://<label>.<domain>/)");
  c->add_option("--public-url", a->public_url, "base URL users reach this platform at (default http://HOST:PORT)");
  c->add_option("--auth", a->auth, "key: API keys; none: every request is the admin (loopback only)")->capture_default_str();
  c->add_option("--local-cpu-price", a->local_cpu_price, "USD per hour billed on the local-cpu market")->capture_default_str();
  c->add_option("--deploy", a->deploy, "create and start a deployment of this template on local-cpu at start");
  c->add_option("--deploy-timeout", a->deploy_timeout_min, "timeout in minutes of the --deploy deployment")
      ->capture_default_str()->check(CLI::Range(1, 6000));
  c->add_flag("--no-local-node", a->no_local_node, "do not run replicas on this machine");
  c->add_option("--models-dir", a->models_dir, "the local node's model store (default DATA_DIR/models)");
  c->add_option("--max-jobs", a->max_jobs, "replicas the local node runs at once")->capture_default_str();
  c->add_option("--serve-threads", a->serve_threads, "compute threads per replica (default: the physical cores)");
  c->add_option("--health-interval", a->health_interval_s, "seconds between start-up health checks")->capture_default_str();
  c->add_option("--model", a->deploy_model, "with --deploy: serve this local model file or folder");
  c->add_option("--node-offline-after", a->node_offline_s, "seconds without a heartbeat before a node is OFFLINE")
      ->capture_default_str()->check(CLI::Range(1.0, 3600.0));
  c->add_option("--node-lost-grace", a->node_lost_grace_s, "further seconds before its jobs end NODE_LOST")
      ->capture_default_str()->check(CLI::Range(0.0, 3600.0));
  c->callback([a, exit_code] { *exit_code = run_platform(*a); });
}

}  // namespace infera::cli
