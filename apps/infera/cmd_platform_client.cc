// Platform CLI (spec platform.md §18): deploy, job, market, template, credits, apikey, login.
// Every command is one or a few REST calls; tables for people, --json for scripts; exit codes
// 0 ok, 1 error, 2 usage, 3 not found, 4 wrong state, 5 insufficient credits.
#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "cli_util.h"
#include "commands.h"
#include "platform/job_definition.h"
#include "platform/templates.h"
#include "platform_client.h"

namespace infera::cli {

namespace {

using nlohmann::json;

struct Common {
  std::string platform, api_key;
  bool json_out = false;
};

void add_common(CLI::App* c, Common& o) {
  c->add_option("--platform", o.platform, "platform URL (default $INFERA_PLATFORM_URL, login, http://127.0.0.1:8080)");
  c->add_option("--api-key", o.api_key, "API key (default $INFERA_API_KEY or the saved login)");
  c->add_flag("--json", o.json_out, "print the raw JSON answer");
}

std::string str(const json& j, const char* key, const char* fallback = "-") {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return fallback;
  if (j[key].is_string()) return j[key].get<std::string>();
  return j[key].dump();
}

void print_table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(head.size());
  for (size_t i = 0; i < head.size(); ++i) w[i] = head[i].size();
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], r[i].size());
  auto line = [&](const std::vector<std::string>& r) {
    std::string s;
    for (size_t i = 0; i < r.size(); ++i) s += fmt::format("{:<{}}", r[i], i + 1 < r.size() ? w[i] + 2 : 0);
    while (!s.empty() && s.back() == ' ') s.pop_back();
    std::printf("%s\n", s.c_str());
  };
  line(head);
  for (const auto& r : rows) line(r);
}

// Runs one call; prints the error and returns its exit code, or passes the body to `show`.
int call(const Common& o, const std::string& method, const std::string& path, const json& body,
         const std::function<void(const json&)>& show) {
  auto r = call_api(resolve_target({o.platform, o.api_key}), method, path, body);
  if (!r) return fail(r.error());
  if (r->status < 200 || r->status >= 300) {
    std::string msg = r->body.is_object() && r->body.contains("error") && r->body["error"].is_string()
                          ? r->body["error"].get<std::string>()
                          : r->body.dump();
    std::fprintf(stderr, "infera: %s (HTTP %ld)\n", msg.c_str(), r->status);
    return exit_code_for(r->status);
  }
  if (o.json_out) std::printf("%s\n", r->body.dump(2).c_str());
  else if (show) show(r->body);
  return 0;
}

Result<json> read_json_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) return error("cannot read {}", path);
  try {
    return json::parse(f);
  } catch (const json::parse_error& e) {
    return error("{}: malformed JSON: {}", path, e.what());
  }
}

// "60m", "2h", "1d", "90" (minutes), "3600s" -> minutes.
Result<int64_t> parse_minutes(const std::string& text) {
  if (text.empty()) return error("empty duration");
  size_t i = 0;
  double v = 0;
  try {
    v = std::stod(text, &i);
  } catch (...) {
    return error("bad duration '{}': expected e.g. 60m, 2h, 1.5h", text);
  }
  std::string unit = text.substr(i);
  double minutes = unit.empty() || unit == "m" || unit == "min" ? v
                   : unit == "h"                                 ? v * 60
                   : unit == "d"                                 ? v * 1440
                   : unit == "s"                                 ? v / 60
                                                                 : -1;
  if (minutes < 0) return error("bad duration '{}': unit must be s, m, h or d", text);
  if (minutes != static_cast<double>(static_cast<int64_t>(minutes)))
    return error("bad duration '{}': must be a whole number of minutes", text);
  return static_cast<int64_t>(minutes);
}

void show_deployment(const json& d) {
  std::printf("id:        %s\nname:      %s\nstatus:    %s (health %s, ready %s/%s, active jobs %s)\n",
              str(d, "id").c_str(), str(d, "name").c_str(), str(d, "status").c_str(), str(d, "health").c_str(),
              str(d, "ready_replicas").c_str(), str(d, "replicas").c_str(), str(d, "active_jobs").c_str());
  std::printf("strategy:  %s, %s replica(s), timeout %s min\nmarket:    %s\nrevision:  %s\n", str(d, "strategy").c_str(),
              str(d, "replicas").c_str(), str(d, "timeout").c_str(), str(d, "market_slug", str(d, "market").c_str()).c_str(),
              str(d, "active_revision").c_str());
  if (d.contains("schedule")) std::printf("schedule:  %s\n", str(d, "schedule").c_str());
  if (d.contains("endpoints"))
    for (const json& e : d["endpoints"])
      std::printf("endpoint:  %s  (%s port %s, %s)\n", str(e, "url").c_str(), str(e, "opId").c_str(),
                  str(e, "port").c_str(), str(e, "status").c_str());
  std::printf("created:   %s\nupdated:   %s\n", str(d, "created_at").c_str(), str(d, "updated_at").c_str());
}

// Polls until every replica is ready (0), or the deployment can no longer get there (1); `latest`
// receives the deployment as last read.
int wait_ready(const Common& o, const std::string& id, json& latest) {
  std::string last;
  for (;;) {
    auto r = call_api(resolve_target({o.platform, o.api_key}), "GET", "/deployments/" + id);
    if (!r) return fail(r.error());
    if (r->status != 200) return exit_code_for(r->status);
    latest = r->body;
    const json& d = r->body;
    const std::string st = str(d, "status"), health = str(d, "health");
    const std::string line = fmt::format("{} · ready {}/{}", st, str(d, "ready_replicas"), str(d, "replicas"));
    if (line != last) std::fprintf(stderr, "infera: %s\n", line.c_str());
    last = line;
    if (health == "READY") return 0;
    if (st != "STARTING" && st != "RUNNING") {
      std::fprintf(stderr, "infera: deployment is %s; it will not become ready\n", st.c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

std::string short_id(const std::string& id) { return id.size() > 8 ? id.substr(0, 8) : id; }

void add_deploy(CLI::App& app, int* exit_code) {
  CLI::App* deploy = app.add_subcommand("deploy", "Create and manage deployments on the platform");
  deploy->require_subcommand(1);

  // create
  {
    struct A {
      Common o;
      std::string template_id, file, market = "local-cpu", strategy = "SIMPLE", timeout = "60m", name, schedule;
      int replicas = 1, rotation = 0, startup_timeout = 0;
      bool no_start = false, wait_ready = false;
    };
    auto a = std::make_shared<A>();
    CLI::App* c = deploy->add_subcommand("create", "Create a deployment (starts it unless --no-start)");
    add_common(c, a->o);
    auto* tf = c->add_option("--template", a->template_id, "template id, e.g. deepseek-r1-qwen-1-5b");
    auto* ff = c->add_option("--file", a->file, "job definition JSON file");
    tf->excludes(ff);
    c->add_option("--market", a->market, "market slug or address")->capture_default_str();
    c->add_option("--strategy", a->strategy, "SIMPLE, SIMPLE-EXTEND, SCHEDULED or INFINITE")->capture_default_str();
    c->add_option("--replicas", a->replicas, "replicas (1-100)")->capture_default_str();
    c->add_option("--timeout", a->timeout, "maximum lifetime of each job (60m, 2h, ...)")->capture_default_str();
    c->add_option("--name", a->name, "deployment name (default: generated)");
    c->add_option("--schedule", a->schedule, "cron (UTC) for SCHEDULED");
    c->add_option("--rotation-time", a->rotation, "INFINITE: minutes before the timeout to start a replacement");
    c->add_option("--startup-timeout", a->startup_timeout, "minutes a job has to become ready (default 30)");
    c->add_flag("--no-start", a->no_start, "create as DRAFT");
    c->add_flag("--wait-ready", a->wait_ready, "wait until every replica is ready");
    c->callback([a, exit_code] {
      json jd;
      std::optional<std::string> template_id;
      if (!a->template_id.empty()) {
        const auto* t = platform::TemplateCatalog::builtin().find(a->template_id);
        if (!t) {
          *exit_code = 2;
          std::fprintf(stderr, "infera: unknown template %s (see `infera template list`)\n", a->template_id.c_str());
          return;
        }
        jd = json::parse(t->job_definition_text);
        template_id = t->id;
      } else if (!a->file.empty()) {
        auto j = read_json_file(a->file);
        if (!j) {
          *exit_code = fail(j.error());
          return;
        }
        jd = *j;
      } else {
        *exit_code = 2;
        std::fprintf(stderr, "infera: deploy create needs --template or --file\n");
        return;
      }
      auto minutes = parse_minutes(a->timeout);
      if (!minutes) {
        *exit_code = 2;
        std::fprintf(stderr, "infera: --timeout: %s\n", minutes.error().c_str());
        return;
      }
      json body{{"market", a->market}, {"strategy", a->strategy}, {"replicas", a->replicas}, {"timeout", *minutes},
                {"autostart", !a->no_start}, {"job_definition", jd}};
      if (!a->name.empty()) body["name"] = a->name;
      if (!a->schedule.empty()) body["schedule"] = a->schedule;
      if (a->rotation > 0) body["rotation_time"] = a->rotation;
      if (a->startup_timeout > 0) body["startup_timeout"] = a->startup_timeout;
      if (template_id) body["template"] = *template_id;
      Common quiet = a->o;
      quiet.json_out = false;
      json created;
      *exit_code = call(quiet, "POST", "/deployments/create", body, [&](const json& d) { created = d; });
      if (*exit_code != 0) return;
      // With --wait-ready the deployment is shown as it is once ready (or once it cannot get there).
      if (a->wait_ready) *exit_code = wait_ready(a->o, created["id"], created);
      if (a->o.json_out) std::printf("%s\n", created.dump(2).c_str());
      else show_deployment(created);
    });
  }

  // list
  {
    struct A {
      Common o;
      std::string status, strategy, search;
      int limit = 100;
    };
    auto a = std::make_shared<A>();
    CLI::App* c = deploy->add_subcommand("list", "List deployments");
    add_common(c, a->o);
    c->add_option("--status", a->status, "comma-separated statuses (ARCHIVED only when named)");
    c->add_option("--strategy", a->strategy, "comma-separated strategies");
    c->add_option("--search", a->search, "name or id contains");
    c->add_option("--limit", a->limit, "10, 20, 50 or 100")->capture_default_str();
    c->callback([a, exit_code] {
      std::string q = fmt::format("/deployments?limit={}", a->limit);
      if (!a->status.empty()) q += "&status=" + a->status;
      if (!a->strategy.empty()) q += "&strategy=" + a->strategy;
      if (!a->search.empty()) q += "&search=" + a->search;
      *exit_code = call(a->o, "GET", q, nullptr, [](const json& r) {
        std::vector<std::vector<std::string>> rows;
        for (const json& d : r["deployments"])
          rows.push_back({str(d, "id"), str(d, "name"), str(d, "status"),
                          fmt::format("{}/{}", str(d, "ready_replicas"), str(d, "replicas")), str(d, "active_jobs"),
                          str(d, "strategy"), str(d, "market_slug"), str(d, "updated_at")});
        if (rows.empty()) {
          std::printf("No deployments. Create one: infera deploy create --template deepseek-r1-qwen-1-5b\n");
          return;
        }
        print_table({"ID", "NAME", "STATUS", "READY", "JOBS", "STRATEGY", "MARKET", "UPDATED"}, rows);
      });
    });
  }

  // commands taking one deployment id
  struct IdArgs {
    Common o;
    std::string id;
  };
  auto simple = [&](const char* name, const char* help, const char* method, const char* suffix,
                    std::function<void(const json&)> show) {
    auto a = std::make_shared<IdArgs>();
    CLI::App* c = deploy->add_subcommand(name, help);
    add_common(c, a->o);
    c->add_option("id", a->id, "deployment id")->required();
    c->callback([a, exit_code, method, suffix, show] {
      *exit_code = call(a->o, method, "/deployments/" + a->id + suffix, std::string(method) == "GET" ||
                                                                                std::string(method) == "DELETE"
                                                                            ? json(nullptr)
                                                                            : json::object(),
                        show);
    });
  };
  auto show_status = [](const json& r) { std::printf("%s\n", str(r, "status", "ok").c_str()); };
  simple("get", "Show a deployment", "GET", "", show_deployment);
  simple("start", "Start a deployment", "POST", "/start", show_status);
  simple("stop", "Stop a deployment (jobs end, unused credit is refunded)", "POST", "/stop", show_status);
  simple("archive", "Archive a stopped deployment (cannot be undone)", "POST", "/archive", show_status);
  simple("delete", "Delete a stopped or draft deployment", "DELETE", "", [](const json&) { std::printf("deleted\n"); });
  simple("jobs", "List a deployment's jobs", "GET", "/jobs?limit=100", [](const json& r) {
    std::vector<std::vector<std::string>> rows;
    for (const json& j : r["jobs"])
      rows.push_back({str(j, "job"), str(j, "state"), str(j, "phase"), str(j, "endpoint_status"), str(j, "node"),
                      str(j, "revision"), str(j, "end_reason"), fmt::format("${:.4f}", j.value("cost_usd", 0.0))});
    print_table({"JOB", "STATE", "PHASE", "ENDPOINT", "NODE", "REV", "END", "COST"}, rows);
  });
  simple("events", "List a deployment's events", "GET", "/events?limit=100", [](const json& r) {
    std::vector<std::vector<std::string>> rows;
    for (const json& e : r["events"]) rows.push_back({str(e, "created_at"), str(e, "type"), str(e, "message")});
    print_table({"TIME", "TYPE", "MESSAGE"}, rows);
  });
  simple("tasks", "List a deployment's upcoming tasks", "GET", "/tasks?limit=100", [](const json& r) {
    std::vector<std::vector<std::string>> rows;
    for (const json& t : r["tasks"]) rows.push_back({str(t, "task"), str(t, "due_at"), str(t, "job"), str(t, "limit")});
    print_table({"TASK", "DUE", "JOB", "LIMIT"}, rows);
  });
  simple("endpoint", "Print a deployment's endpoint URL(s)", "GET", "", [](const json& d) {
    for (const json& e : d["endpoints"]) std::printf("%s\n", str(e, "url").c_str());
  });

  // logs
  {
    struct A {
      Common o;
      std::string id, job, op;
      bool follow = false;
    };
    auto a = std::make_shared<A>();
    CLI::App* c = deploy->add_subcommand("logs", "Show (or follow) a deployment's logs");
    add_common(c, a->o);
    c->add_option("id", a->id, "deployment id")->required();
    c->add_option("--job", a->job, "only this job");
    c->add_option("--op", a->op, "only this op");
    c->add_flag("-f,--follow", a->follow, "keep streaming new lines");
    c->callback([a, exit_code] {
      auto print = [a](const json& l) {
        if (!a->op.empty() && l.value("opId", json()).is_string() && l["opId"] != a->op) return;
        std::string who = l.value("opId", json()).is_string() ? l["opId"].get<std::string>() + " " + l.value("stream", "")
                                                               : std::string("system");
        while (!who.empty() && who.back() == ' ') who.pop_back();
        const int64_t ts = l.value("timestamp", int64_t{0});
        std::time_t secs = static_cast<std::time_t>(ts / 1000);
        std::tm tm{};
        gmtime_r(&secs, &tm);
        std::printf("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ [%s%s] %s\n", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                    tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ts % 1000),
                    a->job.empty() ? (l.value("job", std::string("")).substr(0, 8) + " ").c_str() : "", who.c_str(),
                    l.value("message", std::string("")).c_str());
        std::fflush(stdout);
      };
      const std::string base = "/deployments/" + a->id + (a->job.empty() ? "" : "/jobs/" + a->job) + "/logs";
      if (a->follow) {
        Status s = follow_sse(resolve_target({a->o.platform, a->o.api_key}), base + "?follow=true",
                              [&](const std::string&, const std::string& event, const std::string& data) {
                                if (event == "end") return false;
                                try {
                                  json l = json::parse(data);
                                  if (a->o.json_out) std::printf("%s\n", l.dump().c_str());
                                  else print(l);
                                } catch (const std::exception&) {
                                }
                                return true;
                              });
        if (!s) *exit_code = fail(s.message());
        return;
      }
      int64_t since = 0;
      for (;;) {
        json page;
        *exit_code = call(Common{a->o.platform, a->o.api_key, false}, "GET",
                          base + "?limit=10000&since_seq=" + std::to_string(since), nullptr,
                          [&](const json& r) { page = r; });
        if (*exit_code != 0 || page.is_null()) return;
        for (const json& l : page["logs"]) {
          if (a->o.json_out) std::printf("%s\n", l.dump().c_str());
          else print(l);
        }
        if (a->job.empty() || page["logs"].size() < 10000) return;
        since = page["next_seq"];
      }
    });
  }

  // updates
  {
    struct A {
      Common o;
      std::string id, value;
      int replicas = -1;
    };
    auto scale = std::make_shared<A>();
    CLI::App* c = deploy->add_subcommand("scale", "Change the replica count");
    add_common(c, scale->o);
    c->add_option("id", scale->id)->required();
    c->add_option("--replicas", scale->replicas, "0-100")->required();
    c->callback([scale, exit_code] {
      *exit_code = call(scale->o, "PATCH", "/deployments/" + scale->id + "/update-replica-count",
                        json{{"replicas", scale->replicas}}, [](const json& r) { std::printf("replicas: %s\n", str(r, "replicas").c_str()); });
    });
    auto tmo = std::make_shared<A>();
    c = deploy->add_subcommand("set-timeout", "Change the job timeout");
    add_common(c, tmo->o);
    c->add_option("id", tmo->id)->required();
    c->add_option("--timeout", tmo->value, "120m, 2h, ...")->required();
    c->callback([tmo, exit_code] {
      auto m = parse_minutes(tmo->value);
      if (!m) {
        std::fprintf(stderr, "infera: --timeout: %s\n", m.error().c_str());
        *exit_code = 2;
        return;
      }
      *exit_code = call(tmo->o, "PATCH", "/deployments/" + tmo->id + "/update-timeout", json{{"timeout", *m}},
                        [](const json& r) { std::printf("timeout: %s min\n", str(r, "timeout").c_str()); });
    });
    auto sch = std::make_shared<A>();
    c = deploy->add_subcommand("set-schedule", "Change the cron schedule (SCHEDULED)");
    add_common(c, sch->o);
    c->add_option("id", sch->id)->required();
    c->add_option("--schedule", sch->value, "5-field cron, UTC")->required();
    c->callback([sch, exit_code] {
      *exit_code = call(sch->o, "PATCH", "/deployments/" + sch->id + "/update-schedule", json{{"schedule", sch->value}},
                        [](const json& r) { std::printf("schedule: %s\n", str(r, "schedule").c_str()); });
    });
    auto ren = std::make_shared<A>();
    c = deploy->add_subcommand("rename", "Rename a deployment");
    add_common(c, ren->o);
    c->add_option("id", ren->id)->required();
    c->add_option("name", ren->value)->required();
    c->callback([ren, exit_code] {
      *exit_code = call(ren->o, "PATCH", "/deployments/" + ren->id + "/update-name", json{{"name", ren->value}},
                        [](const json& r) { std::printf("name: %s\n", str(r, "name").c_str()); });
    });
  }

  // revisions
  {
    CLI::App* rev = deploy->add_subcommand("revision", "Job-definition revisions");
    rev->require_subcommand(1);
    struct A {
      Common o;
      std::string id, file;
      int n = 0;
    };
    auto cr = std::make_shared<A>();
    CLI::App* c = rev->add_subcommand("create", "Create a revision from a job definition (active at once)");
    add_common(c, cr->o);
    c->add_option("id", cr->id)->required();
    c->add_option("--file", cr->file, "job definition JSON")->required();
    c->callback([cr, exit_code] {
      auto j = read_json_file(cr->file);
      if (!j) {
        *exit_code = fail(j.error());
        return;
      }
      *exit_code = call(cr->o, "POST", "/deployments/" + cr->id + "/create-revision", *j,
                        [](const json& r) { std::printf("active revision: %s\n", str(r, "active_revision").c_str()); });
    });
    auto use = std::make_shared<A>();
    c = rev->add_subcommand("use", "Activate revision N");
    add_common(c, use->o);
    c->add_option("id", use->id)->required();
    c->add_option("n", use->n)->required();
    c->callback([use, exit_code] {
      *exit_code = call(use->o, "PATCH", "/deployments/" + use->id + "/update-active-revision",
                        json{{"active_revision", use->n}},
                        [](const json& r) { std::printf("active revision: %s\n", str(r, "active_revision").c_str()); });
    });
    auto ls = std::make_shared<A>();
    c = rev->add_subcommand("list", "List revisions");
    add_common(c, ls->o);
    c->add_option("id", ls->id)->required();
    c->callback([ls, exit_code] {
      *exit_code = call(ls->o, "GET", "/deployments/" + ls->id + "/revisions?limit=100&sort_order=asc", nullptr,
                        [](const json& r) {
                          std::vector<std::vector<std::string>> rows;
                          for (const json& v : r["revisions"])
                            rows.push_back({str(v, "revision"), str(v, "ipfs_definition_hash"), str(v, "created_at")});
                          print_table({"REVISION", "HASH", "CREATED"}, rows);
                        });
    });
  }
}

void add_catalogue(CLI::App& app, int* exit_code) {
  CLI::App* market = app.add_subcommand("market", "GPU and CPU markets");
  market->require_subcommand(1);
  auto ml = std::make_shared<Common>();
  CLI::App* c = market->add_subcommand("list", "List markets with prices");
  add_common(c, *ml);
  c->callback([ml, exit_code] {
    *exit_code = call(*ml, "GET", "/markets", nullptr, [](const json& r) {
      std::vector<std::vector<std::string>> rows;
      for (const json& m : r)
        rows.push_back({str(m, "slug"), str(m, "name"), str(m, "type"), str(m, "kind"),
                        m.value("lowest_vram", 0) > 0 ? fmt::format("{} GB", m.value("lowest_vram", 0)) : "-",
                        fmt::format("${:.4f}", m.value("usd_price_per_hour", 0.0)), str(m, "available_nodes"),
                        str(m, "queued_jobs")});
      print_table({"SLUG", "NAME", "TIER", "KIND", "VRAM", "PRICE/H", "NODES", "QUEUED"}, rows);
    });
  });
  struct G {
    Common o;
    std::string id;
  };
  auto mg = std::make_shared<G>();
  c = market->add_subcommand("get", "Show one market");
  add_common(c, mg->o);
  c->add_option("id", mg->id, "slug or address")->required();
  c->callback([mg, exit_code] {
    *exit_code = call(mg->o, "GET", "/markets/" + mg->id, nullptr, [](const json& m) { std::printf("%s\n", m.dump(2).c_str()); });
  });

  CLI::App* tpl = app.add_subcommand("template", "Deployment templates");
  tpl->require_subcommand(1);
  auto tl = std::make_shared<Common>();
  c = tpl->add_subcommand("list", "List templates");
  add_common(c, *tl);
  c->callback([tl, exit_code] {
    *exit_code = call(*tl, "GET", "/jobs/templates", nullptr, [](const json& r) {
      std::vector<std::vector<std::string>> rows;
      for (const json& t : r) {
        int64_t vram = platform::required_vram_mb(t["job_definition"]);
        rows.push_back({str(t, "id"), str(t, "name"), vram > 0 ? fmt::format("{} MB", vram) : "-"});
      }
      print_table({"ID", "NAME", "VRAM"}, rows);
    });
  });
  auto tg = std::make_shared<G>();
  c = tpl->add_subcommand("get", "Print a template's job definition");
  add_common(c, tg->o);
  c->add_option("id", tg->id)->required();
  c->callback([tg, exit_code] {
    const auto* t = platform::TemplateCatalog::builtin().find(tg->id);
    if (!t) {
      std::fprintf(stderr, "infera: unknown template %s\n", tg->id.c_str());
      *exit_code = 3;
      return;
    }
    std::printf("%s", t->job_definition_text.c_str());
    if (!t->job_definition_text.empty() && t->job_definition_text.back() != '\n') std::printf("\n");
  });
}

void add_account(CLI::App& app, int* exit_code) {
  CLI::App* credits = app.add_subcommand("credits", "Credit balance and ledger");
  credits->require_subcommand(1);
  auto bal = std::make_shared<Common>();
  CLI::App* c = credits->add_subcommand("balance", "Show the credit balance");
  add_common(c, *bal);
  auto show_balance = [](const json& b) {
    std::printf("available: $%.6f\nreserved:  $%.6f\nspent:     $%.6f\nassigned:  $%.6f\n", b.value("availableCredits", 0.0),
                b.value("reservedCredits", 0.0), b.value("settledCredits", 0.0), b.value("assignedCredits", 0.0));
  };
  c->callback([bal, exit_code, show_balance] { *exit_code = call(*bal, "GET", "/credits/balance", nullptr, show_balance); });
  auto hist = std::make_shared<Common>();
  c = credits->add_subcommand("history", "Show the ledger");
  add_common(c, *hist);
  c->callback([hist, exit_code] {
    *exit_code = call(*hist, "GET", "/credits/transactions?limit=100", nullptr, [](const json& r) {
      std::vector<std::vector<std::string>> rows;
      for (const json& e : r["transactions"])
        rows.push_back({str(e, "created_at"), str(e, "type"), fmt::format("{:+.6f}", e.value("amount_usd", 0.0)),
                        e.contains("job") && e["job"].is_string() ? short_id(e["job"]) : "-", str(e, "description")});
      print_table({"TIME", "TYPE", "AMOUNT", "JOB", "DESCRIPTION"}, rows);
    });
  });
  struct V {
    Common o;
    std::string a, b;
  };
  auto cl = std::make_shared<V>();
  c = credits->add_subcommand("claim", "Claim a credit code");
  add_common(c, cl->o);
  c->add_option("code", cl->a)->required();
  c->callback([cl, exit_code, show_balance] {
    *exit_code = call(cl->o, "POST", "/credits/claim", json{{"code", cl->a}}, show_balance);
  });
  auto gr = std::make_shared<V>();
  c = credits->add_subcommand("grant", "Grant credits to an account (admin)");
  add_common(c, gr->o);
  c->add_option("account", gr->a)->required();
  c->add_option("amount", gr->b, "USD")->required();
  c->callback([gr, exit_code, show_balance] {
    double amount = 0;
    try {
      amount = std::stod(gr->b);
    } catch (...) {
      std::fprintf(stderr, "infera: amount must be a number of dollars\n");
      *exit_code = 2;
      return;
    }
    *exit_code = call(gr->o, "POST", "/credits/grant", json{{"account", gr->a}, {"amount", amount}}, show_balance);
  });

  CLI::App* key = app.add_subcommand("apikey", "Platform API keys");
  key->require_subcommand(1);
  struct K {
    Common o;
    std::string name, expires, id;
  };
  auto kc = std::make_shared<K>();
  c = key->add_subcommand("create", "Create a key (its secret is shown once)");
  add_common(c, kc->o);
  c->add_option("name", kc->name)->required();
  c->add_option("--expires", kc->expires, "30d, 60d, 90d or 365d (default: never)");
  c->callback([kc, exit_code] {
    json body{{"name", kc->name}, {"expires_in_days", nullptr}};
    if (!kc->expires.empty()) {
      std::string d = kc->expires;
      if (!d.empty() && d.back() == 'd') d.pop_back();
      try {
        body["expires_in_days"] = std::stoi(d);
      } catch (...) {
        std::fprintf(stderr, "infera: --expires: expected 30d, 60d, 90d or 365d\n");
        *exit_code = 2;
        return;
      }
    }
    *exit_code = call(kc->o, "POST", "/api-keys", body, [](const json& k) {
      std::printf("%s\n", str(k, "key").c_str());
      std::fprintf(stderr, "infera: key %s (%s) created; the secret above is shown only once\n", str(k, "id").c_str(),
                   str(k, "prefix").c_str());
    });
  });
  auto kl = std::make_shared<K>();
  c = key->add_subcommand("list", "List keys");
  add_common(c, kl->o);
  c->callback([kl, exit_code] {
    *exit_code = call(kl->o, "GET", "/api-keys?limit=100", nullptr, [](const json& r) {
      std::vector<std::vector<std::string>> rows;
      for (const json& k : r["api_keys"])
        rows.push_back({str(k, "id"), str(k, "name"), str(k, "prefix"), str(k, "status"), str(k, "created_at"),
                        str(k, "expires_at"), str(k, "last_used_at")});
      print_table({"ID", "NAME", "PREFIX", "STATUS", "CREATED", "EXPIRES", "LAST USED"}, rows);
    });
  });
  auto kr = std::make_shared<K>();
  c = key->add_subcommand("revoke", "Deactivate a key");
  add_common(c, kr->o);
  c->add_option("id", kr->id)->required();
  c->callback([kr, exit_code] {
    *exit_code = call(kr->o, "POST", "/api-keys/" + kr->id + "/update", json{{"status", "inactive"}},
                      [](const json& k) { std::printf("%s\n", str(k, "status").c_str()); });
  });
  auto kd = std::make_shared<K>();
  c = key->add_subcommand("delete", "Delete a key");
  add_common(c, kd->o);
  c->add_option("id", kd->id)->required();
  c->callback([kd, exit_code] {
    *exit_code = call(kd->o, "POST", "/api-keys/" + kd->id + "/delete", json::object(), [](const json&) { std::printf("deleted\n"); });
  });

  auto login = std::make_shared<Common>();
  c = app.add_subcommand("login", "Save the platform URL and API key for later commands");
  c->add_option("--platform", login->platform, "platform URL")->required();
  c->add_option("--api-key", login->api_key, "API key")->required();
  c->callback([login, exit_code] {
    PlatformTarget t = resolve_target({login->platform, login->api_key});
    auto r = call_api(t, "GET", "/whoami");
    if (!r) {
      *exit_code = fail(r.error());
      return;
    }
    if (r->status != 200) {
      std::fprintf(stderr, "infera: the platform refused this key (HTTP %ld)\n", r->status);
      *exit_code = 1;
      return;
    }
    const std::string path = credentials_path();
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    {
      std::ofstream f(path, std::ios::trunc);
      f << json{{"platform", t.url}, {"api_key", t.api_key}}.dump(2) << "\n";
      if (!f) {
        *exit_code = fail("cannot write " + path);
        return;
      }
    }
    chmod(path.c_str(), 0600);
    std::printf("logged in to %s as account %s; saved to %s\n", t.url.c_str(), str(r->body, "account").c_str(), path.c_str());
  });
}

void add_job(CLI::App& app, int* exit_code) {
  CLI::App* job = app.add_subcommand("job", "Raw jobs (no deployment)");
  job->require_subcommand(1);
  struct A {
    Common o;
    std::string market = "local-cpu", timeout = "60m", file, id;
  };
  auto post = std::make_shared<A>();
  CLI::App* c = job->add_subcommand("post", "List one job on a market");
  add_common(c, post->o);
  c->add_option("--market", post->market)->capture_default_str();
  c->add_option("--timeout", post->timeout, "maximum lifetime (60m, 2h)")->capture_default_str();
  c->add_option("--file", post->file, "job definition JSON")->required();
  c->callback([post, exit_code] {
    auto jd = read_json_file(post->file);
    auto m = parse_minutes(post->timeout);
    if (!jd || !m) {
      *exit_code = fail(!jd ? jd.error() : m.error());
      return;
    }
    *exit_code = call(post->o, "POST", "/jobs/list", json{{"market", post->market}, {"timeout", *m * 60}, {"job_definition", *jd}},
                      [](const json& j) { std::printf("%s %s\n", str(j, "job").c_str(), str(j, "state").c_str()); });
  });
  auto get = std::make_shared<A>();
  c = job->add_subcommand("get", "Show a job");
  add_common(c, get->o);
  c->add_option("id", get->id)->required();
  c->callback([get, exit_code] {
    *exit_code = call(get->o, "GET", "/jobs/" + get->id, nullptr, [](const json& j) { std::printf("%s\n", j.dump(2).c_str()); });
  });
  auto stop = std::make_shared<A>();
  c = job->add_subcommand("stop", "Stop a job");
  add_common(c, stop->o);
  c->add_option("id", stop->id)->required();
  c->callback([stop, exit_code] {
    *exit_code = call(stop->o, "POST", "/jobs/" + stop->id + "/stop", json::object(),
                      [](const json& j) { std::printf("%s\n", str(j, "state").c_str()); });
  });
  auto ext = std::make_shared<A>();
  c = job->add_subcommand("extend", "Extend a job's timeout");
  add_common(c, ext->o);
  c->add_option("id", ext->id)->required();
  c->add_option("--timeout", ext->timeout, "extra time (30m, 1h)")->required();
  c->callback([ext, exit_code] {
    auto m = parse_minutes(ext->timeout);
    if (!m) {
      *exit_code = fail(m.error());
      return;
    }
    *exit_code = call(ext->o, "POST", "/jobs/" + ext->id + "/extend", json{{"seconds", *m * 60}},
                      [](const json& j) { std::printf("timeout: %s s\n", str(j, "timeout").c_str()); });
  });
  auto val = std::make_shared<A>();
  c = job->add_subcommand("validate", "Check a job definition file");
  c->add_option("file", val->file)->required();
  c->callback([val, exit_code] {
    auto jd = read_json_file(val->file);
    if (!jd) {
      *exit_code = fail(jd.error());
      return;
    }
    auto errs = platform::validate_job_definition(*jd);
    if (errs.empty()) {
      std::printf("%s: valid (required VRAM %lld MB)\n", val->file.c_str(),
                  static_cast<long long>(platform::required_vram_mb(*jd)));
      return;
    }
    for (const auto& e : errs) std::fprintf(stderr, "%s\n", e.c_str());
    *exit_code = 1;
  });
}

}  // namespace

void add_platform_client(CLI::App& app, int* exit_code) {
  add_deploy(app, exit_code);
  add_job(app, exit_code);
  add_catalogue(app, exit_code);
  add_account(app, exit_code);
}

}  // namespace infera::cli
