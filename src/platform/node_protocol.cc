#include "platform/node_protocol.h"

namespace infera::platform {

json to_json(const NodeHeartbeat& hb) {
  json jobs = json::array();
  for (const NodeJobReport& r : hb.jobs)
    jobs.push_back(json{{"job", r.job}, {"phase", r.phase}, {"endpoint_status", r.endpoint_status}, {"upstreams", r.upstreams},
                        {"health_failures", r.health_failures}});
  return json{{"node", hb.node}, {"resources", hb.resources}, {"jobs", jobs}, {"free_slots", hb.free_slots}};
}

NodeHeartbeat heartbeat_from_json(const json& j) {
  NodeHeartbeat hb;
  hb.node = j.at("node").get<std::string>();
  hb.resources = j.value("resources", json::object());
  hb.free_slots = j.value("free_slots", 0);
  for (const json& r : j.value("jobs", json::array()))
    hb.jobs.push_back(NodeJobReport{r.at("job").get<std::string>(), r.at("phase").get<std::string>(),
                                    r.at("endpoint_status").get<std::string>(), r.value("upstreams", json::object()),
                                    r.value("health_failures", 0)});
  return hb;
}

json to_json(const NodeOrders& o) {
  json start = json::array();
  for (const Assignment& a : o.start)
    start.push_back(json{{"job", a.job},
                         {"deployment", a.deployment ? json(*a.deployment) : json(nullptr)},
                         {"job_definition", a.job_definition},
                         {"remaining_s", a.remaining_s},
                         {"startup_timeout", a.startup_timeout_min}});
  return json{{"start", start}, {"stop", o.stop}};
}

NodeOrders orders_from_json(const json& j) {
  NodeOrders o;
  for (const json& a : j.value("start", json::array())) {
    Assignment x;
    x.job = a.at("job").get<std::string>();
    if (a.contains("deployment") && a["deployment"].is_string()) x.deployment = a["deployment"].get<std::string>();
    x.job_definition = a.value("job_definition", json());
    x.remaining_s = a.value("remaining_s", int64_t{0});
    x.startup_timeout_min = a.value("startup_timeout", 30);
    o.start.push_back(std::move(x));
  }
  o.stop = j.value("stop", std::vector<std::string>{});
  return o;
}

LogRecord log_from_json(const json& j) {
  LogRecord r;
  r.op = j.value("opId", json()).is_string() ? j["opId"].get<std::string>() : "";
  r.type = j.value("type", std::string("info"));
  if (r.type != "container" && r.type != "info" && r.type != "error") r.type = "info";
  r.stream = j.value("stream", std::string());
  r.ts = j.value("timestamp", int64_t{0});
  r.message = j.value("message", std::string());
  if (r.message.size() > 65536) r.message.resize(65536);
  if (j.contains("progress")) r.progress = j["progress"];
  return r;
}

}  // namespace infera::platform
