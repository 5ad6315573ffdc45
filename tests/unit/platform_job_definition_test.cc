// Job definition v0.1 validation, VRAM and GPU requirements, canonical hashing (spec platform.md
// §9, §10, §3.2) and the embedded template catalogue (§3.7, §9.2).
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "platform/job_definition.h"
#include "platform/templates.h"

namespace infera::platform {
namespace {

using json = nlohmann::json;

// platform.md §9.2 `job-definition-1.5b.json`, verbatim (the shipped file ends with one newline).
constexpr std::string_view kSpecJobDefinition15b = R"json({
  "version": "0.1",
  "type": "container",
  "ops": [
    {
      "type": "container/run",
      "id": "Qwen1-5b",
      "args": {
        "cmd": [
          "--model",
          "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
          "--served-model-name",
          "DeepSeek-R1-Distill-Qwen-1.5B",
          "--port",
          "9000",
          "--max-model-len",
          "30000"
        ],
        "gpu": true,
        "image": "docker.io/vllm/vllm-openai:v0.10.2",
        "expose": [
          {
            "port": 9000,
            "health_checks": [
              {
                "body": "{\"model\":\"DeepSeek-R1-Distill-Qwen-1.5B\",\"messages\":[{\"role\":\"user\",\"content\":\"Respond with a single word: Ready\"}],\"stream\":false}",
                "path": "/v1/chat/completions",
                "type": "http",
                "method": "POST",
                "headers": {
                  "Content-Type": "application/json"
                },
                "expected_status": 200,
                "continuous": false
              }
            ]
          }
        ]
      }
    }
  ],
  "meta": {
    "trigger": "dashboard",
    "system_requirements": {
      "required_cuda": [
        "12.8",
        "12.9"
      ],
      "vram_total_mb": 6144
    }
  }
}
)json";

const std::string kOp = "job_definition.ops[0]";
const std::string kArgs = kOp + ".args";
const std::string kCheck = kArgs + ".expose[0].health_checks[0]";

json spec_doc() { return json::parse(kSpecJobDefinition15b); }
json& args(json& d) { return d["ops"][0]["args"]; }
json& check(json& d) { return d["ops"][0]["args"]["expose"][0]["health_checks"][0]; }

// job_definition_error of the spec 1.5b definition after `mutate`.
std::string err(const std::function<void(json&)>& mutate) {
  json d = spec_doc();
  mutate(d);
  return job_definition_error(d);
}
// ... after setting ops[0].args[key] / its first health check's [key] to `value`.
std::string with_arg(const std::string& key, json value) {
  return err([&](json& d) { args(d)[key] = std::move(value); });
}
std::string with_check(const std::string& key, json value) {
  return err([&](json& d) { check(d)[key] = std::move(value); });
}

TEST(JobDefinition, SpecTemplateIsValid) {
  EXPECT_TRUE(validate_job_definition(spec_doc()).empty()) << job_definition_error(spec_doc());
  EXPECT_EQ(job_definition_error(spec_doc()), "");
}

TEST(JobDefinition, OlderSpecCopyIsValid) {
  // Older copies: op id "Qwen1.5b" (a dot, accepted) and the legacy meta.required_vram in GB.
  json d = spec_doc();
  d["ops"][0]["id"] = "Qwen1.5b";
  d["meta"] = json::parse(R"({"required_vram":6,"required_cuda":["12.8","12.9"]})");
  EXPECT_EQ(job_definition_error(d), "");
  EXPECT_EQ(required_vram_mb(d), 6144);
}

TEST(JobDefinition, TopLevel) {
  EXPECT_EQ(job_definition_error(json::array()), "job_definition: expected object");
  EXPECT_EQ(job_definition_error(json("x")), "job_definition: expected object");
  EXPECT_EQ(job_definition_error(json::array(), "body.job_definition"),
            "body.job_definition: expected object");
  EXPECT_EQ(err([](json& d) { d["version"] = "0.2"; }), "job_definition.version: expected \"0.1\"");
  EXPECT_EQ(err([](json& d) { d["version"] = 0.1; }), "job_definition.version: expected \"0.1\"");
  EXPECT_EQ(err([](json& d) { d.erase("version"); }), "job_definition.version: required");
  EXPECT_EQ(err([](json& d) { d["type"] = "vm"; }), "job_definition.type: expected \"container\"");
  EXPECT_EQ(err([](json& d) { d.erase("type"); }), "job_definition.type: required");
  EXPECT_EQ(err([](json& d) { d["deployment_id"] = 5; }),
            "job_definition.deployment_id: expected string");
  EXPECT_EQ(err([](json& d) { d["deployment_id"] = "9sQm"; }), "");
  EXPECT_EQ(err([](json& d) { d["logistics"] = json::object(); }),
            "job_definition.logistics: unknown field");
}

TEST(JobDefinition, Ops) {
  EXPECT_EQ(err([](json& d) { d.erase("ops"); }), "job_definition.ops: required");
  EXPECT_EQ(err([](json& d) { d["ops"] = json::object(); }), "job_definition.ops: expected array");
  EXPECT_EQ(err([](json& d) { d["ops"] = json::array(); }),
            "job_definition.ops: expected at least 1 op");
  EXPECT_EQ(err([](json& d) { d["ops"][0] = 5; }), "job_definition.ops[0]: expected object");
  EXPECT_EQ(err([](json& d) { d["ops"][0]["name"] = "x"; }), kOp + ".name: unknown field");
  EXPECT_EQ(err([](json& d) { d["ops"][0]["type"] = "container/exec"; }),
            kOp + ".type: expected one of \"container/run\", \"container/create-volume\"");
  EXPECT_EQ(err([](json& d) { d["ops"][0].erase("type"); }), kOp + ".type: required");
  EXPECT_EQ(err([](json& d) { d["ops"][0].erase("args"); }), kOp + ".args: required");
  EXPECT_EQ(err([](json& d) { d["ops"][0]["args"] = json::array(); }),
            kOp + ".args: expected object");
}

TEST(JobDefinition, OpIds) {
  EXPECT_EQ(err([](json& d) { d["ops"][0].erase("id"); }), kOp + ".id: required");
  EXPECT_EQ(err([](json& d) { d["ops"][0]["id"] = 5; }), kOp + ".id: expected string");
  EXPECT_EQ(err([](json& d) { d["ops"][0]["id"] = ""; }), kOp + ".id: must not be empty");
  EXPECT_EQ(err([](json& d) { d["ops"][0]["id"] = "Qwen 1"; }),
            kOp + ".id: must not contain whitespace");
  EXPECT_EQ(err([](json& d) { d["ops"][0]["id"] = "Qwen\t1"; }),
            kOp + ".id: must not contain whitespace");
  // Dots are accepted: §9.2 keeps older copies with op id "Qwen1.5b" valid.
  EXPECT_EQ(err([](json& d) { d["ops"][0]["id"] = "Qwen1.5b"; }), "");
  EXPECT_EQ(err([](json& d) {
              d["ops"].push_back(d["ops"][0]);
              d["ops"][1]["args"]["expose"] = 9001;
            }),
            "job_definition.ops[1].id: duplicate op id \"Qwen1-5b\"");
}

TEST(JobDefinition, CreateVolume) {
  auto volume = [](json& d, json a) {
    d["ops"].push_back(
        {{"id", "vol"}, {"type", "container/create-volume"}, {"args", std::move(a)}});
  };
  EXPECT_EQ(err([&](json& d) { volume(d, {{"name", "models"}}); }), "");
  EXPECT_EQ(err([&](json& d) { volume(d, json::object()); }),
            "job_definition.ops[1].args.name: required");
  EXPECT_EQ(err([&](json& d) {
              volume(d, {{"name", "m"}, {"size", 1}});
            }),
            "job_definition.ops[1].args.size: unknown field");
}

TEST(JobDefinition, Image) {
  EXPECT_EQ(with_arg("image", 5), "job_definition.ops[0].args.image: expected string");
  EXPECT_EQ(with_arg("image", ""), kArgs + ".image: must not be empty");
  EXPECT_EQ(err([](json& d) { args(d).erase("image"); }), kArgs + ".image: required");
  EXPECT_EQ(err([](json& d) {
              args(d).erase("image");
              d["global"] = {{"image", "ubuntu"}};
            }),
            "");
}

TEST(JobDefinition, CommandLikeArgs) {
  for (const char* key : {"cmd", "entrypoint", "aliases"}) {
    EXPECT_EQ(err([&](json& d) { args(d)[key] = "echo hi"; }), "") << key;
    EXPECT_EQ(err([&](json& d) { args(d)[key] = json::array({"a", "b"}); }), "") << key;
    EXPECT_EQ(err([&](json& d) { args(d)[key] = 5; }),
              kArgs + "." + key + ": expected string or array");
    EXPECT_EQ(err([&](json& d) {
                args(d)[key] = json::array({"a", 1});
              }),
              kArgs + "." + key + "[1]: expected string");
  }
}

TEST(JobDefinition, ScalarArgs) {
  EXPECT_EQ(with_arg("env", {{"HF_TOKEN", "x"}, {"N", "1"}}), "");
  EXPECT_EQ(with_arg("env", {{"N", 1}}), kArgs + ".env.N: expected string");
  EXPECT_EQ(with_arg("env", json::array()), kArgs + ".env: expected object");
  EXPECT_EQ(with_arg("gpu", "yes"), kArgs + ".gpu: expected boolean");
  EXPECT_EQ(with_arg("work_dir", 1), kArgs + ".work_dir: expected string");
  EXPECT_EQ(with_arg("private", 1), kArgs + ".private: expected boolean");
  EXPECT_EQ(with_arg("output", json::array()), kArgs + ".output: expected string");
  EXPECT_EQ(with_arg("required_vram", 6.5), "");
  EXPECT_EQ(with_arg("required_vram", -1), kArgs + ".required_vram: expected number >= 0");
  EXPECT_EQ(with_arg("required_vram", "6"), kArgs + ".required_vram: expected number");
  EXPECT_EQ(with_arg("ports", 9000), kArgs + ".ports: unknown field");
  EXPECT_EQ(with_arg("authentication",
                     {{"docker", {{"username", "u"}, {"password", "p"}, {"server", "ghcr.io"}}}}),
            "");
  EXPECT_EQ(with_arg("authentication", {{"docker", {{"username", "u"}}}}),
            kArgs + ".authentication.docker.password: required");
}

TEST(JobDefinition, ExposeForms) {
  EXPECT_EQ(with_arg("expose", 9000), "");
  EXPECT_EQ(with_arg("expose", "8000-8100"), "");
  EXPECT_EQ(with_arg("expose", json::array({8080, "9000-9010", {{"port", 7000}, {"type", "web"}}})),
            "");
  EXPECT_EQ(with_arg("expose", 0), kArgs + ".expose: expected integer 1..65535");
  EXPECT_EQ(with_arg("expose", 65536), kArgs + ".expose: expected integer 1..65535");
  EXPECT_EQ(with_arg("expose", -80), kArgs + ".expose: expected integer 1..65535");
  EXPECT_EQ(with_arg("expose", 9000.5), kArgs + ".expose: expected integer 1..65535");
  const std::string range = ": expected port range \"start-end\" with 1 <= start <= end <= 65535";
  EXPECT_EQ(with_arg("expose", "8100-8000"), kArgs + ".expose" + range);
  EXPECT_EQ(with_arg("expose", "0-10"), kArgs + ".expose" + range);
  EXPECT_EQ(with_arg("expose", "9000"), kArgs + ".expose" + range);
  EXPECT_EQ(with_arg("expose", true), kArgs + ".expose: expected port, port range or array");
  EXPECT_EQ(with_arg("expose", {{"port", 9000}}),
            kArgs + ".expose: expected port, port range or array");
  EXPECT_EQ(with_arg("expose", json::array({true})),
            kArgs + ".expose[0]: expected port, port range or object");
  EXPECT_EQ(err([](json& d) { args(d)["expose"][0].erase("port"); }),
            kArgs + ".expose[0].port: required");
  EXPECT_EQ(err([](json& d) { args(d)["expose"][0]["port"] = "9000"; }),
            kArgs + ".expose[0].port: expected integer 1..65535");
  EXPECT_EQ(
      err([](json& d) { args(d)["expose"][0]["type"] = "grpc"; }),
      kArgs +
          ".expose[0].type: expected one of \"web\", \"api\", \"webapi\", \"websocket\", \"none\"");
  EXPECT_EQ(err([](json& d) { args(d)["expose"][0]["protocol"] = "tcp"; }),
            kArgs + ".expose[0].protocol: unknown field");
  EXPECT_EQ(err([](json& d) { args(d)["expose"][0]["health_checks"] = json::object(); }),
            kArgs + ".expose[0].health_checks: expected array");
}

TEST(JobDefinition, ExposeConflicts) {
  EXPECT_EQ(err([](json& d) { args(d)["expose"].push_back(9000); }),
            kArgs + ".expose[1]: duplicate port 9000");
  EXPECT_EQ(with_arg("expose", json::array({"8000-8100", 8050})),
            kArgs + ".expose[1]: port 8050 inside range 8000-8100");
  EXPECT_EQ(with_arg("expose", json::array({{{"port", 8050}}, "8000-8100"})),
            kArgs + ".expose[1]: range 8000-8100 contains port 8050");
  EXPECT_EQ(with_arg("expose", json::array({"8000-8100", "8100-8200"})),
            kArgs + ".expose[1]: range 8100-8200 overlaps range 8000-8100");
  EXPECT_EQ(with_arg("expose", json::array({"8000-8100", "8101-8200", 8201, 7999})), "");
}

TEST(JobDefinition, HttpHealthCheck) {
  EXPECT_EQ(with_check("body", {{"model", "m"}}), "");
  EXPECT_EQ(with_check("timeout_s", 30), "");
  EXPECT_EQ(err([](json& d) { check(d).erase("continuous"); }), "");
  EXPECT_EQ(err([](json& d) { check(d).erase("path"); }), kCheck + ".path: required");
  EXPECT_EQ(with_check("path", "v1/models"), kCheck + ".path: expected string starting with \"/\"");
  EXPECT_EQ(with_check("path", 1), kCheck + ".path: expected string starting with \"/\"");
  EXPECT_EQ(err([](json& d) { check(d).erase("method"); }), kCheck + ".method: required");
  EXPECT_EQ(with_check("method", "PATCH"),
            kCheck + ".method: expected one of \"GET\", \"POST\", \"PUT\", \"DELETE\"");
  EXPECT_EQ(err([](json& d) { check(d).erase("expected_status"); }),
            kCheck + ".expected_status: required");
  EXPECT_EQ(with_check("expected_status", 600),
            kCheck + ".expected_status: expected integer 100..599");
  EXPECT_EQ(with_check("expected_status", 99),
            kCheck + ".expected_status: expected integer 100..599");
  EXPECT_EQ(with_check("expected_status", "200"),
            kCheck + ".expected_status: expected integer 100..599");
  EXPECT_EQ(with_check("headers", {{"X-N", 1}}), kCheck + ".headers.X-N: expected string");
  EXPECT_EQ(with_check("body", 5), kCheck + ".body: expected string or object");
  EXPECT_EQ(with_check("continuous", "no"), kCheck + ".continuous: expected boolean");
  EXPECT_EQ(with_check("timeout_s", 0), kCheck + ".timeout_s: expected number > 0");
  EXPECT_EQ(with_check("timeout_s", "5"), kCheck + ".timeout_s: expected number > 0");
  EXPECT_EQ(with_check("expected_response", "x"), kCheck + ".expected_response: unknown field");
  EXPECT_EQ(with_check("type", "tcp"), kCheck + ".type: expected one of \"http\", \"websocket\"");
  EXPECT_EQ(err([](json& d) { check(d).erase("type"); }), kCheck + ".type: required");
  EXPECT_EQ(err([](json& d) { check(d) = "GET /"; }), kCheck + ": expected object");
}

TEST(JobDefinition, WebSocketHealthCheck) {
  auto ws = [](json& d) {
    check(d) = {{"type", "websocket"}, {"expected_response", "pong"}, {"continuous", true}};
  };
  EXPECT_EQ(err(ws), "");
  EXPECT_EQ(err([&](json& d) {
              ws(d);
              check(d).erase("expected_response");
            }),
            kCheck + ".expected_response: required");
  EXPECT_EQ(err([&](json& d) {
              ws(d);
              check(d)["expected_response"] = 1;
            }),
            kCheck + ".expected_response: expected string");
  EXPECT_EQ(err([&](json& d) {
              ws(d);
              check(d)["path"] = "/";
            }),
            kCheck + ".path: unknown field");
  EXPECT_EQ(err([&](json& d) {
              ws(d);
              check(d)["continuous"] = 1;
            }),
            kCheck + ".continuous: expected boolean");
}

TEST(JobDefinition, RestartPolicy) {
  for (const char* p : {"no", "always", "on-failure", "unless-stopped"}) {
    EXPECT_EQ(err([&](json& d) { args(d)["restart_policy"] = p; }), "") << p;
  }
  EXPECT_EQ(with_arg("restart_policy", {{"policy", "on-failure"}, {"restart_tries", 3}}), "");
  const std::string rp = kArgs + ".restart_policy";
  const std::string one_of =
      ": expected one of \"no\", \"always\", \"on-failure\", \"unless-stopped\"";
  EXPECT_EQ(with_arg("restart_policy", "sometimes"), rp + one_of);
  EXPECT_EQ(with_arg("restart_policy", {{"policy", "never"}}), rp + ".policy" + one_of);
  EXPECT_EQ(with_arg("restart_policy", {{"restart_tries", 3}}), rp + ".policy: required");
  EXPECT_EQ(with_arg("restart_policy", {{"policy", "always"}, {"restart_tries", -1}}),
            rp + ".restart_tries: expected integer >= 0");
  EXPECT_EQ(with_arg("restart_policy", {{"policy", "always"}, {"restart_tries", 1.5}}),
            rp + ".restart_tries: expected integer");
  EXPECT_EQ(with_arg("restart_policy", {{"policy", "always"}, {"delay", 1}}),
            rp + ".delay: unknown field");
  EXPECT_EQ(with_arg("restart_policy", 3), rp + ": expected string or object");
}

TEST(JobDefinition, ResourcesAndVolumes) {
  const json hf = {{"type", "HF"},
                   {"repo", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"},
                   {"target", "/models/r1"}};
  const json s3 = {{"type", "S3"},        {"url", "s3://bucket/models"},
                   {"target", "/models"}, {"bucket", "bucket"},
                   {"files", {"a.gguf"}}, {"IAM", {{"REGION", "eu"}}}};
  EXPECT_EQ(err([&](json& d) { args(d)["resources"] = json::array({hf, s3}); }), "");
  const std::string r = kArgs + ".resources";
  EXPECT_EQ(with_arg("resources", json::object()), r + ": expected array");
  EXPECT_EQ(err([&](json& d) {
              args(d)["resources"] = json::array({hf});
              args(d)["resources"][0].erase("target");
            }),
            r + "[0].target: required");
  EXPECT_EQ(err([&](json& d) {
              args(d)["resources"] = json::array({hf});
              args(d)["resources"][0].erase("repo");
            }),
            r + "[0].repo: required");
  EXPECT_EQ(err([&](json& d) {
              args(d)["resources"] = json::array({s3});
              args(d)["resources"][0].erase("url");
            }),
            r + "[0].url: required");
  EXPECT_EQ(err([&](json& d) {
              args(d)["resources"] = json::array({hf});
              args(d)["resources"][0]["type"] = "GCS";
            }),
            r + "[0].type: expected one of \"HF\", \"S3\"");
  EXPECT_EQ(err([&](json& d) {
              args(d)["resources"] = json::array({hf});
              args(d)["resources"][0]["url"] = "x";
            }),
            r + "[0].url: unknown field");

  EXPECT_EQ(with_arg("volumes", {{{"name", "models"}, {"dest", "/root/.cache"}}}), "");
  EXPECT_EQ(with_arg("volumes", {{{"name", "models"}}}), kArgs + ".volumes[0].dest: required");
  EXPECT_EQ(with_arg("volumes", {{{"name", "m"}, {"dest", "/d"}, {"ro", true}}}),
            kArgs + ".volumes[0].ro: unknown field");
  EXPECT_EQ(with_arg("volumes", json::array({"models"})), kArgs + ".volumes[0]: expected object");
}

TEST(JobDefinition, ResultsAndExecution) {
  EXPECT_EQ(err([](json& d) {
              d["ops"][0]["results"] = {
                  {"url", "https://\\S+"},
                  {"ip", {{"regex", "\\d+"}, {"logType", {"stdout", "nodeerr"}}}}};
            }),
            "");
  EXPECT_EQ(err([](json& d) {
              d["ops"][0]["results"] = {{"url", 5}};
            }),
            kOp + ".results.url: expected string or object");
  EXPECT_EQ(
      err([](json& d) {
        d["ops"][0]["results"] = {{"ip", {{"regex", "x"}, {"logType", {"syslog"}}}}};
      }),
      kOp +
          ".results.ip.logType[0]: expected one of \"stdout\", \"stderr\", \"stdin\", \"nodeerr\"");
  EXPECT_EQ(err([](json& d) {
              d["ops"][0]["results"] = {{"ip", {{"logType", {"stdout"}}}}};
            }),
            kOp + ".results.ip.regex: required");

  auto two_ops = [](json& d) {
    d["ops"].push_back(d["ops"][0]);
    d["ops"][1]["id"] = "client";
    d["ops"][1]["args"]["expose"] = 9001;
  };
  const std::string ex = "job_definition.ops[1].execution";
  EXPECT_EQ(err([&](json& d) {
              two_ops(d);
              d["ops"][1]["execution"] = {
                  {"group", "b"}, {"depends_on", {"Qwen1-5b"}}, {"stop_if_dependent_stops", true}};
            }),
            "");
  EXPECT_EQ(err([&](json& d) {
              two_ops(d);
              d["ops"][1]["execution"] = {{"depends_on", {"nope"}}};
            }),
            ex + ".depends_on[0]: unknown op id \"nope\"");
  EXPECT_EQ(err([&](json& d) {
              two_ops(d);
              d["ops"][1]["execution"] = {{"depends_on", {"client"}}};
            }),
            ex + ".depends_on[0]: an op cannot depend on itself");
  EXPECT_EQ(err([&](json& d) {
              two_ops(d);
              d["ops"][1]["execution"] = {{"depends_on", "Qwen1-5b"}};
            }),
            ex + ".depends_on: expected array");
  EXPECT_EQ(
      err([&](json& d) {
        two_ops(d);
        d["ops"][1]["execution"] = {{"group", 1}, {"stop_if_dependent_stops", "x"}, {"after", "y"}};
      }),
      ex + ".after: unknown field; " + ex + ".group: expected string; " + ex +
          ".stop_if_dependent_stops: expected boolean");
  EXPECT_EQ(err([&](json& d) {
              two_ops(d);
              d["ops"][0]["execution"] = {{"depends_on", {"client"}}};
              d["ops"][1]["execution"] = {{"depends_on", {"Qwen1-5b"}}};
            }),
            "job_definition.ops: dependency cycle \"Qwen1-5b\" -> \"client\" -> \"Qwen1-5b\"");
}

TEST(JobDefinition, DependencyChains) {
  // ops op0..op{n-1}; op{i} depends on op{i+1}; the last one optionally on op0.
  auto chain = [](size_t n, bool close) {
    json d = spec_doc();
    json op = d["ops"][0];
    op["args"].erase("expose");
    d["ops"] = json::array();
    for (size_t i = 0; i < n; ++i) {
      op["id"] = "op" + std::to_string(i);
      op["execution"] = {{"depends_on", {"op" + std::to_string(i + 1 < n ? i + 1 : 0)}}};
      if (i + 1 == n && !close) op.erase("execution");
      d["ops"].push_back(op);
    }
    return job_definition_error(d);
  };
  EXPECT_EQ(chain(3, true),
            "job_definition.ops: dependency cycle \"op0\" -> \"op1\" -> \"op2\" -> \"op0\"");
  EXPECT_EQ(chain(20000, false), "");  // deep chains need no deep recursion
  EXPECT_EQ(
      chain(20000, true),
      "job_definition.ops: dependency cycle \"op0\" -> \"op1\" -> \"op2\" -> \"op3\" -> \"op4\" -> "
      "\"op5\" -> \"op6\" -> \"op7\" -> ... -> \"op0\"");
}

TEST(JobDefinition, Meta) {
  EXPECT_EQ(err([](json& d) { d["meta"]["anything"] = {{"goes", 1}}; }), "");
  EXPECT_EQ(err([](json& d) { d["meta"]["system_requirements"]["gpu_model"] = "4090"; }), "");
  EXPECT_EQ(err([](json& d) { d.erase("meta"); }), "");
  for (const char* t : {"cli", "dashboard", "api", "deployment-manager"}) {
    EXPECT_EQ(err([&](json& d) { d["meta"]["trigger"] = t; }), "") << t;
  }
  EXPECT_EQ(err([](json& d) { d["meta"]["trigger"] = "cron"; }),
            "job_definition.meta.trigger: expected one of \"cli\", \"dashboard\", \"api\", "
            "\"deployment-manager\"");
  EXPECT_EQ(err([](json& d) { d["meta"] = json::array(); }),
            "job_definition.meta: expected object");
  const std::string sr = "job_definition.meta.system_requirements";
  EXPECT_EQ(err([](json& d) { d["meta"]["system_requirements"] = 6; }), sr + ": expected object");
  EXPECT_EQ(err([](json& d) { d["meta"]["system_requirements"]["vram_total_mb"] = -5; }),
            sr + ".vram_total_mb: expected integer >= 0");
  EXPECT_EQ(err([](json& d) { d["meta"]["system_requirements"]["vram_total_mb"] = 6144.5; }),
            sr + ".vram_total_mb: expected integer");
  EXPECT_EQ(err([](json& d) { d["meta"]["system_requirements"]["required_vram"] = "6"; }),
            sr + ".required_vram: expected number");
  EXPECT_EQ(err([](json& d) { d["meta"]["system_requirements"]["required_cuda"] = {12.8}; }),
            sr + ".required_cuda[0]: expected string");
  EXPECT_EQ(err([](json& d) { d["meta"]["required_cuda"] = "12.8"; }),
            "job_definition.meta.required_cuda: expected array");
  EXPECT_EQ(err([](json& d) { d["meta"]["required_vram"] = -6; }),
            "job_definition.meta.required_vram: expected number >= 0");
}

TEST(JobDefinition, Global) {
  json g = {{"image", "docker.io/vllm/vllm-openai:v0.10.2"},
            {"gpu", true},
            {"entrypoint", {"/bin/sh"}},
            {"env", {{"A", "1"}}},
            {"work_dir", "/app"},
            {"variables", {{"n", 1}}}};
  EXPECT_EQ(err([&](json& d) { d["global"] = g; }), "");
  EXPECT_EQ(err([](json& d) { d["global"] = 1; }), "job_definition.global: expected object");
  EXPECT_EQ(err([](json& d) {
              d["global"] = {{"cmd", "x"}};
            }),
            "job_definition.global.cmd: unknown field");
  EXPECT_EQ(err([](json& d) {
              d["global"] = {{"gpu", "x"}};
            }),
            "job_definition.global.gpu: expected boolean");
  EXPECT_EQ(err([](json& d) {
              d["global"] = {{"env", {{"A", 1}}}};
            }),
            "job_definition.global.env.A: expected string");
  EXPECT_EQ(err([](json& d) {
              d["global"] = {{"variables", json::array()}};
            }),
            "job_definition.global.variables: expected object");
}

TEST(JobDefinition, MultipleErrorsJoined) {
  json d = spec_doc();
  d["version"] = "1.0";
  args(d)["image"] = 5;
  args(d)["gpu"] = "true";
  std::vector<std::string> want = {"job_definition.version: expected \"0.1\"",
                                   "job_definition.ops[0].args.image: expected string",
                                   "job_definition.ops[0].args.gpu: expected boolean"};
  EXPECT_EQ(validate_job_definition(d), want);
  EXPECT_EQ(job_definition_error(d),
            "job_definition.version: expected \"0.1\"; job_definition.ops[0].args.image: expected "
            "string; "
            "job_definition.ops[0].args.gpu: expected boolean");
}

TEST(JobDefinition, RequiredVramSources) {
  EXPECT_EQ(required_vram_mb(spec_doc()), 6144);
  json d = spec_doc();
  d["meta"]["system_requirements"] = {{"required_vram", 8}};
  EXPECT_EQ(required_vram_mb(d), 8192);
  d["meta"] = {{"required_vram", 6}};
  EXPECT_EQ(required_vram_mb(d), 6144);
  d["meta"] = {{"required_vram", 1.5}};
  EXPECT_EQ(required_vram_mb(d), 1536);
  d.erase("meta");
  EXPECT_EQ(required_vram_mb(d), 0);
  args(d)["required_vram"] = 4;
  d["ops"].push_back(d["ops"][0]);
  d["ops"][1]["args"]["required_vram"] = 10;
  EXPECT_EQ(required_vram_mb(d), 10240);
  // First found wins, even when a later source is larger.
  d["meta"] = {{"required_vram", 2},
               {"system_requirements", {{"vram_total_mb", 1000}, {"required_vram", 3}}}};
  EXPECT_EQ(required_vram_mb(d), 1000);
  d["meta"]["system_requirements"].erase("vram_total_mb");
  EXPECT_EQ(required_vram_mb(d), 3072);
  d["meta"].erase("system_requirements");
  EXPECT_EQ(required_vram_mb(d), 2048);
  // Wrong types are skipped.
  d["meta"] = {{"required_vram", "6"}};
  EXPECT_EQ(required_vram_mb(d), 10240);
  EXPECT_EQ(required_vram_mb(json::array()), 0);
}

TEST(JobDefinition, NeedsGpu) {
  json d = spec_doc();
  EXPECT_TRUE(needs_gpu(d));
  args(d)["gpu"] = false;
  EXPECT_FALSE(needs_gpu(d));
  args(d).erase("gpu");
  EXPECT_FALSE(needs_gpu(d));
  d["global"] = {{"gpu", true}};
  EXPECT_TRUE(needs_gpu(d));
  EXPECT_FALSE(needs_gpu(json("x")));
}

TEST(JobDefinition, NativeVllmImage) {
  for (const char* yes :
       {"vllm/vllm-openai", "vllm/vllm-openai:latest", "docker.io/vllm/vllm-openai:v0.10.2",
        "docker.io/vllm/vllm-openai", "vllm/vllm-openai:v0.10.1.1_cu12-x"}) {
    EXPECT_TRUE(is_native_vllm_image(yes)) << yes;
  }
  for (const char* no :
       {"", "vllm/vllm-openai:", "ghcr.io/vllm/vllm-openai:v0.10.2", "vllm/vllm-openai-rocm",
        "vllm/vllm-openai@sha256:abc", "docker.io/vllm/vllm-openai:v0.10.2 ", "vllm/vllm",
        "index.docker.io/vllm/vllm-openai", "vllm/vllm-openai:v1/x", "ubuntu:22.04"}) {
    EXPECT_FALSE(is_native_vllm_image(no)) << no;
  }
}

TEST(JobDefinition, CanonicalJsonAndHash) {
  json j = json::parse(
      R"({"b":1,"a":{"d":[3,{"z":1,"y":2.5}],"c":"x\u00e9"},"e":null,"f":[true,false]})");
  EXPECT_EQ(canonical_json(j),
            "{\"a\":{\"c\":\"x\xC3\xA9\",\"d\":[3,{\"y\":2.5,\"z\":1}]},\"b\":1,\"e\":null,\"f\":["
            "true,false]}");
  nlohmann::ordered_json o = nlohmann::ordered_json::parse(R"({"b":1,"a":2})");
  EXPECT_EQ(canonical_json(o), "{\"a\":2,\"b\":1}");
  EXPECT_EQ(definition_hash(json::object()),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
  std::string h = definition_hash(spec_doc());
  ASSERT_EQ(h.size(), 7u + 64u) << h;
  EXPECT_TRUE(h.starts_with("sha256:")) << h;
  EXPECT_EQ(h.find_first_not_of("0123456789abcdef", 7), std::string::npos) << h;
  // Key order and formatting do not change the hash; content does.
  EXPECT_EQ(definition_hash(nlohmann::ordered_json::parse(kSpecJobDefinition15b)), h);
  EXPECT_EQ(definition_hash(json::parse(spec_doc().dump())), h);
  json d = spec_doc();
  d["deployment_id"] = "x";
  EXPECT_NE(definition_hash(d), h);
}

// ---- templates ----

TEST(Templates, CatalogueIds) {
  const TemplateCatalog& c = TemplateCatalog::builtin();
  std::vector<std::string> ids;
  for (const Template& t : c.templates()) ids.push_back(t.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"deepseek-r1-qwen-1-5b", "deepseek-r1-qwen-7b",
                                           "deepseek-r1-qwen-14b", "deepseek-r1-qwen-32b",
                                           "deepseek-r1-qwen-70b-awq", "deepseek-r1-qwen-8b",
                                           "llama32-1b", "qwen25-coder"}));
  std::vector<std::string> groups;
  for (const TemplateGroup& g : c.groups()) {
    groups.push_back(g.id);
    EXPECT_LE(g.id.size(), 16u);
    EXPECT_EQ(g.id.find('.'), std::string::npos);
    for (const Template* t : g.variants) EXPECT_EQ(t->parent, g.id);
  }
  EXPECT_EQ(groups, (std::vector<std::string>{"deepseek-r1-qwen", "llama32", "qwen25-coder"}));
  EXPECT_EQ(c.find("deepseek-r1-qwen"), nullptr);
  EXPECT_EQ(c.find("nope"), nullptr);
  ASSERT_NE(c.find("qwen25-coder"), nullptr);
  EXPECT_EQ(c.find("qwen25-coder")->variant, "");
}

TEST(Templates, DeepSeekSpecVariant) {
  const Template* t = TemplateCatalog::builtin().find("deepseek-r1-qwen-1-5b");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->job_definition_text, kSpecJobDefinition15b);
  EXPECT_EQ(t->job_definition.dump(2) + "\n", kSpecJobDefinition15b);  // key order preserved
  EXPECT_EQ(t->parent, "deepseek-r1-qwen");
  EXPECT_EQ(t->variant, "1-5b");
  EXPECT_EQ(t->name, "DeepSeek R1 Qwen Models");
  EXPECT_EQ(t->variant_name, "1.5B Model");
  EXPECT_EQ(t->description, "Lightweight 1.5B parameter model - lowest VRAM requirement");
  EXPECT_EQ(t->icon, "https://avatars.githubusercontent.com/u/148330874?s=48&v=4");
  EXPECT_EQ(t->category, (std::vector<std::string>{"Official", "API", "LLM", "vLLM"}));
  const TemplateGroup& g = TemplateCatalog::builtin().groups()[0];
  // The spec's info.json lists four variants; the 8B and 70B files are "file only": deployable
  // templates that the grouped catalogue does not list.
  ASSERT_EQ(g.variants.size(), 4u);
  EXPECT_EQ(g.variants[0], t);
  const Template* llama8 = TemplateCatalog::builtin().find("deepseek-r1-qwen-8b");
  ASSERT_NE(llama8, nullptr);
  EXPECT_FALSE(llama8->listed);
  EXPECT_EQ(llama8->variant_name, "DeepSeek-R1-Distill-Llama-8B");
  const Template* llama70 = TemplateCatalog::builtin().find("deepseek-r1-qwen-70b-awq");
  ASSERT_NE(llama70, nullptr);
  EXPECT_EQ(llama70->variant_name, "DeepSeek-R1-Distill-Llama-70B-AWQ");
  EXPECT_EQ(g.name, "DeepSeek R1 Qwen Models");
}

TEST(Templates, DeepSeekVariantTable) {
  struct Row {
    const char *id, *op, *model, *served;
    int64_t vram;
  };
  for (const Row& r : {Row{"7b", "Qwen7b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
                           "DeepSeek-R1-Distill-Qwen-7B", 17408},
                       Row{"14b", "Qwen14b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B",
                           "DeepSeek-R1-Distill-Qwen-14B", 32768},
                       Row{"32b", "Qwen32b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
                           "DeepSeek-R1-Distill-Qwen-32B", 68608},
                       Row{"8b", "Llama8b", "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
                           "DeepSeek-R1-Distill-Llama-8B", 18432},
                       Row{"70b-awq", "Llama70b", "Valdemardi/DeepSeek-R1-Distill-Llama-70B-AWQ",
                           "DeepSeek-R1-Distill-Llama-70B-AWQ", 43008}}) {
    const Template* t = TemplateCatalog::builtin().find(std::string("deepseek-r1-qwen-") + r.id);
    ASSERT_NE(t, nullptr) << r.id;
    // The spec block with only the op id, model, served name and VRAM changed.
    std::string want(kSpecJobDefinition15b);
    auto replace_all = [&](const std::string& from, const std::string& to) {
      for (size_t p = want.find(from); p != std::string::npos; p = want.find(from, p + to.size())) {
        want.replace(p, from.size(), to);
      }
    };
    replace_all("\"Qwen1-5b\"", std::string("\"") + r.op + "\"");
    replace_all("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", r.model);
    replace_all("DeepSeek-R1-Distill-Qwen-1.5B", r.served);
    replace_all("\"vram_total_mb\": 6144", "\"vram_total_mb\": " + std::to_string(r.vram));
    EXPECT_EQ(t->job_definition_text, want) << r.id;
    EXPECT_EQ(required_vram_mb(t->job_definition), r.vram) << r.id;
  }
}

TEST(Templates, EveryJobDefinitionIsValidAndNative) {
  for (const Template& t : TemplateCatalog::builtin().templates()) {
    EXPECT_EQ(job_definition_error(t.job_definition), "") << t.id;
    EXPECT_EQ(nlohmann::ordered_json::parse(t.job_definition_text), t.job_definition) << t.id;
    const auto& op = t.job_definition["ops"][0];
    EXPECT_TRUE(is_native_vllm_image(op["args"]["image"].get<std::string>())) << t.id;
    EXPECT_TRUE(needs_gpu(t.job_definition)) << t.id;
    EXPECT_EQ(op["args"]["expose"][0]["port"], 9000) << t.id;
    EXPECT_GT(required_vram_mb(t.job_definition), 0) << t.id;
    EXPECT_FALSE(t.icon.empty()) << t.id;
    EXPECT_FALSE(t.category.empty()) << t.id;
    for (const char* s : {"port 9000", "POST /v1/chat/completions", "GET /v1/models"}) {
      EXPECT_NE(t.readme.find(s), std::string::npos) << t.id << " README lacks " << s;
    }
  }
  const Template* coder = TemplateCatalog::builtin().find("qwen25-coder");
  ASSERT_NE(coder, nullptr);
  EXPECT_EQ(coder->job_definition["ops"][0]["args"]["cmd"][1], "Qwen/Qwen2.5-Coder-1.5B-Instruct");
  EXPECT_EQ(coder->category, (std::vector<std::string>{"API", "LLM", "vLLM"}));
  const Template* llama = TemplateCatalog::builtin().find("llama32-1b");
  ASSERT_NE(llama, nullptr);
  EXPECT_EQ(llama->job_definition["ops"][0]["args"]["cmd"][1], "meta-llama/Llama-3.2-1B-Instruct");
}

TEST(Templates, EmbeddedFilesParse) {
  const auto& files = embedded_template_files();
  ASSERT_FALSE(files.empty());
  EXPECT_TRUE(std::is_sorted(files.begin(), files.end()));
  bool found = false;
  for (const auto& [path, bytes] : files) {
    if (path.ends_with(".json")) {
      EXPECT_TRUE(json::accept(bytes)) << path;
    }
    if (path == "deepseek-r1-qwen/job-definition-1.5b.json") {
      found = true;
      EXPECT_EQ(bytes, kSpecJobDefinition15b);
    }
  }
  EXPECT_TRUE(found);
  std::vector<std::pair<std::string, std::string>> copy(files.begin(), files.end());
  auto r = TemplateCatalog::from_files(copy);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->templates().size(), TemplateCatalog::builtin().templates().size());
}

TEST(Templates, FromFilesErrorsNameTheFile) {
  const std::string info =
      R"({"id":"demo","name":"Demo","category":["API"],"icon":"https://x/i.png"})";
  const std::string jd(kSpecJobDefinition15b);
  using Files = std::vector<std::pair<std::string, std::string>>;
  auto error_of = [](const Files& f) {
    auto r = TemplateCatalog::from_files(f);
    return r.ok() ? std::string("ok") : r.error();
  };
  EXPECT_EQ(
      error_of(
          {{"demo/info.json", info}, {"demo/README.md", "r"}, {"demo/job-definition.json", jd}}),
      "ok");
  EXPECT_EQ(error_of({{"demo/README.md", "r"}, {"demo/job-definition.json", jd}}),
            "templates/demo/info.json: missing");
  EXPECT_EQ(error_of({{"demo/info.json", info}, {"demo/job-definition.json", jd}}),
            "templates/demo/README.md: missing");
  EXPECT_EQ(error_of({{"info.json", info}}), "templates/info.json: expected <template>/<file>");
  EXPECT_EQ(
      error_of(
          {{"other/info.json", info}, {"other/README.md", "r"}, {"other/job-definition.json", jd}}),
      "templates/other/info.json: id \"demo\" differs from its folder name");
  EXPECT_EQ(
      error_of({{"demo/info.json", info},
                {"demo/README.md", "r"},
                {"demo/job-definition.json", R"({"version":"0.2","type":"container","ops":[]})"}}),
      "templates/demo/job-definition.json: job_definition.version: expected \"0.1\"; "
      "job_definition.ops: "
      "expected at least 1 op");
  EXPECT_TRUE(
      error_of({{"demo/info.json", "{"}, {"demo/README.md", "r"}, {"demo/job-definition.json", jd}})
          .starts_with("templates/demo/info.json: invalid JSON: "));
  EXPECT_EQ(error_of({{"demo/info.json", info}, {"demo/README.md", "r"}}),
            "templates/demo/info.json: without variants the folder needs exactly one "
            "job-definition*.json, found 0");
  std::string long_id = R"({"id":"a-very-long-template-id","name":"D","category":[],"icon":"i"})";
  EXPECT_EQ(error_of({{"a-very-long-template-id/info.json", long_id},
                      {"a-very-long-template-id/README.md", "r"},
                      {"a-very-long-template-id/job-definition.json", jd}}),
            "templates/a-very-long-template-id/info.json: id \"a-very-long-template-id\": expected "
            "1..16 characters "
            "without dots");
  std::string variants =
      R"({"id":"demo","name":"D","category":[],"icon":"i","variants":[{"id":"1.5b","name":"V","job_definition":"jd-x.json"}]})";
  EXPECT_EQ(error_of({{"demo/info.json", variants}, {"demo/README.md", "r"}}),
            "templates/demo/jd-x.json: missing (named by info.json)");
  auto r = TemplateCatalog::from_files(
      {{"demo/info.json", variants}, {"demo/README.md", "r"}, {"demo/jd-x.json", jd}});
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_NE(r->find("demo-1-5b"), nullptr);  // '.' in a variant id becomes '-'
  EXPECT_EQ(error_of({{"demo/info.json",
                       R"({"id":"demo","name":"D","category":[],"icon":"i","tags":[]})"},
                      {"demo/README.md", "r"},
                      {"demo/job-definition.json", jd}}),
            "templates/demo/info.json: tags: unknown field");
}

}  // namespace
}  // namespace infera::platform
