// infera platform: the control plane (REST API, reconciler, store) on one port.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "cli_util.h"
#include "commands.h"
#include "platform/control_plane.h"
#include "platform/platform_server.h"
#include "platform/templates.h"

namespace infera::cli {

namespace {

struct PlatformArgs {
  std::string host = "127.0.0.1", data_dir, endpoint_domain, public_url, auth = "key", deploy, local_cpu_price = "0";
  int port = 8080;
  int deploy_timeout_min = 60;
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
  if (cfg.public_url.empty()) {
    const std::string h = a.host == "0.0.0.0" || a.host == "::" ? "127.0.0.1" : a.host;
    cfg.public_url = fmt::format("http://{}:{}", h, a.port);
  }
  while (!cfg.public_url.empty() && cfg.public_url.back() == '/') cfg.public_url.pop_back();
  cfg.local_cpu_price_per_hour = parse_usd(a.local_cpu_price);
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
  PlatformServer server(io, plane, so);
  if (Status s = server.start(); !s) return fail(s.message());

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
    json body{{"market", "local-cpu"}, {"strategy", "SIMPLE"}, {"replicas", 1}, {"timeout", a.deploy_timeout_min},
              {"autostart", true}, {"template", t->id}, {"job_definition", json::parse(t->job_definition.dump())}};
    auto d = plane.create_deployment(plane.admin(), body);
    if (!d) return fail(fmt::format("--deploy {}: {}", a.deploy, d.error().message));
    std::fprintf(stderr, "infera platform: deployment %s (%s) created from %s; endpoint %s\n",
                 (*d)["id"].get<std::string>().c_str(), (*d)["name"].get<std::string>().c_str(), a.deploy.c_str(),
                 (*d)["endpoints"].empty() ? "-" : (*d)["endpoints"][0]["url"].get<std::string>().c_str());
  }
  std::fflush(stderr);
  http::net::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& e, int sig) {
    if (e) return;
    std::fprintf(stderr, "infera platform: signal %d: stopping\n", sig);
    server.stop();
    io.stop();
  });
  io.run();
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
  c->callback([a, exit_code] { *exit_code = run_platform(*a); });
}

}  // namespace infera::cli
