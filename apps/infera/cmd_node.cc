// infera node run (a node agent on this host, spec platform.md §16), infera node list|get|drain|
// join-token (admin), and infera model list|import (the node's model store).
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "cli_util.h"
#include "commands.h"
#include "platform/node_agent.h"
#include "platform/replica_command.h"
#include "platform_client.h"

namespace infera::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string default_models_dir() {
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return std::string(x) + "/infera/models";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.local/share/infera/models";
  return ".infera/models";
}

volatile std::sig_atomic_t g_stop = 0;

struct NodeRunArgs {
  std::string platform, token, name, models_dir, address = "127.0.0.1";
  std::vector<std::string> markets;
  int max_jobs = 4, serve_threads = 0;
  double health_interval_s = 5;
};

int run_node(const NodeRunArgs& a) {
  using namespace infera::platform;
  NodeOptions o;
  o.name = a.name.empty() ? "node" : a.name;
  o.markets = a.markets.empty() ? std::vector<std::string>{"local-cpu"} : a.markets;
  o.address = a.address;
  o.bind_host = a.address == "127.0.0.1" || a.address == "localhost" ? "127.0.0.1" : "0.0.0.0";
  o.models_dir = a.models_dir.empty() ? default_models_dir() : a.models_dir;
  std::error_code ec;
  fs::create_directories(o.models_dir, ec);
  o.infera_binary = fs::read_symlink("/proc/self/exe", ec).string();
  o.max_jobs = a.max_jobs;
  o.serve_threads = a.serve_threads;
  o.health_interval = std::chrono::milliseconds(static_cast<int64_t>(a.health_interval_s * 1000));
  auto link = make_http_link(a.platform, a.token);
  NodeAgent agent(*link, o);
  Status s = Status::error("not started");
  for (int attempt = 0; attempt < 30 && !g_stop; ++attempt) {  // the platform may still be starting
    s = agent.start();
    if (s || s.message().find("401") != std::string::npos || s.message().find("400") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (!s) return fail(fmt::format("cannot join the platform at {}: {}", a.platform, s.message()));
  std::fprintf(stderr, "infera node: %s joined %s as node %s (markets %s, models %s)\n", o.name.c_str(), a.platform.c_str(),
               agent.node_id().c_str(), fmt::format("{}", fmt::join(o.markets, ",")).c_str(), o.models_dir.c_str());
  std::fflush(stderr);
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  std::signal(SIGINT, [](int) { g_stop = 1; });
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::fprintf(stderr, "infera node: stopping replicas\n");
  agent.stop();
  return 0;
}

}  // namespace

void add_node(CLI::App& app, int* exit_code) {
  CLI::App* node = app.add_subcommand("node", "Nodes that run replicas");
  node->require_subcommand(1);
  auto a = std::make_shared<NodeRunArgs>();
  CLI::App* run = node->add_subcommand("run", "Run a node agent on this host, joined to a platform");
  run->add_option("--platform", a->platform, "platform URL, e.g. http://10.0.0.5:8080")->required();
  run->add_option("--token", a->token, "join token (infera node join-token)")->required();
  run->add_option("--name", a->name, "node name");
  run->add_option("--market", a->markets, "market slug(s) this node serves (default local-cpu)");
  run->add_option("--models-dir", a->models_dir, "model store (default ~/.local/share/infera/models)");
  run->add_option("--address", a->address, "address the platform's gateway reaches this host at")->capture_default_str();
  run->add_option("--max-jobs", a->max_jobs, "replicas at once")->capture_default_str();
  run->add_option("--serve-threads", a->serve_threads, "compute threads per replica");
  run->add_option("--health-interval", a->health_interval_s, "seconds between start-up health checks")->capture_default_str();
  run->callback([a, exit_code] { *exit_code = run_node(*a); });

  // Admin views over the REST API.
  struct C {
    std::string platform, api_key, id;
    bool json_out = false;
  };
  auto call = [](const C& c, const std::string& method, const std::string& path, const json& body,
                 const std::function<void(const json&)>& show) {
    auto r = call_api(resolve_target({c.platform, c.api_key}), method, path, body);
    if (!r) return fail(r.error());
    if (r->status != 200) {
      std::fprintf(stderr, "infera: %s (HTTP %ld)\n",
                   r->body.is_object() ? r->body.value("error", r->body.dump()).c_str() : r->body.dump().c_str(), r->status);
      return exit_code_for(r->status);
    }
    if (c.json_out) std::printf("%s\n", r->body.dump(2).c_str());
    else show(r->body);
    return 0;
  };
  auto common = [](CLI::App* sc, C& c) {
    sc->add_option("--platform", c.platform, "platform URL");
    sc->add_option("--api-key", c.api_key, "API key");
    sc->add_flag("--json", c.json_out, "raw JSON");
  };
  auto ls = std::make_shared<C>();
  CLI::App* l = node->add_subcommand("list", "List nodes");
  common(l, *ls);
  l->callback([ls, exit_code, call] {
    *exit_code = call(*ls, "GET", "/nodes", nullptr, [](const json& r) {
      std::printf("%-46s %-12s %-9s %-14s %s\n", "ID", "NAME", "STATUS", "MARKETS", "RUNNING");
      for (const json& n : r["nodes"])
        std::printf("%-46s %-12s %-9s %-14s %s\n", n["id"].get<std::string>().c_str(), n["name"].get<std::string>().c_str(),
                    n["status"].get<std::string>().c_str(), n["markets"].dump().c_str(), n["running_jobs"].dump().c_str());
    });
  });
  auto gt = std::make_shared<C>();
  CLI::App* g = node->add_subcommand("get", "Show a node");
  common(g, *gt);
  g->add_option("id", gt->id)->required();
  g->callback([gt, exit_code, call] {
    *exit_code = call(*gt, "GET", "/nodes/" + gt->id, nullptr, [](const json& n) { std::printf("%s\n", n.dump(2).c_str()); });
  });
  auto dr = std::make_shared<C>();
  CLI::App* d = node->add_subcommand("drain", "Take no new jobs on a node");
  common(d, *dr);
  d->add_option("id", dr->id)->required();
  d->callback([dr, exit_code, call] {
    *exit_code = call(*dr, "POST", "/nodes/" + dr->id + "/drain", json::object(),
                      [](const json& n) { std::printf("%s\n", n.value("status", "").c_str()); });
  });
  auto jt = std::make_shared<C>();
  CLI::App* t = node->add_subcommand("join-token", "Create a join token for `infera node run`");
  common(t, *jt);
  t->callback([jt, exit_code, call] {
    *exit_code = call(*jt, "POST", "/nodes/join-tokens", json::object(), [](const json& r) {
      std::printf("%s\n", r.value("token", "").c_str());
      std::fprintf(stderr, "infera: valid until %s\n", r.value("expires_at", "").c_str());
    });
  });

  // The model store.
  CLI::App* model = app.add_subcommand("model", "The node's model store");
  model->require_subcommand(1);
  struct M {
    std::string path, as, dir;
    bool demo = false, copy = false;
  };
  auto im = std::make_shared<M>();
  CLI::App* i = model->add_subcommand("import", "Put a local model (GGUF file or HF folder) in the store under a Hub name");
  i->add_option("path", im->path, "GGUF file or Hugging Face model folder")->required()->check(CLI::ExistingPath);
  i->add_option("--as", im->as, "name the templates use, e.g. deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B")->required();
  i->add_option("--models-dir", im->dir, "model store (default ~/.local/share/infera/models)");
  i->add_flag("--demo", im->demo, "mark it as a generated demo model with random weights");
  i->add_flag("--copy", im->copy, "copy the files instead of linking them");
  i->callback([im, exit_code] {
    const std::string store = im->dir.empty() ? default_models_dir() : im->dir;
    if (im->as.find("..") != std::string::npos || im->as.empty() || im->as[0] == '/') {
      *exit_code = fail("--as must be a repository name like org/name");
      return;
    }
    const fs::path dest = fs::path(store) / im->as;
    std::error_code ec;
    fs::remove_all(dest, ec);
    fs::create_directories(dest, ec);
    if (ec) {
      *exit_code = fail(fmt::format("cannot create {}: {}", dest.string(), ec.message()));
      return;
    }
    const fs::path src = fs::absolute(im->path);
    auto place = [&](const fs::path& from, const fs::path& to) {
      if (im->copy) fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
      else fs::create_symlink(from, to, ec);
    };
    if (fs::is_directory(src)) {
      for (const auto& e : fs::directory_iterator(src)) place(e.path(), dest / e.path().filename());
    } else {
      place(src, dest / src.filename());
    }
    if (ec) {
      *exit_code = fail(fmt::format("cannot import {}: {}", src.string(), ec.message()));
      return;
    }
    if (im->demo) {
      FILE* f = std::fopen((dest / platform::kDemoMarker).c_str(), "w");
      if (f) {
        std::fputs("generated by `infera make-model`: random weights, not the real model\n", f);
        std::fclose(f);
      }
    }
    std::printf("%s -> %s%s\n", im->as.c_str(), dest.string().c_str(), im->demo ? " (demo: random weights)" : "");
  });
  auto ml = std::make_shared<M>();
  CLI::App* lm = model->add_subcommand("list", "List the models in the store");
  lm->add_option("--models-dir", ml->dir, "model store");
  lm->callback([ml, exit_code] {
    const std::string store = ml->dir.empty() ? default_models_dir() : ml->dir;
    std::error_code ec;
    for (const auto& org : fs::directory_iterator(store, ec)) {
      if (!org.is_directory()) continue;
      for (const auto& m : fs::directory_iterator(org.path(), ec)) {
        const std::string name = org.path().filename().string() + "/" + m.path().filename().string();
        auto r = platform::resolve_model(name, store, "");
        std::printf("%-50s %s%s\n", name.c_str(), r ? r->path.c_str() : "(incomplete)",
                    r && r->demo ? "  [demo: random weights]" : "");
      }
    }
  });
}

}  // namespace infera::cli
