#include "platform/job_definition.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <map>
#include <set>

#include "base/check.h"

namespace infera::platform {
namespace {

using json = nlohmann::json;
using Names = std::initializer_list<std::string_view>;

constexpr int64_t kMaxPort = 65535;
constexpr int kMaxCycleShown = 8;  // op ids listed in a dependency-cycle message

enum class Kind { kString, kInteger, kNumber, kBoolean, kArray, kObject };

bool is_kind(const json& v, Kind k) {
  switch (k) {
    case Kind::kString:
      return v.is_string();
    case Kind::kInteger:
      return v.is_number_integer();
    case Kind::kNumber:
      return v.is_number();
    case Kind::kBoolean:
      return v.is_boolean();
    case Kind::kArray:
      return v.is_array();
    case Kind::kObject:
      return v.is_object();
  }
  return false;
}

std::string_view kind_name(Kind k) {
  switch (k) {
    case Kind::kString:
      return "string";
    case Kind::kInteger:
      return "integer";
    case Kind::kNumber:
      return "number";
    case Kind::kBoolean:
      return "boolean";
    case Kind::kArray:
      return "array";
    case Kind::kObject:
      return "object";
  }
  return "?";
}

// True iff `v` is an integer in [lo, hi] (unsigned and signed storage alike).
bool integer_in(const json& v, int64_t lo, int64_t hi) {
  if (v.is_number_unsigned())
    return v.get<uint64_t>() <= static_cast<uint64_t>(hi) && v.get<int64_t>() >= lo;
  return v.is_number_integer() && v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
}

std::string at(std::string_view path, std::string_view key) {
  return fmt::format("{}.{}", path, key);
}
std::string at(std::string_view path, size_t index) { return fmt::format("{}[{}]", path, index); }

const json* get(const json& obj, std::string_view key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

bool has_whitespace(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c) != 0; });
}

// Parses "start-end" (decimal digits only) into [lo, hi]; false if malformed.
bool parse_range(std::string_view s, int64_t& lo, int64_t& hi) {
  size_t dash = s.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == s.size()) return false;
  auto num = [](std::string_view d, int64_t& out) {
    if (d.size() > 6) return false;
    out = 0;
    for (char c : d) {
      if (c < '0' || c > '9') return false;
      out = out * 10 + (c - '0');
    }
    return true;
  };
  return num(s.substr(0, dash), lo) && num(s.substr(dash + 1), hi);
}

// One exposed port or port range, for the uniqueness and overlap rules.
struct ExposedPorts {
  std::string path;
  int64_t lo = 0, hi = 0;
  bool range = false;
};

std::string describe(const ExposedPorts& e) {
  return e.range ? fmt::format("range {}-{}", e.lo, e.hi) : fmt::format("port {}", e.lo);
}

// Collects the problems of one job definition; see validate_job_definition for the contract.
class Validator {
 public:
  explicit Validator(std::string_view root) : root_(root) {}

  std::vector<std::string> run(const json& jd) {
    if (!jd.is_object()) {
      fail(root_, "expected object");
      return std::move(errors_);
    }
    only(jd, root_, {"version", "type", "meta", "global", "deployment_id", "ops"});
    if (const json* v = need(jd, "version", root_)) one_of(*v, at(root_, "version"), {"0.1"});
    if (const json* v = need(jd, "type", root_)) one_of(*v, at(root_, "type"), {"container"});
    if (const json* v = get(jd, "meta")) check_meta(*v, at(root_, "meta"));
    if (const json* v = get(jd, "global")) {
      check_global(*v, at(root_, "global"));
      const json* image = v->is_object() ? get(*v, "image") : nullptr;
      global_image_ = image && image->is_string() && !image->get_ref<const std::string&>().empty();
    }
    if (const json* v = get(jd, "deployment_id"))
      expect(*v, Kind::kString, at(root_, "deployment_id"));
    if (const json* v = need(jd, "ops", root_)) check_ops(*v, at(root_, "ops"));
    return std::move(errors_);
  }

 private:
  void fail(const std::string& path, std::string_view reason) {
    errors_.push_back(fmt::format("{}: {}", path, reason));
  }

  bool expect(const json& v, Kind k, const std::string& path) {
    if (is_kind(v, k)) return true;
    fail(path, fmt::format("expected {}", kind_name(k)));
    return false;
  }

  // "unknown field" for every key of `obj` outside `allowed`.
  void only(const json& obj, const std::string& path, Names allowed) {
    for (const auto& [key, value] : obj.items()) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        fail(at(path, key), "unknown field");
      }
    }
  }

  // The member `key` of `obj`, or "required" and nullptr.
  const json* need(const json& obj, std::string_view key, const std::string& path) {
    const json* v = get(obj, key);
    if (!v) fail(at(path, key), "required");
    return v;
  }

  // A string equal to one of `values`; anything else gives "expected one of ..." ("expected "x""
  // for a single value).
  bool one_of(const json& v, const std::string& path, Names values) {
    if (v.is_string()) {
      const std::string& s = v.get_ref<const std::string&>();
      if (std::find(values.begin(), values.end(), s) != values.end()) return true;
    }
    std::string list;
    for (std::string_view value : values)
      list += fmt::format("{}\"{}\"", list.empty() ? "" : ", ", value);
    fail(path, values.size() == 1 ? fmt::format("expected {}", list)
                                  : fmt::format("expected one of {}", list));
    return false;
  }

  void non_empty_string(const json& v, const std::string& path) {
    if (expect(v, Kind::kString, path) && v.get_ref<const std::string&>().empty()) {
      fail(path, "must not be empty");
    }
  }

  void strings(const json& v, const std::string& path) {
    if (!expect(v, Kind::kArray, path)) return;
    for (size_t i = 0; i < v.size(); ++i) expect(v[i], Kind::kString, at(path, i));
  }

  void string_or_strings(const json& v, const std::string& path) {
    if (v.is_string()) return;
    if (v.is_array()) return strings(v, path);
    fail(path, "expected string or array");
  }

  // An object with free keys and string values.
  void string_map(const json& v, const std::string& path) {
    if (!expect(v, Kind::kObject, path)) return;
    for (const auto& [key, value] : v.items()) expect(value, Kind::kString, at(path, key));
  }

  void non_negative_number(const json& v, const std::string& path) {
    if (expect(v, Kind::kNumber, path) && v.get<double>() < 0) fail(path, "expected number >= 0");
  }

  void non_negative_integer(const json& v, const std::string& path) {
    if (expect(v, Kind::kInteger, path) && !integer_in(v, 0, std::numeric_limits<int64_t>::max()))
      fail(path, "expected integer >= 0");
  }

  void check_meta(const json& v, const std::string& path) {
    if (!expect(v, Kind::kObject, path)) return;  // other keys are free
    if (const json* t = get(v, "trigger")) {
      one_of(*t, at(path, "trigger"), {"cli", "dashboard", "api", "deployment-manager"});
    }
    if (const json* sr = get(v, "system_requirements")) {
      std::string sp = at(path, "system_requirements");
      if (expect(*sr, Kind::kObject, sp)) {
        if (const json* x = get(*sr, "vram_total_mb"))
          non_negative_integer(*x, at(sp, "vram_total_mb"));
        if (const json* x = get(*sr, "required_vram"))
          non_negative_number(*x, at(sp, "required_vram"));
        if (const json* x = get(*sr, "required_cuda")) strings(*x, at(sp, "required_cuda"));
      }
    }
    if (const json* x = get(v, "required_vram")) non_negative_number(*x, at(path, "required_vram"));
    if (const json* x = get(v, "required_cuda")) strings(*x, at(path, "required_cuda"));
  }

  void check_global(const json& v, const std::string& path) {
    if (!expect(v, Kind::kObject, path)) return;
    only(v, path, {"image", "gpu", "entrypoint", "env", "work_dir", "variables"});
    if (const json* x = get(v, "image")) non_empty_string(*x, at(path, "image"));
    if (const json* x = get(v, "gpu")) expect(*x, Kind::kBoolean, at(path, "gpu"));
    if (const json* x = get(v, "entrypoint")) string_or_strings(*x, at(path, "entrypoint"));
    if (const json* x = get(v, "env")) string_map(*x, at(path, "env"));
    if (const json* x = get(v, "work_dir")) expect(*x, Kind::kString, at(path, "work_dir"));
    if (const json* x = get(v, "variables")) expect(*x, Kind::kObject, at(path, "variables"));
  }

  void check_ops(const json& ops, const std::string& path) {
    if (!expect(ops, Kind::kArray, path)) return;
    if (ops.empty()) {
      fail(path, "expected at least 1 op");
      return;
    }
    for (const json& op : ops) {
      const json* id = op.is_object() ? get(op, "id") : nullptr;
      if (id && id->is_string()) all_ids_.insert(id->get<std::string>());
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < ops.size(); ++i) check_op(ops[i], at(path, i), seen);
    check_cycles(ops, path);
  }

  // Op ids may contain dots: older copies of the DeepSeek-R1 template use "Qwen1.5b" and §9.2 says
  // to accept both, so only empty ids and whitespace are rejected.
  void check_op(const json& op, const std::string& path, std::set<std::string>& seen) {
    if (!expect(op, Kind::kObject, path)) return;
    only(op, path, {"id", "type", "args", "results", "execution"});
    std::string id;
    if (const json* v = need(op, "id", path); v && expect(*v, Kind::kString, at(path, "id"))) {
      id = v->get<std::string>();
      if (id.empty()) {
        fail(at(path, "id"), "must not be empty");
      } else if (has_whitespace(id)) {
        fail(at(path, "id"), "must not contain whitespace");
      } else if (!seen.insert(id).second) {
        fail(at(path, "id"), fmt::format("duplicate op id \"{}\"", id));
      }
    }
    std::string type;
    if (const json* v = need(op, "type", path);
        v && one_of(*v, at(path, "type"), {"container/run", "container/create-volume"})) {
      type = v->get<std::string>();
    }
    if (const json* v = need(op, "args", path); v && expect(*v, Kind::kObject, at(path, "args"))) {
      if (type == "container/run") check_run_args(*v, at(path, "args"));
      if (type == "container/create-volume") check_volume_args(*v, at(path, "args"));
    }
    if (const json* v = get(op, "results")) check_results(*v, at(path, "results"));
    if (const json* v = get(op, "execution")) check_execution(*v, at(path, "execution"), id);
  }

  void check_volume_args(const json& a, const std::string& path) {
    only(a, path, {"name"});
    if (const json* v = need(a, "name", path)) non_empty_string(*v, at(path, "name"));
  }

  void check_run_args(const json& a, const std::string& path) {
    only(a, path,
         {"image", "cmd", "entrypoint", "env", "gpu", "work_dir", "expose", "private",
          "required_vram", "resources", "volumes", "aliases", "output", "authentication",
          "restart_policy"});
    if (const json* v = get(a, "image")) {
      non_empty_string(*v, at(path, "image"));
    } else if (!global_image_) {
      fail(at(path, "image"), "required");
    }
    if (const json* v = get(a, "cmd")) string_or_strings(*v, at(path, "cmd"));
    if (const json* v = get(a, "entrypoint")) string_or_strings(*v, at(path, "entrypoint"));
    if (const json* v = get(a, "env")) string_map(*v, at(path, "env"));
    if (const json* v = get(a, "gpu")) expect(*v, Kind::kBoolean, at(path, "gpu"));
    if (const json* v = get(a, "work_dir")) expect(*v, Kind::kString, at(path, "work_dir"));
    if (const json* v = get(a, "expose")) check_expose(*v, at(path, "expose"));
    if (const json* v = get(a, "private")) expect(*v, Kind::kBoolean, at(path, "private"));
    if (const json* v = get(a, "required_vram")) non_negative_number(*v, at(path, "required_vram"));
    if (const json* v = get(a, "resources")) check_resources(*v, at(path, "resources"));
    if (const json* v = get(a, "volumes")) check_volumes(*v, at(path, "volumes"));
    if (const json* v = get(a, "aliases")) string_or_strings(*v, at(path, "aliases"));
    if (const json* v = get(a, "output")) expect(*v, Kind::kString, at(path, "output"));
    if (const json* v = get(a, "authentication"))
      check_authentication(*v, at(path, "authentication"));
    if (const json* v = get(a, "restart_policy"))
      check_restart_policy(*v, at(path, "restart_policy"));
  }

  // A port number 1..65535; false (with the problem added) otherwise.
  bool port(const json& v, const std::string& path, int64_t& out) {
    if (integer_in(v, 1, kMaxPort)) {
      out = v.get<int64_t>();
      return true;
    }
    fail(path, "expected integer 1..65535");
    return false;
  }

  void check_expose(const json& v, const std::string& path) {
    std::vector<ExposedPorts> ports;
    if (v.is_array()) {
      for (size_t i = 0; i < v.size(); ++i) expose_entry(v[i], at(path, i), true, ports);
    } else if (v.is_number() || v.is_string()) {
      expose_entry(v, path, false, ports);
    } else {
      fail(path, "expected port, port range or array");
      return;
    }
    for (size_t k = 1; k < ports.size(); ++k) {
      const ExposedPorts& b = ports[k];
      for (size_t j = 0; j < k; ++j) {
        const ExposedPorts& a = ports[j];
        if (b.lo > a.hi || a.lo > b.hi) continue;
        if (!a.range && !b.range) {
          fail(b.path, fmt::format("duplicate port {}", b.lo));
        } else if (!b.range) {
          fail(b.path, fmt::format("port {} inside {}", b.lo, describe(a)));
        } else if (!a.range) {
          fail(b.path, fmt::format("{} contains port {}", describe(b), a.lo));
        } else {
          fail(b.path, fmt::format("{} overlaps {}", describe(b), describe(a)));
        }
        break;
      }
    }
  }

  void expose_entry(const json& e, const std::string& path, bool in_array,
                    std::vector<ExposedPorts>& ports) {
    int64_t lo = 0, hi = 0;
    if (e.is_number()) {
      if (port(e, path, lo)) ports.push_back({path, lo, lo, false});
    } else if (e.is_string()) {
      if (parse_range(e.get_ref<const std::string&>(), lo, hi) && lo >= 1 && lo <= hi &&
          hi <= kMaxPort) {
        ports.push_back({path, lo, hi, true});
      } else {
        fail(path, "expected port range \"start-end\" with 1 <= start <= end <= 65535");
      }
    } else if (e.is_object() && in_array) {
      only(e, path, {"port", "type", "health_checks"});
      if (const json* v = need(e, "port", path); v && port(*v, at(path, "port"), lo)) {
        ports.push_back({path, lo, lo, false});
      }
      if (const json* v = get(e, "type")) {
        one_of(*v, at(path, "type"), {"web", "api", "webapi", "websocket", "none"});
      }
      if (const json* v = get(e, "health_checks");
          v && expect(*v, Kind::kArray, at(path, "health_checks"))) {
        for (size_t i = 0; i < v->size(); ++i)
          check_health((*v)[i], at(at(path, "health_checks"), i));
      }
    } else {
      fail(path, "expected port, port range or object");
    }
  }

  void check_health(const json& h, const std::string& path) {
    if (!expect(h, Kind::kObject, path)) return;
    const json* type = need(h, "type", path);
    if (!type || !one_of(*type, at(path, "type"), {"http", "websocket"})) return;
    if (*type == "http") {
      only(h, path,
           {"type", "path", "method", "expected_status", "headers", "body", "continuous",
            "timeout_s"});
      if (const json* v = need(h, "path", path)) {
        if (!v->is_string() || !v->get_ref<const std::string&>().starts_with('/')) {
          fail(at(path, "path"), "expected string starting with \"/\"");
        }
      }
      if (const json* v = need(h, "method", path))
        one_of(*v, at(path, "method"), {"GET", "POST", "PUT", "DELETE"});
      if (const json* v = need(h, "expected_status", path)) {
        if (!integer_in(*v, 100, 599)) {
          fail(at(path, "expected_status"), "expected integer 100..599");
        }
      }
      if (const json* v = get(h, "headers")) string_map(*v, at(path, "headers"));
      if (const json* v = get(h, "body"); v && !v->is_string() && !v->is_object()) {
        fail(at(path, "body"), "expected string or object");
      }
    } else {
      only(h, path, {"type", "expected_response", "continuous", "timeout_s"});
      if (const json* v = need(h, "expected_response", path))
        expect(*v, Kind::kString, at(path, "expected_response"));
    }
    if (const json* v = get(h, "continuous")) expect(*v, Kind::kBoolean, at(path, "continuous"));
    if (const json* v = get(h, "timeout_s")) {
      if (!v->is_number() || !(v->get<double>() > 0))
        fail(at(path, "timeout_s"), "expected number > 0");
    }
  }

  void check_restart_policy(const json& v, const std::string& path) {
    Names policies = {"no", "always", "on-failure", "unless-stopped"};
    if (v.is_string()) {
      one_of(v, path, policies);
    } else if (v.is_object()) {
      only(v, path, {"policy", "restart_tries"});
      if (const json* p = need(v, "policy", path)) one_of(*p, at(path, "policy"), policies);
      if (const json* t = get(v, "restart_tries"))
        non_negative_integer(*t, at(path, "restart_tries"));
    } else {
      fail(path, "expected string or object");
    }
  }

  void check_resources(const json& v, const std::string& path) {
    if (!expect(v, Kind::kArray, path)) return;
    for (size_t i = 0; i < v.size(); ++i) {
      const json& r = v[i];
      std::string rp = at(path, i);
      if (!expect(r, Kind::kObject, rp)) continue;
      const json* type = need(r, "type", rp);
      if (!type || !one_of(*type, at(rp, "type"), {"HF", "S3"})) continue;
      if (*type == "HF") {
        only(r, rp, {"type", "repo", "target", "revision", "files"});
        if (const json* x = need(r, "repo", rp)) non_empty_string(*x, at(rp, "repo"));
        if (const json* x = get(r, "revision")) expect(*x, Kind::kString, at(rp, "revision"));
      } else {
        only(r, rp, {"type", "url", "target", "bucket", "files", "IAM"});
        if (const json* x = need(r, "url", rp)) non_empty_string(*x, at(rp, "url"));
        if (const json* x = get(r, "bucket")) expect(*x, Kind::kString, at(rp, "bucket"));
        if (const json* x = get(r, "IAM")) string_map(*x, at(rp, "IAM"));
      }
      if (const json* x = need(r, "target", rp)) non_empty_string(*x, at(rp, "target"));
      if (const json* x = get(r, "files")) strings(*x, at(rp, "files"));
    }
  }

  void check_volumes(const json& v, const std::string& path) {
    if (!expect(v, Kind::kArray, path)) return;
    for (size_t i = 0; i < v.size(); ++i) {
      std::string vp = at(path, i);
      if (!expect(v[i], Kind::kObject, vp)) continue;
      only(v[i], vp, {"name", "dest"});
      if (const json* x = need(v[i], "name", vp)) non_empty_string(*x, at(vp, "name"));
      if (const json* x = need(v[i], "dest", vp)) non_empty_string(*x, at(vp, "dest"));
    }
  }

  void check_authentication(const json& v, const std::string& path) {
    if (!expect(v, Kind::kObject, path)) return;
    only(v, path, {"docker"});
    const json* d = get(v, "docker");
    std::string dp = at(path, "docker");
    if (!d || !expect(*d, Kind::kObject, dp)) return;
    only(*d, dp, {"username", "password", "email", "server"});
    if (const json* x = need(*d, "username", dp)) expect(*x, Kind::kString, at(dp, "username"));
    if (const json* x = need(*d, "password", dp)) expect(*x, Kind::kString, at(dp, "password"));
    if (const json* x = get(*d, "email")) expect(*x, Kind::kString, at(dp, "email"));
    if (const json* x = get(*d, "server")) expect(*x, Kind::kString, at(dp, "server"));
  }

  // Keys are free; each value is a regex string or {"regex", "logType"?: [stream...]}.
  void check_results(const json& v, const std::string& path) {
    if (!expect(v, Kind::kObject, path)) return;
    for (const auto& [key, r] : v.items()) {
      std::string rp = at(path, key);
      if (r.is_string()) continue;
      if (!r.is_object()) {
        fail(rp, "expected string or object");
        continue;
      }
      only(r, rp, {"regex", "logType"});
      if (const json* x = need(r, "regex", rp)) expect(*x, Kind::kString, at(rp, "regex"));
      if (const json* x = get(r, "logType"); x && expect(*x, Kind::kArray, at(rp, "logType"))) {
        for (size_t i = 0; i < x->size(); ++i) {
          one_of((*x)[i], at(at(rp, "logType"), i), {"stdout", "stderr", "stdin", "nodeerr"});
        }
      }
    }
  }

  void check_execution(const json& v, const std::string& path, const std::string& id) {
    if (!expect(v, Kind::kObject, path)) return;
    only(v, path, {"group", "depends_on", "stop_if_dependent_stops"});
    if (const json* x = get(v, "group")) expect(*x, Kind::kString, at(path, "group"));
    if (const json* x = get(v, "depends_on");
        x && expect(*x, Kind::kArray, at(path, "depends_on"))) {
      for (size_t i = 0; i < x->size(); ++i) {
        std::string dp = at(at(path, "depends_on"), i);
        if (!expect((*x)[i], Kind::kString, dp)) continue;
        const std::string& dep = (*x)[i].get_ref<const std::string&>();
        if (!all_ids_.count(dep)) {
          fail(dp, fmt::format("unknown op id \"{}\"", dep));
        } else if (dep == id) {
          fail(dp, "an op cannot depend on itself");
        }
      }
    }
    if (const json* x = get(v, "stop_if_dependent_stops")) {
      expect(*x, Kind::kBoolean, at(path, "stop_if_dependent_stops"));
    }
  }

  // Reports one cycle (of length >= 2) among valid depends_on edges at `path`.
  void check_cycles(const json& ops, const std::string& path) {
    std::map<std::string, std::vector<std::string>> deps;
    for (const json& op : ops) {
      const json* id = op.is_object() ? get(op, "id") : nullptr;
      const json* ex = op.is_object() ? get(op, "execution") : nullptr;
      const json* on = ex && ex->is_object() ? get(*ex, "depends_on") : nullptr;
      if (!id || !id->is_string() || !on || !on->is_array()) continue;
      for (const json& d : *on) {
        if (d.is_string() && d != *id && all_ids_.count(d.get<std::string>())) {
          deps[id->get<std::string>()].push_back(d.get<std::string>());
        }
      }
    }
    std::map<std::string, int> state;  // 1: on the DFS path, 2: done
    for (const auto& [start, unused] : deps) {
      if (state[start] != 0) continue;
      std::vector<std::pair<std::string, size_t>> dfs = {
          {start, 0}};  // iterative: no deep recursion
      state[start] = 1;
      while (!dfs.empty()) {
        const std::vector<std::string>& out = deps[dfs.back().first];
        if (dfs.back().second == out.size()) {
          state[dfs.back().first] = 2;
          dfs.pop_back();
          continue;
        }
        const std::string d = out[dfs.back().second++];
        if (state[d] == 1) {
          std::string cycle;
          auto it =
              std::find_if(dfs.begin(), dfs.end(), [&](const auto& e) { return e.first == d; });
          for (int shown = 0; it != dfs.end(); ++it, ++shown) {
            if (shown == kMaxCycleShown) {
              cycle += "... -> ";
              break;
            }
            cycle += fmt::format("\"{}\" -> ", it->first);
          }
          fail(path, fmt::format("dependency cycle {}\"{}\"", cycle, d));
          return;
        }
        if (state[d] == 0) {
          state[d] = 1;
          dfs.push_back({d, 0});
        }
      }
    }
  }

  std::string root_;
  std::vector<std::string> errors_;
  std::set<std::string> all_ids_;
  bool global_image_ = false;
};

// The GB value `v` as whole MB (rounded up), or -1 if `v` is not a non-negative number.
int64_t gb_to_mb(const json* v) {
  if (!v || !v->is_number() || v->get<double>() < 0) return -1;
  return static_cast<int64_t>(std::ceil(v->get<double>() * 1024));
}

const json* object_member(const json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  const json* v = get(obj, key);
  return v && v->is_object() ? v : nullptr;
}

}  // namespace

std::vector<std::string> validate_job_definition(const nlohmann::json& jd, std::string_view root) {
  return Validator(root).run(jd);
}

std::string job_definition_error(const nlohmann::json& jd, std::string_view root) {
  return fmt::format("{}", fmt::join(validate_job_definition(jd, root), "; "));
}

int64_t required_vram_mb(const nlohmann::json& jd) {
  if (const json* meta = object_member(jd, "meta")) {
    if (const json* sr = object_member(*meta, "system_requirements")) {
      const json* mb = get(*sr, "vram_total_mb");
      if (mb && mb->is_number() && mb->get<double>() >= 0) {
        return static_cast<int64_t>(std::ceil(mb->get<double>()));
      }
      if (int64_t v = gb_to_mb(get(*sr, "required_vram")); v >= 0) return v;
    }
    if (int64_t v = gb_to_mb(get(*meta, "required_vram")); v >= 0) return v;
  }
  int64_t best = 0;
  const json* ops = jd.is_object() ? get(jd, "ops") : nullptr;
  if (ops && ops->is_array()) {
    for (const json& op : *ops) {
      if (const json* args = object_member(op, "args"))
        best = std::max(best, gb_to_mb(get(*args, "required_vram")));
    }
  }
  return best;
}

bool needs_gpu(const nlohmann::json& jd) {
  auto gpu_of = [](const json* obj) {
    const json* g = obj ? get(*obj, "gpu") : nullptr;
    return g && g->is_boolean() && g->get<bool>();
  };
  if (gpu_of(object_member(jd, "global"))) return true;
  const json* ops = jd.is_object() ? get(jd, "ops") : nullptr;
  if (!ops || !ops->is_array()) return false;
  return std::any_of(ops->begin(), ops->end(),
                     [&](const json& op) { return gpu_of(object_member(op, "args")); });
}

bool is_native_vllm_image(std::string_view image) {
  constexpr std::string_view kRegistry = "docker.io/", kRepo = "vllm/vllm-openai";
  if (image.starts_with(kRegistry)) image.remove_prefix(kRegistry.size());
  if (!image.starts_with(kRepo)) return false;
  image.remove_prefix(kRepo.size());
  if (image.empty()) return true;
  if (image.size() < 2 || image[0] != ':') return false;
  return std::all_of(image.begin() + 1, image.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

std::string canonical_json(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string definition_hash(const nlohmann::json& jd) {
  std::string text = canonical_json(jd);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  CHECK(EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr) == 1);
  std::string out = "sha256:";
  for (unsigned int i = 0; i < len; ++i) out += fmt::format("{:02x}", md[i]);
  return out;
}

}  // namespace infera::platform
