#include "hub/hub_http.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace infera::hub {

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

bool env_true(const char* name) {
  std::string v = env(name);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  return v == "1" || v == "true" || v == "yes" || v == "on";
}

size_t collect_body(char* data, size_t size, size_t n, void* user) {
  auto* out = static_cast<std::string*>(user);
  if (out->size() < (64u << 20)) out->append(data, size * n);  // repository info stays far below 64 MB
  return size * n;
}

size_t collect_header(char* data, size_t size, size_t n, void* user) {
  auto* h = static_cast<std::map<std::string, std::string>*>(user);
  std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {  // a new response (after a redirect): keep only the last one's headers
    h->clear();
    return size * n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return size * n;
  std::string name = line.substr(0, colon), value = line.substr(colon + 1);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.pop_back();
  (*h)[name] = value;
  return size * n;
}

int abort_if_cancelled(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* cancel = static_cast<const std::atomic<bool>*>(user);
  return cancel && cancel->load() ? 1 : 0;
}

}  // namespace

std::string default_cache_dir() {
  if (std::string c = env("HF_HUB_CACHE"); !c.empty()) return c;
  if (std::string h = env("HF_HOME"); !h.empty()) return h + "/hub";
  if (std::string h = env("HOME"); !h.empty()) return h + "/.cache/huggingface/hub";
  return ".cache/huggingface/hub";
}

HubConfig HubConfig::from_env() {
  HubConfig c;
  if (std::string e = env("HF_ENDPOINT"); !e.empty()) c.endpoint = e;
  while (!c.endpoint.empty() && c.endpoint.back() == '/') c.endpoint.pop_back();
  c.token = env("HF_TOKEN");
  if (c.token.empty()) c.token = env("HUGGING_FACE_HUB_TOKEN");
  c.offline = env_true("HF_HUB_OFFLINE");
  c.cache_dir = default_cache_dir();
  return c;
}

bool is_repo_id(const std::string& s) {
  const size_t slash = s.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= s.size()) return false;
  if (s.find('/', slash + 1) != std::string::npos || s.find("..") != std::string::npos) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/')) return false;
  return s.front() != '.' && s.front() != '-' && s.size() <= 200;
}

std::string url_encode(const std::string& s, bool keep_slash) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

bool retryable_status(long status) {
  return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

std::chrono::milliseconds retry_delay(const HubConfig& cfg, int attempt, const std::string& retry_after) {
  if (!retry_after.empty() && std::all_of(retry_after.begin(), retry_after.end(), ::isdigit) && retry_after.size() < 7)
    return std::min(std::chrono::milliseconds(std::stoll(retry_after) * 1000), std::chrono::milliseconds(600'000));
  int64_t ms = cfg.backoff_base.count();
  for (int i = 1; i < attempt && ms < cfg.backoff_cap.count(); ++i) ms *= 2;
  return std::chrono::milliseconds(std::min<int64_t>(ms, cfg.backoff_cap.count()));
}

bool sleep_unless_cancelled(std::chrono::milliseconds d, const std::atomic<bool>* cancel) {
  const auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
    if (cancel && cancel->load()) return false;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(50), end - std::chrono::steady_clock::now()));
  }
  return !(cancel && cancel->load());
}

Result<HttpReply> get_with_retries(const HubConfig& cfg, const std::string& url, const MessageFn& on_message,
                                   const std::atomic<bool>* cancel) {
  static const bool init = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  if (!init) return error("libcurl failed to initialise");
  for (int attempt = 1;; ++attempt) {
    CURL* c = curl_easy_init();
    if (!c) return error("libcurl failed to initialise");
    HttpReply reply;
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, "Accept: application/json");
    if (!cfg.token.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + cfg.token).c_str());
    char err[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "infera/0.1");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &reply.headers);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, abort_if_cancelled);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(cancel));
    const CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply.status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    if (cancel && cancel->load()) return error("cancelled");
    std::string why;
    if (rc != CURLE_OK) {
      why = fmt::format("{} ({})", err[0] ? err : curl_easy_strerror(rc), url);
    } else if (retryable_status(reply.status)) {
      why = fmt::format("HTTP {} from {}", reply.status, url);
    } else {
      return reply;
    }
    if (attempt >= cfg.max_attempts) return error("{}; gave up after {} attempts", why, attempt);
    const auto delay = retry_delay(cfg, attempt, reply.headers.count("retry-after") ? reply.headers["retry-after"] : "");
    if (on_message)
      on_message(fmt::format("{}; retrying in {:.1f} s (attempt {} of {})", why, delay.count() / 1000.0, attempt + 1,
                             cfg.max_attempts));
    if (!sleep_unless_cancelled(delay, cancel)) return error("cancelled");
  }
}

std::string describe_http_error(long status, const std::string& what, const HubConfig& cfg,
                                const std::string& error_code) {
  if (status == 401 || status == 403) {
    if (error_code == "RepoNotFound")
      return fmt::format("{} was not found on {} (HTTP {}): check the name; a private repository needs HF_TOKEN",
                         what, cfg.endpoint, status);
    if (cfg.token.empty())
      return fmt::format("{} needs authorisation (HTTP {}): it is gated or private; accept its terms on the Hub and "
                         "set HF_TOKEN to an access token", what, status);
    return fmt::format("{} refused the token in HF_TOKEN (HTTP {}): the repository is gated or private and this "
                       "token has no access (accept its terms on the Hub, or use a token with read access)",
                       what, status);
  }
  if (status == 404) {
    if (error_code == "RevisionNotFound") return fmt::format("{}: revision not found on {} (HTTP 404)", what, cfg.endpoint);
    if (error_code == "EntryNotFound") return fmt::format("{}: file not found on {} (HTTP 404)", what, cfg.endpoint);
    return fmt::format("{} was not found on {} (HTTP 404)", what, cfg.endpoint);
  }
  return fmt::format("{}: HTTP {} from {}", what, status, cfg.endpoint);
}

Result<RepoInfo> fetch_repo_info(const HubConfig& cfg, const std::string& repo, const std::string& revision,
                                 const MessageFn& on_message, const std::atomic<bool>* cancel) {
  const std::string url = fmt::format("{}/api/models/{}/revision/{}?blobs=true", cfg.endpoint, repo,
                                      url_encode(revision, false));
  INFERA_ASSIGN_OR_RETURN(HttpReply r, get_with_retries(cfg, url, on_message, cancel));
  const std::string what = fmt::format("repository {} (revision {})", repo, revision);
  if (r.status != 200) {
    const auto code = r.headers.find("x-error-code");
    return Status::error(describe_http_error(r.status, what, cfg, code == r.headers.end() ? "" : code->second));
  }
  RepoInfo info;
  try {
    const nlohmann::json j = nlohmann::json::parse(r.body);
    info.commit = j.at("sha").get<std::string>();
    for (const auto& s : j.at("siblings")) {
      RepoFile f;
      f.path = s.at("rfilename").get<std::string>();
      if (s.contains("size") && s["size"].is_number_unsigned()) f.size = s["size"].get<uint64_t>();
      if (s.contains("blobId") && s["blobId"].is_string()) f.blob_id = s["blobId"].get<std::string>();
      if (s.contains("lfs") && s["lfs"].is_object()) {
        f.sha256 = s["lfs"].value("sha256", "");
        if (s["lfs"].contains("size")) f.size = s["lfs"]["size"].get<uint64_t>();
      }
      info.files.push_back(std::move(f));
    }
  } catch (const std::exception& e) {
    return error("{}: unexpected answer from {}: {}", what, url, e.what());
  }
  auto hex = [](const std::string& s, size_t n) {
    return s.size() == n && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
  };
  if (!hex(info.commit, 40)) return error("{}: the Hub answered an invalid commit hash '{}'", what, info.commit);
  for (const RepoFile& f : info.files) {
    if (f.path.empty() || f.path.front() == '/' || f.path.find("..") != std::string::npos)
      return error("{}: unsafe file name '{}' in the file list", what, f.path);
    if (!(f.lfs() ? hex(f.sha256, 64) : hex(f.blob_id, 40)))
      return error("{}: the file list has no content hash for {} (the endpoint must answer ?blobs=true)", what, f.path);
  }
  return info;
}

}  // namespace infera::hub
