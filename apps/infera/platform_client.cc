#include "platform_client.h"

#include <curl/curl.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace infera::cli {

std::string credentials_path() {
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) return std::string(x) + "/infera/credentials.json";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.config/infera/credentials.json";
  return ".infera-credentials.json";
}

PlatformTarget resolve_target(PlatformTarget t) {
  if (t.url.empty())
    if (const char* u = std::getenv("INFERA_PLATFORM_URL"); u && *u) t.url = u;
  if (t.api_key.empty())
    if (const char* k = std::getenv("INFERA_API_KEY"); k && *k) t.api_key = k;
  if (t.url.empty() || t.api_key.empty()) {
    std::ifstream f(credentials_path());
    if (f) {
      try {
        nlohmann::json j = nlohmann::json::parse(f);
        if (t.url.empty() && j.contains("platform") && j["platform"].is_string()) t.url = j["platform"];
        if (t.api_key.empty() && j.contains("api_key") && j["api_key"].is_string()) t.api_key = j["api_key"];
      } catch (const std::exception&) {
      }
    }
  }
  if (t.url.empty()) t.url = "http://127.0.0.1:8080";
  while (!t.url.empty() && t.url.back() == '/') t.url.pop_back();
  return t;
}

namespace {
size_t collect(char* p, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}
}  // namespace

Result<ApiResponse> call_api(const PlatformTarget& t, const std::string& method, const std::string& path,
                             const nlohmann::json& body) {
  static const bool init = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  if (!init) return error("libcurl failed to initialise");
  CURL* c = curl_easy_init();
  if (!c) return error("libcurl failed to initialise");
  std::string url = t.url + "/api" + path, text, payload;
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/json");
  if (!t.api_key.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + t.api_key).c_str());
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (!body.is_null()) {
    payload = body.dump();
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &text);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK)
    return error("cannot reach the platform at {}: {} (is `infera platform` running? set --platform or INFERA_PLATFORM_URL)",
                 t.url, curl_easy_strerror(rc));
  ApiResponse r;
  r.status = status;
  try {
    r.body = text.empty() ? nlohmann::json(nullptr) : nlohmann::json::parse(text);
  } catch (const std::exception&) {
    r.body = text;
  }
  return r;
}

namespace {
struct SseState {
  std::string buf, id, event, data;
  const std::function<bool(const std::string&, const std::string&, const std::string&)>* on_event;
  bool stop = false;
};

size_t sse_write(char* p, size_t size, size_t n, void* user) {
  auto* st = static_cast<SseState*>(user);
  st->buf.append(p, size * n);
  size_t nl;
  while ((nl = st->buf.find('\n')) != std::string::npos) {
    std::string line = st->buf.substr(0, nl);
    st->buf.erase(0, nl + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) {
      if (!st->data.empty() || !st->event.empty()) {
        if (!(*st->on_event)(st->id, st->event, st->data)) {
          st->stop = true;
          return 0;  // aborts the transfer
        }
      }
      st->event.clear();
      st->data.clear();
    } else if (line.rfind("data:", 0) == 0) {
      st->data += line.substr(line.size() > 5 && line[5] == ' ' ? 6 : 5);
    } else if (line.rfind("id:", 0) == 0) {
      st->id = line.substr(line.size() > 3 && line[3] == ' ' ? 4 : 3);
    } else if (line.rfind("event:", 0) == 0) {
      st->event = line.substr(line.size() > 6 && line[6] == ' ' ? 7 : 6);
    }
  }
  return size * n;
}
}  // namespace

Status follow_sse(const PlatformTarget& t, const std::string& path,
                  const std::function<bool(const std::string&, const std::string&, const std::string&)>& on_event) {
  CURL* c = curl_easy_init();
  if (!c) return error("libcurl failed to initialise");
  SseState st;
  st.on_event = &on_event;
  std::string url = t.url + "/api" + path;
  curl_slist* headers = curl_slist_append(nullptr, "Accept: text/event-stream");
  if (!t.api_key.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + t.api_key).c_str());
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sse_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &st);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  if (st.stop) return Status::ok();
  if (rc != CURLE_OK) return error("stream from {} ended: {}", t.url, curl_easy_strerror(rc));
  if (status != 200) return error("platform answered HTTP {}", status);
  return Status::ok();
}

int exit_code_for(long status) {
  if (status >= 200 && status < 300) return 0;
  if (status == 404) return 3;
  if (status == 409) return 4;
  if (status == 402) return 5;
  return 1;
}

}  // namespace infera::cli
