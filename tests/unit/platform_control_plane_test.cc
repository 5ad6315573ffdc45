// Control plane against the spec (platform.md §4, §6, §7, §14) with a fake clock: every status
// guard, every strategy's timing rule, credits to the micro-dollar, crash-and-retry without double
// effects, and the endpoint label test vector.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "platform/control_plane.h"
#include "platform/templates.h"
#include "platform/util.h"

namespace infera::platform {
namespace {

constexpr Micros k4090 = 290'900;  // nvidia-4090 user price per hour

json template_jd() {
  return json::parse(TemplateCatalog::builtin().find("deepseek-r1-qwen-1-5b")->job_definition_text);
}

json body(const char* market, const char* strat, int replicas, int timeout_min, bool autostart = true) {
  return json{{"market", market}, {"strategy", strat}, {"replicas", replicas}, {"timeout", timeout_min},
              {"autostart", autostart}, {"job_definition", template_jd()}};
}

class ControlPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override { open(":memory:"); }
  void open(const std::string& path, PlatformConfig cfg = {}) {
    cp_.reset();
    auto r = ControlPlane::open(path, clock_, std::move(cfg));
    ASSERT_TRUE(r.ok()) << r.error();
    cp_ = std::move(*r);
    admin_ = cp_->admin();
  }
  std::string create(const json& b) {
    auto r = cp_->create_deployment(admin_, b);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? (*r)["id"].get<std::string>() : "";
  }
  json dep(const std::string& id) { return *cp_->get_deployment(admin_, id); }
  std::string status(const std::string& id) { return dep(id)["status"]; }
  std::vector<Job> jobs(const std::string& id) {
    std::vector<Job> out;
    ListQuery q;
    q.limit = 100;
    q.ascending = true;
    json list = *cp_->list_jobs(admin_, id, q);
    for (const json& j : list["jobs"]) out.push_back(*cp_->find_job(j["job"]));
    return out;
  }
  int active(const std::string& id) {
    int n = 0;
    for (const Job& j : jobs(id)) n += j.active();
    return n;
  }
  std::vector<std::string> event_types(const std::string& id) {
    ListQuery q;
    q.limit = 100;
    q.ascending = true;
    std::vector<std::string> out;
    json list = *cp_->list_events(admin_, id, q);
    for (const json& e : list["events"]) out.push_back(e["type"]);
    return out;
  }
  bool has_event(const std::string& id, const std::string& type) {
    auto t = event_types(id);
    return std::find(t.begin(), t.end(), type) != t.end();
  }
  json tasks(const std::string& id) {
    ListQuery q;
    q.limit = 100;
    return (*cp_->list_tasks(admin_, id, q))["tasks"];
  }
  Balance balance() {
    Balance b = cp_->account_balance(admin_.account);
    EXPECT_EQ(b.available, b.assigned - b.reserved - b.settled) << "balance identity";
    return b;
  }
  void advance_s(int64_t s) {
    clock_.advance_s(s);
    cp_->tick();
  }
  std::string claim(const std::string& market = "nvidia-4090") {
    auto j = cp_->claim_job("node-1", {market});
    EXPECT_TRUE(j.has_value());
    return j ? j->id : "";
  }
  // Claimed and healthy (the start-up deadline does not apply).
  std::string claim_ready(const std::string& market = "nvidia-4090") {
    std::string id = claim(market);
    EXPECT_TRUE(cp_->report_job_phase(id, "READY", "ONLINE").is_ok());
    return id;
  }

  FakeClock clock_{1'765'000'800'000};  // 2025-12-06T06:00:00Z (a whole hour)
  std::unique_ptr<ControlPlane> cp_;
  Caller admin_;
};

TEST_F(ControlPlaneTest, EndpointLabelsMatchSpecTestVector) {
  const std::string dh = deployment_hash("9sQm3WZ5vH1bqzD8RkTnJd4YxFpC2eLgUa7oV6iN1rTy", "5tGkq2yDh7Rk3mWnXc8VbJ4sLpF6aZeT1uQoN9iE2rYw");
  EXPECT_EQ(dh, "4ZxN9mnSLKDVA9CvfseH8aAB8zg1iEmVnZ1V2RQrEzVho");
  EXPECT_EQ(deployment_label("Qwen1-5b", 0, dh), "5c1q4mgx3ccrqzm8y5khwnqcxdyritfncudimvnxgg8d");
  EXPECT_EQ(job_label(0, 9000, "3JbXq7Lm2Nv8Rt5Ws9Yc4Zd6Fh1Gk3Jp5Ms7Qu9Xa2Be"), "b47epvspjd5cccr6ub6sqtc3egdbze4uvk83x1guxsh6");
  EXPECT_EQ(base58_encode(std::string("\0\0\x01", 3)), "112");
}

TEST_F(ControlPlaneTest, MoneyFormattingAndRounding) {
  EXPECT_EQ(format_usd(290'900, 3), "$0.291");
  EXPECT_EQ(format_usd(0, 2, true), "$0.00");
  EXPECT_EQ(format_usd(9'999'999, 2, true), "$9.99");
  EXPECT_EQ(cost_for_seconds(k4090, 1800), 145'450);
  EXPECT_EQ(cost_for_seconds(1, 1800), 1);  // 0.5 rounds half up
  EXPECT_EQ(cost_for_seconds(1, 1799), 0);
  EXPECT_EQ(parse_usd("0.29"), 290'000);
  EXPECT_EQ(parse_usd("x"), -1);
}

TEST_F(ControlPlaneTest, SimpleRunsOnceSettlesPerSecondAndStops) {
  const std::string id = create(body("nvidia-4090", "SIMPLE", 1, 60));
  EXPECT_EQ(status(id), "STARTING");
  cp_->tick();
  EXPECT_EQ(status(id), "RUNNING");
  ASSERT_EQ(jobs(id).size(), 1u);
  EXPECT_EQ(jobs(id)[0].state, "QUEUED");
  EXPECT_EQ(balance().reserved, k4090);
  EXPECT_EQ(balance().available, 10'000'000 - k4090);
  const std::string job = claim_ready();
  advance_s(1800);
  ASSERT_TRUE(cp_->report_job_exit(job, 0).is_ok());
  Job j = *cp_->find_job(job);
  EXPECT_EQ(j.state, "COMPLETED");
  EXPECT_EQ(j.end_reason, "EXITED");
  EXPECT_EQ(j.charged, 145'450);
  EXPECT_EQ(status(id), "STOPPED");
  Balance b = balance();
  EXPECT_EQ(b.settled, 145'450);
  EXPECT_EQ(b.reserved, 0);
  EXPECT_EQ(b.available, 10'000'000 - 145'450);
  EXPECT_TRUE(has_event(id, "JOB_EXITED"));
}

TEST_F(ControlPlaneTest, SimpleNeverReplacesAFailedJob) {
  const std::string id = create(body("nvidia-4090", "SIMPLE", 2, 60));
  cp_->tick();
  const std::string a = claim_ready(), b = claim_ready();
  advance_s(60);
  ASSERT_TRUE(cp_->report_job_exit(a, 1).is_ok());
  EXPECT_EQ(cp_->find_job(a)->end_reason, "FAILED");
  advance_s(600);
  EXPECT_EQ(jobs(id).size(), 2u);
  EXPECT_EQ(status(id), "RUNNING");
  ASSERT_TRUE(cp_->report_job_exit(b, 0).is_ok());
  EXPECT_EQ(status(id), "STOPPED");
}

TEST_F(ControlPlaneTest, JobTimeoutCompletesAndChargesTheFullReservation) {
  const std::string id = create(body("nvidia-4090", "SIMPLE", 1, 60));
  cp_->tick();
  const std::string job = claim_ready();
  advance_s(3599);
  EXPECT_EQ(cp_->find_job(job)->state, "RUNNING");
  advance_s(5);
  Job j = *cp_->find_job(job);
  EXPECT_EQ(j.state, "COMPLETED");
  EXPECT_EQ(j.end_reason, "TIMEOUT");
  EXPECT_EQ(*j.time_end - *j.time_start, 3600);
  EXPECT_EQ(j.charged, k4090);
  EXPECT_EQ(status(id), "STOPPED");
  EXPECT_EQ(balance().available, 10'000'000 - k4090);
}

TEST_F(ControlPlaneTest, SimpleExtendExtendsAtTimeoutMinusBufferUntilFundsRunOut) {
  // T = 3600 s, buffer = clamp(360, 60, 300) = 300: first EXTEND at start + 3300 s.
  PlatformConfig cfg;
  cfg.signup_grant = 2 * k4090 + 100;  // the first job and one extension
  open(":memory:", cfg);
  const std::string id = create(body("nvidia-4090", "SIMPLE-EXTEND", 1, 60));
  cp_->tick();
  const std::string job = claim_ready();
  ASSERT_EQ(tasks(id).size(), 1u);
  EXPECT_EQ(tasks(id)[0]["task"], "EXTEND");
  advance_s(3299);
  EXPECT_EQ(cp_->find_job(job)->timeout_s, 3600);
  advance_s(1);
  EXPECT_EQ(cp_->find_job(job)->timeout_s, 7200);
  EXPECT_EQ(cp_->find_job(job)->reserved, 2 * k4090);
  EXPECT_TRUE(has_event(id, "JOB_EXTEND_SUCCESSFUL"));
  // The next EXTEND is due T after the confirmation (no buffer): start + 6900 s. It cannot be paid.
  advance_s(3599);
  EXPECT_EQ(status(id), "RUNNING");
  advance_s(1);
  EXPECT_EQ(status(id), "INSUFFICIENT_FUNDS");
  EXPECT_TRUE(has_event(id, "JOB_EXTEND_ERROR"));
  EXPECT_TRUE(has_event(id, "INSUFFICIENT_CREDITS"));
  EXPECT_FALSE(dep(id)["next_retry_at"].is_null());
  EXPECT_EQ(cp_->find_job(job)->timeout_s, 7200);
  // The job runs to its paid end; SIMPLE-EXTEND then stops.
  advance_s(300);
  EXPECT_EQ(cp_->find_job(job)->end_reason, "TIMEOUT");
  EXPECT_EQ(status(id), "STOPPED");
  EXPECT_EQ(balance().settled, 2 * k4090);
}

TEST_F(ControlPlaneTest, ShortTimeoutUsesTheMinimumBuffer) {
  const std::string id = create(body("nvidia-4090", "SIMPLE-EXTEND", 1, 5));  // T = 300 s, buffer 60 s
  cp_->tick();
  const std::string job = claim_ready();
  advance_s(239);
  EXPECT_EQ(cp_->find_job(job)->extend_count, 0);
  advance_s(1);
  EXPECT_EQ(cp_->find_job(job)->extend_count, 1);
  EXPECT_EQ(cp_->find_job(job)->timeout_s, 600);
}

TEST_F(ControlPlaneTest, ScheduledListsAtEachCronFiring) {
  clock_.set_ms(1'765'000'800'000 + 30 * 60'000);  // 06:30
  json b = body("nvidia-4090", "SCHEDULED", 2, 30);
  b["schedule"] = "0 * * * *";
  const std::string id = create(b);
  cp_->tick();
  EXPECT_EQ(status(id), "RUNNING");
  ASSERT_EQ(tasks(id).size(), 1u);
  EXPECT_EQ(tasks(id)[0]["due_at"], "2025-12-06T07:00:00.000Z");
  advance_s(29 * 60 + 59);
  EXPECT_EQ(jobs(id).size(), 0u);
  advance_s(1);
  EXPECT_EQ(jobs(id).size(), 2u);
  ASSERT_EQ(tasks(id).size(), 1u);
  EXPECT_EQ(tasks(id)[0]["due_at"], "2025-12-06T08:00:00.000Z");
  // The jobs end (30 min timeout) and the deployment waits, RUNNING, for the next firing.
  claim_ready();
  claim_ready();
  advance_s(31 * 60);
  EXPECT_EQ(active(id), 0);
  EXPECT_EQ(status(id), "RUNNING");
  advance_s(29 * 60);
  EXPECT_EQ(jobs(id).size(), 4u);
  ASSERT_TRUE((*cp_->update_schedule(admin_, id, json{{"schedule", "30 9 * * *"}})).is_object());
  EXPECT_EQ(tasks(id)[0]["due_at"], "2025-12-06T09:30:00.000Z");
  auto bad = cp_->update_schedule(admin_, id, json{{"schedule", "61 * * * *"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().status, 400);
}

TEST_F(ControlPlaneTest, InfiniteRotatesMakeBeforeBreak) {
  json b = body("nvidia-4090", "INFINITE", 1, 60);
  b["rotation_time"] = 20;
  const std::string id = create(b);
  cp_->tick();
  const std::string old_job = claim();
  ASSERT_TRUE(cp_->report_job_phase(old_job, "READY", "ONLINE").is_ok());
  advance_s(40 * 60 - 1);
  EXPECT_EQ(jobs(id).size(), 1u);
  advance_s(1);
  ASSERT_EQ(jobs(id).size(), 2u);  // the replacement is listed 20 min before the timeout
  const std::string fresh = claim();
  EXPECT_FALSE(cp_->find_job(old_job)->stop_requested_at.has_value());  // no gap before it is READY
  ASSERT_TRUE(cp_->report_job_phase(fresh, "READY", "ONLINE").is_ok());
  Job o = *cp_->find_job(old_job);
  ASSERT_TRUE(o.stop_requested_at.has_value());
  EXPECT_EQ(o.stop_reason, "ROTATION");
  ASSERT_TRUE(cp_->report_job_exit(old_job, 0).is_ok());
  EXPECT_EQ(cp_->find_job(old_job)->end_reason, "ROTATION");
  advance_s(5);
  EXPECT_EQ(active(id), 1);  // no top-up: the replacement already serves
  EXPECT_EQ(status(id), "RUNNING");
}

TEST_F(ControlPlaneTest, InfiniteTopsUpThenThrottlesAndStopsACrashLoop) {
  const std::string id = create(body("local-cpu", "INFINITE", 1, 60));
  cp_->tick();
  int64_t listed_at = 0;
  std::vector<int64_t> delays;
  for (int round = 0; round < 20 && status(id) == "RUNNING"; ++round) {
    // Wait for the (possibly delayed) replacement, then crash it after 30 s.
    int waited = 0;
    while (active(id) == 0 && waited < 4000) {
      advance_s(1);
      ++waited;
    }
    if (status(id) != "RUNNING") break;
    if (round > 0) delays.push_back(waited);
    listed_at = clock_.now_s();
    const std::string j = claim("local-cpu");
    advance_s(30);
    ASSERT_TRUE(cp_->report_job_exit(j, 1).is_ok());
  }
  (void)listed_at;
  // Jobs 1-3 are replaced at once; from the 3rd rapid end on, each round doubles the delay.
  ASSERT_GE(delays.size(), 9u);
  EXPECT_LE(delays[0], 1);
  EXPECT_LE(delays[1], 1);
  EXPECT_EQ(delays[2], 60);
  EXPECT_EQ(delays[3], 120);
  EXPECT_EQ(delays[4], 240);
  EXPECT_TRUE(has_event(id, "RAPID_COMPLETION_THROTTLE"));
  EXPECT_TRUE(has_event(id, "RAPID_COMPLETION_FAIL_SAFE"));
  EXPECT_EQ(status(id), "STOPPED");
  EXPECT_EQ(dep(id)["rapid_streak"], 8);
}

TEST_F(ControlPlaneTest, StatusGuards) {
  const std::string id = create(body("local-cpu", "SIMPLE", 1, 60, false));
  EXPECT_EQ(status(id), "DRAFT");
  auto e = cp_->stop_deployment(admin_, id);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().status, 409);
  EXPECT_EQ(e.error().message,
            "Deployment is in the incorrect state: DRAFT (allowed: STARTING, RUNNING, ERROR, INSUFFICIENT_FUNDS, STOPPING)");
  ASSERT_TRUE(cp_->start_deployment(admin_, id).ok());
  EXPECT_EQ(status(id), "STARTING");
  EXPECT_EQ(cp_->start_deployment(admin_, id).error().message,
            "Deployment is in the incorrect state: STARTING (allowed: DRAFT, STOPPED, ERROR, INSUFFICIENT_FUNDS)");
  ASSERT_TRUE(cp_->stop_deployment(admin_, id).ok());  // OURS: STARTING may stop
  EXPECT_EQ(status(id), "STOPPING");
  ASSERT_TRUE(cp_->stop_deployment(admin_, id).ok());  // idempotent
  cp_->tick();
  EXPECT_EQ(status(id), "STOPPED");
  EXPECT_EQ(cp_->stop_deployment(admin_, id).error().status, 409);
  ASSERT_TRUE(cp_->start_deployment(admin_, id).ok());
  cp_->tick();
  EXPECT_EQ(status(id), "RUNNING");
  EXPECT_EQ(cp_->archive_deployment(admin_, id).error().message,
            "Deployment is in the incorrect state: RUNNING (allowed: STOPPED, DRAFT)");
  EXPECT_EQ(cp_->delete_deployment(admin_, id).error().status, 409);
  ASSERT_TRUE(cp_->stop_deployment(admin_, id).ok());
  cp_->tick();
  ASSERT_TRUE(cp_->archive_deployment(admin_, id).ok());
  for (auto r : {cp_->start_deployment(admin_, id), cp_->stop_deployment(admin_, id),
                 cp_->update_replicas(admin_, id, json{{"replicas", 2}}), cp_->update_name(admin_, id, json{{"name", "x"}})}) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().status, 409);
    EXPECT_EQ(r.error().message, "Cannot modify an archived deployment.");
  }
  EXPECT_EQ(cp_->update_schedule(admin_, create(body("local-cpu", "SIMPLE", 1, 60, false)), json{{"schedule", "* * * * *"}})
                .error()
                .message,
            "Deployment has incorrect strategy.");
  const std::string draft = create(body("local-cpu", "SIMPLE", 1, 60, false));
  ASSERT_TRUE(cp_->delete_deployment(admin_, draft).ok());
  EXPECT_EQ(cp_->get_deployment(admin_, draft).error().status, 404);
}

TEST_F(ControlPlaneTest, CreateValidation) {
  auto err = [&](json b) {
    auto r = cp_->create_deployment(admin_, b);
    EXPECT_FALSE(r.ok());
    return r.ok() ? ApiError{200, ""} : r.error();
  };
  EXPECT_EQ(err(body("nvidia-4090", "SIMPLE", 0, 60)).message, "replicas: must be between 1 and 100 (got 0)");
  EXPECT_EQ(err(body("nvidia-4090", "SIMPLE", 101, 60)).message, "replicas: must be between 1 and 100 (got 101)");
  EXPECT_EQ(err(body("nvidia-4090", "SIMPLE", 1, 0)).message, "timeout: must be at least 1 minute");
  EXPECT_EQ(err(body("nvidia-4090", "INFINITE", 1, 30)).message, "timeout: must be at least 60 minutes for INFINITE");
  EXPECT_EQ(err(body("nvidia-4090", "FAST", 1, 30)).message,
            "strategy: expected one of SIMPLE, SIMPLE-EXTEND, SCHEDULED, INFINITE");
  EXPECT_EQ(err(body("nvidia-4090", "SCHEDULED", 1, 30)).message, "schedule: required for strategy SCHEDULED");
  json b = body("nvidia-4090", "SIMPLE", 1, 60);
  b["name"] = std::string(10 * 1024, 'n');
  EXPECT_EQ(err(b).message, "name: at most 100 characters (got 10240)");
  EXPECT_EQ(err(body("nowhere", "SIMPLE", 1, 60)).status, 404);
  b = body("nvidia-4090", "SIMPLE", 1, 60);
  b["job_definition"]["ops"][0]["args"]["image"] = 5;
  EXPECT_EQ(err(b).message, "job_definition.ops[0].args.image: expected string");
  b = body("nvidia-4090", "SIMPLE", 1, 60);
  b["job_definition"] = json::parse(TemplateCatalog::builtin().find("deepseek-r1-qwen-32b")->job_definition_text);
  EXPECT_EQ(err(b).message, "Market nvidia-4090 does not meet the required VRAM (68608 MB) for this job definition.");
  b = body("nvidia-4090", "SIMPLE", 1, 60);
  b["replicas"] = "two";
  EXPECT_EQ(err(b).message, "replicas: expected integer");
  // null is not a value for a required field.
  for (const char* key : {"replicas", "timeout", "job_definition"}) {
    b = body("nvidia-4090", "SIMPLE", 1, 60);
    b[key] = nullptr;
    EXPECT_EQ(err(b).message, std::string(key) + ": required");
  }
  b = body("nvidia-4090", "SIMPLE", 1, 60);
  b["job_definition"] = "x";
  EXPECT_EQ(err(b).message, "job_definition: expected object");
  EXPECT_EQ(err(json::array()).message, "body: expected a JSON object");
  // 402 before anything is created.
  auto r = cp_->create_deployment(admin_, body("nvidia-8xh100", "SIMPLE", 1, 60));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status, 402);
  EXPECT_EQ(r.error().message, "Insufficient credits. Need $18.200, have $10.00");
  ListQuery q;
  EXPECT_EQ((*cp_->list_deployments(admin_, q))["pagination"]["total_items"], 0);
}

TEST_F(ControlPlaneTest, StoredRevisionCarriesTheDeploymentIdAndTrigger) {
  const std::string id = create(body("local-cpu", "SIMPLE", 1, 60, false));
  auto rev = cp_->find_revision(id, 1);
  ASSERT_TRUE(rev.has_value());
  EXPECT_EQ(rev->job_definition["deployment_id"], id);
  EXPECT_EQ(rev->job_definition["meta"]["trigger"], "deployment-manager");
  EXPECT_EQ(rev->hash.substr(0, 7), "sha256:");
  json d = dep(id);
  ASSERT_EQ(d["endpoints"].size(), 1u);
  const std::string label = deployment_label("Qwen1-5b", 0, deployment_hash(id, admin_.account));
  EXPECT_EQ(d["endpoints"][0]["url"], "http://127.0.0.1:8080/e/" + label + "/");
  EXPECT_EQ(d["endpoints"][0]["port"], 9000);
}

TEST_F(ControlPlaneTest, ScaleUpListsTheShortfallAndScaleDownStopsQueuedFirst) {
  const std::string id = create(body("nvidia-4090", "SIMPLE", 1, 60));
  cp_->tick();
  const std::string running = claim_ready();
  ASSERT_TRUE(cp_->update_replicas(admin_, id, json{{"replicas", 3}}).ok());
  cp_->tick();
  EXPECT_EQ(active(id), 3);
  EXPECT_EQ(balance().reserved, 3 * k4090);
  ASSERT_TRUE(cp_->update_replicas(admin_, id, json{{"replicas", 1}}).ok());
  EXPECT_EQ(active(id), 1);
  EXPECT_EQ(cp_->find_job(running)->state, "RUNNING");
  for (const Job& j : jobs(id))
    if (j.id != running) { EXPECT_EQ(j.end_reason, "SCALE_DOWN"); }
  EXPECT_EQ(balance().reserved, k4090);
  auto big = cp_->update_replicas(admin_, id, json{{"replicas", 101}});
  EXPECT_EQ(big.error().status, 400);
  auto poor = cp_->update_replicas(admin_, id, json{{"replicas", 100}});
  EXPECT_EQ(poor.error().status, 402);
}

TEST_F(ControlPlaneTest, TimeoutIncreaseExtendsRunningJobsOnce) {
  const std::string id = create(body("nvidia-4090", "SIMPLE-EXTEND", 1, 60));
  cp_->tick();
  const std::string job = claim_ready();
  ASSERT_TRUE(cp_->update_timeout(admin_, id, json{{"timeout", 90}}).ok());
  EXPECT_EQ(cp_->find_job(job)->timeout_s, 5400);
  EXPECT_EQ(cp_->find_job(job)->reserved, k4090 + k4090 / 2);
  ASSERT_TRUE(cp_->update_timeout(admin_, id, json{{"timeout", 30}}).ok());  // never shortened
  EXPECT_EQ(cp_->find_job(job)->timeout_s, 5400);
  EXPECT_EQ(dep(id)["timeout"], 30);
  EXPECT_EQ(cp_->update_timeout(admin_, id, json{{"timeout", 0}}).error().status, 400);
}

TEST_F(ControlPlaneTest, NewRevisionReplacesJobsMakeBeforeBreak) {
  const std::string id = create(body("nvidia-4090", "SIMPLE", 1, 60));
  cp_->tick();
  const std::string old_job = claim();
  ASSERT_TRUE(cp_->report_job_phase(old_job, "READY", "ONLINE").is_ok());
  json jd = template_jd();
  jd["ops"][0]["args"]["cmd"][6] = "--max-model-len";
  jd["ops"][0]["args"]["cmd"][7] = "8192";
  auto r = cp_->create_revision(admin_, id, jd);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["active_revision"], 2);
  EXPECT_EQ((*r)["endpoints"][0]["url"], dep(id)["endpoints"][0]["url"]);  // same op id: same URL
  cp_->tick();
  ASSERT_EQ(active(id), 2);
  const std::string fresh = claim();
  EXPECT_EQ(cp_->find_job(fresh)->revision, 2);
  EXPECT_FALSE(cp_->find_job(old_job)->stop_requested_at.has_value());
  ASSERT_TRUE(cp_->report_job_phase(fresh, "READY", "ONLINE").is_ok());
  EXPECT_EQ(cp_->find_job(old_job)->stop_reason, "REVISION_CHANGE");
  ASSERT_TRUE(cp_->report_job_exit(old_job, 0).is_ok());
  EXPECT_EQ(status(id), "RUNNING");
  // Switching back to revision 1 works the same way; an unknown one is a 400.
  EXPECT_TRUE(cp_->update_active_revision(admin_, id, json{{"active_revision", 1}}).ok());
  EXPECT_EQ(cp_->update_active_revision(admin_, id, json{{"active_revision", 9}}).error().status, 400);
}

TEST_F(ControlPlaneTest, StartupDeadlineStopsTheJobAndErrorsTheDeployment) {
  json b = body("nvidia-4090", "SIMPLE", 1, 120);
  b["startup_timeout"] = 10;
  const std::string id = create(b);
  cp_->tick();
  const std::string job = claim();
  ASSERT_TRUE(cp_->report_job_phase(job, "LOADING", "OFFLINE").is_ok());
  advance_s(10 * 60 - 1);
  EXPECT_FALSE(cp_->find_job(job)->stop_requested_at.has_value());
  advance_s(1);
  EXPECT_EQ(cp_->find_job(job)->stop_reason, "STARTUP_TIMEOUT");
  EXPECT_TRUE(has_event(id, "JOB_STARTUP_TIMEOUT"));
  ASSERT_EQ(cp_->jobs_to_stop("node-1").size(), 1u);
  ASSERT_TRUE(cp_->report_job_exit(job, 143).is_ok());
  EXPECT_EQ(cp_->find_job(job)->end_reason, "STARTUP_TIMEOUT");
  EXPECT_EQ(status(id), "ERROR");
  EXPECT_EQ(cp_->find_job(job)->charged, cost_for_seconds(k4090, 600));
}

TEST_F(ControlPlaneTest, UnconfirmedStopResolvesAfterSixtySeconds) {
  const std::string id = create(body("nvidia-4090", "SIMPLE", 1, 60));
  cp_->tick();
  const std::string job = claim_ready();
  advance_s(100);
  ASSERT_TRUE(cp_->stop_deployment(admin_, id).ok());
  advance_s(59);
  EXPECT_EQ(status(id), "STOPPING");
  advance_s(1);
  Job j = *cp_->find_job(job);
  EXPECT_EQ(j.state, "STOPPED");
  EXPECT_EQ(j.end_reason, "NODE_LOST");
  EXPECT_EQ(*j.time_end - *j.time_start, 100);  // billed up to the stop request
  EXPECT_EQ(status(id), "STOPPED");
}

TEST_F(ControlPlaneTest, QueuedJobExpiresWithFullRefund) {
  const std::string id = create(body("nvidia-4090", "SIMPLE", 1, 60));
  cp_->tick();
  advance_s(86'399);
  EXPECT_EQ(active(id), 1);
  advance_s(1);
  EXPECT_EQ(jobs(id)[0].end_reason, "EXPIRED");
  EXPECT_EQ(balance().available, 10'000'000);
  EXPECT_EQ(status(id), "STOPPED");
}

TEST_F(ControlPlaneTest, FundsErrorRetriesOnTheLadderAndRecoversAfterTopUp) {
  // $10 covers 7 H100-hours (1.3636 each); the 8th listing fails.
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(create(body("nvidia-h100", "SIMPLE", 1, 60)));
  cp_->tick();
  const std::string& last = ids.back();
  EXPECT_EQ(status(last), "INSUFFICIENT_FUNDS");
  EXPECT_TRUE(has_event(last, "INSUFFICIENT_CREDITS"));
  EXPECT_EQ(dep(last)["next_retry_at"], iso8601_ms(clock_.now_ms() + 600'000));
  EXPECT_EQ(active(last), 0);
  ASSERT_TRUE(cp_->grant(admin_, json{{"amount", 5}}).ok());
  advance_s(599);
  EXPECT_EQ(status(last), "INSUFFICIENT_FUNDS");
  advance_s(1);
  EXPECT_EQ(status(last), "RUNNING");
  EXPECT_EQ(active(last), 1);
}

TEST_F(ControlPlaneTest, CrashBetweenListingStepsNeverListsOrChargesTwice) {
  const std::string path = (std::filesystem::temp_directory_path() / ("infera_cp_" + random_base62(8) + ".db")).string();
  for (const char* step : {"list:after-job", "list:before-commit", "task:claimed"}) {
    SCOPED_TRACE(step);
    std::filesystem::remove(path);
    PlatformConfig crashing;
    int hits = 0;
    crashing.fault_hook = [&hits, step](const std::string& s) {
      if (s == step && hits++ == 0) throw std::runtime_error("simulated crash");
    };
    open(path, crashing);
    const std::string id = create(body("nvidia-4090", "SIMPLE", 3, 60));
    EXPECT_THROW(cp_->tick(), std::runtime_error);
    open(path);  // restart: a fresh process on the same store
    cp_->tick();
    cp_->tick();
    EXPECT_EQ(jobs(id).size(), 3u);
    EXPECT_EQ(balance().reserved, 3 * k4090);
    ListQuery q;
    q.limit = 100;
    q.filters["type"] = "job_debit";
    EXPECT_EQ((*cp_->transactions(admin_, q))["pagination"]["total_items"], 3);
  }
  std::filesystem::remove(path);
}

TEST_F(ControlPlaneTest, CrashDuringExtendNeverExtendsTwice) {
  const std::string path = (std::filesystem::temp_directory_path() / ("infera_cp_" + random_base62(8) + ".db")).string();
  PlatformConfig crashing;
  int hits = 0;
  crashing.fault_hook = [&hits](const std::string& s) {
    if (s == "extend:before-commit" && hits++ == 0) throw std::runtime_error("simulated crash");
  };
  open(path, crashing);
  const std::string id = create(body("nvidia-4090", "SIMPLE-EXTEND", 1, 60));
  cp_->tick();
  const std::string job = claim_ready();
  clock_.advance_s(3300);
  EXPECT_THROW(cp_->tick(), std::runtime_error);
  open(path);
  cp_->tick();
  cp_->tick();
  EXPECT_EQ(cp_->find_job(job)->extend_count, 1);
  EXPECT_EQ(cp_->find_job(job)->timeout_s, 7200);
  EXPECT_EQ(balance().reserved, 2 * k4090);
  std::filesystem::remove(path);
}

TEST_F(ControlPlaneTest, ApiKeysAuthenticateExpireAndRevoke) {
  auto k = cp_->create_api_key(admin_, json{{"name", "ci"}, {"expires_in_days", 30}});
  ASSERT_TRUE(k.ok());
  const std::string secret = (*k)["key"];
  EXPECT_EQ(secret.size(), 44u);
  EXPECT_EQ(secret.substr(0, 4), "inf_");
  EXPECT_EQ((*k)["prefix"], secret.substr(0, 12));
  EXPECT_TRUE(cp_->authenticate("Bearer " + secret).ok());
  EXPECT_EQ(cp_->authenticate("Bearer inf_nope").error().message, "Unauthorized");
  EXPECT_EQ(cp_->authenticate("").error().status, 401);
  EXPECT_EQ(cp_->authenticate("Basic " + secret).error().status, 401);
  ASSERT_TRUE(cp_->update_api_key(admin_, (*k)["id"], json{{"status", "inactive"}}).ok());
  EXPECT_EQ(cp_->authenticate("Bearer " + secret).error().message, "Unauthorized");
  ASSERT_TRUE(cp_->update_api_key(admin_, (*k)["id"], json{{"status", "active"}}).ok());
  clock_.advance_s(30 * 86400);
  EXPECT_EQ(cp_->authenticate("Bearer " + secret).error().message, "API key expired");
  EXPECT_EQ(cp_->create_api_key(admin_, json{{"expires_in_days", 7}}).error().status, 400);
  ListQuery q;
  json list = *cp_->list_api_keys(admin_, q);
  for (const json& key : list["api_keys"]) EXPECT_FALSE(key.contains("key"));
}

TEST_F(ControlPlaneTest, ClaimCodesWorkOnce) {
  auto code = cp_->create_claim_code(admin_, json{{"amount", 2.5}});
  ASSERT_TRUE(code.ok());
  ASSERT_TRUE(cp_->claim(admin_, json{{"code", (*code)["code"]}}).ok());
  EXPECT_EQ(balance().available, 12'500'000);
  EXPECT_EQ(cp_->claim(admin_, json{{"code", (*code)["code"]}}).error().status, 409);
  EXPECT_EQ(cp_->claim(admin_, json{{"code", "nope"}}).error().status, 404);
}


TEST_F(ControlPlaneTest, NodeHeartbeatAssignsReportsAndEndsWhatTheNodeLost) {
  const std::string node = cp_->register_node("n1", {"nvidia-4090"}, json::object(), "127.0.0.1", false, "test");
  const std::string id = create(body("nvidia-4090", "SIMPLE", 1, 60));
  cp_->tick();
  NodeHeartbeat hb;
  hb.node = node;
  hb.free_slots = 2;
  NodeOrders o = cp_->node_heartbeat(hb);
  ASSERT_EQ(o.start.size(), 1u);
  const std::string job = o.start[0].job;
  EXPECT_EQ(o.start[0].job_definition["deployment_id"], id);
  EXPECT_EQ(o.start[0].remaining_s, 3600);
  // The node reports the job READY with its upstream: the gateway can route to it.
  hb.free_slots = 1;
  hb.jobs = {NodeJobReport{job, "READY", "ONLINE", json{{"Qwen1-5b:9000", "127.0.0.1:41000"}}, 0}};
  clock_.advance_s(10);
  o = cp_->node_heartbeat(hb);
  EXPECT_TRUE(o.start.empty());
  EXPECT_EQ(dep(id)["health"], "READY");
  auto route = cp_->resolve_label(deployment_label("Qwen1-5b", 0, deployment_hash(id, admin_.account)));
  ASSERT_TRUE(route.has_value());
  auto ups = cp_->upstreams(*route);
  ASSERT_EQ(ups.size(), 1u);
  EXPECT_EQ(ups[0].port, 41000);
  // A heartbeat without it (the node restarted): the job ends NODE_LOST, billed to its last heartbeat.
  clock_.advance_s(50);
  hb.jobs.clear();
  cp_->node_heartbeat(hb);
  Job j = *cp_->find_job(job);
  EXPECT_EQ(j.end_reason, "NODE_LOST");
  EXPECT_EQ(*j.time_end - *j.time_start, 10);
  EXPECT_EQ(status(id), "STOPPED");
}

TEST_F(ControlPlaneTest, SilentNodeGoesOfflineThenItsJobsAreLost) {
  const std::string node = cp_->register_node("n1", {"nvidia-4090"}, json::object(), "127.0.0.1", false, "test");
  const std::string id = create(body("nvidia-4090", "INFINITE", 1, 60));
  cp_->tick();
  NodeHeartbeat hb;
  hb.node = node;
  hb.free_slots = 1;
  const std::string job = cp_->node_heartbeat(hb).start.at(0).job;
  advance_s(29);
  EXPECT_EQ((*cp_->get_node(admin_, node))["status"], "ONLINE");
  advance_s(1);
  EXPECT_EQ((*cp_->get_node(admin_, node))["status"], "OFFLINE");
  EXPECT_TRUE(has_event(id, "FRPS_TUNNEL_LOST"));
  // Its replica leaves the routing table at once.
  EXPECT_EQ(cp_->find_job(job)->endpoint_status, "OFFLINE");
  EXPECT_TRUE(cp_->upstreams(EndpointRoute{id, "vllm", 9000, std::nullopt}).empty());
  advance_s(59);
  EXPECT_EQ(cp_->find_job(job)->state, "RUNNING");
  advance_s(1);
  EXPECT_EQ(cp_->find_job(job)->end_reason, "NODE_LOST");
  EXPECT_EQ(*cp_->find_job(job)->time_end - *cp_->find_job(job)->time_start, 0);  // billed to the last heartbeat
  advance_s(1);
  EXPECT_EQ(active(id), 1);  // INFINITE lists a replacement
}

TEST_F(ControlPlaneTest, InfiniteReplacesAReplicaFailingItsHealthChecks) {
  const std::string node = cp_->register_node("n1", {"nvidia-4090"}, json::object(), "127.0.0.1", false, "test");
  const std::string id = create(body("nvidia-4090", "INFINITE", 1, 60));
  cp_->tick();
  NodeHeartbeat hb;
  hb.node = node;
  hb.free_slots = 1;
  const std::string job = cp_->node_heartbeat(hb).start.at(0).job;
  hb.free_slots = 0;
  hb.jobs = {NodeJobReport{job, "READY", "ONLINE", json::object(), 0}};
  cp_->node_heartbeat(hb);
  hb.jobs = {NodeJobReport{job, "UNHEALTHY", "OFFLINE", json::object(), 2}};
  EXPECT_TRUE(cp_->node_heartbeat(hb).stop.empty());
  hb.jobs = {NodeJobReport{job, "UNHEALTHY", "OFFLINE", json::object(), 3}};
  NodeOrders o = cp_->node_heartbeat(hb);
  ASSERT_EQ(o.stop.size(), 1u);
  ASSERT_TRUE(cp_->report_job_exit(job, 143).is_ok());
  EXPECT_EQ(cp_->find_job(job)->end_reason, "FAILED");
  EXPECT_TRUE(has_event(id, "JOB_UNHEALTHY"));
  advance_s(1);
  EXPECT_EQ(active(id), 1);
}

}  // namespace
}  // namespace infera::platform
