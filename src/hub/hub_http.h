// HTTP to the Hugging Face Hub (libcurl): the endpoint and token from the environment, requests with
// retries (exponential backoff on 429/5xx and connection errors, honouring Retry-After), and the
// repository-info call of the Hub API.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace infera::hub {

// Where and how to reach the Hub. from_env() reads HF_ENDPOINT (default https://huggingface.co),
// HF_TOKEN (or HUGGING_FACE_HUB_TOKEN), HF_HUB_OFFLINE and the cache folder (HF_HUB_CACHE,
// HF_HOME/hub, ~/.cache/huggingface/hub).
struct HubConfig {
  std::string endpoint = "https://huggingface.co";
  std::string token;
  bool offline = false;
  std::string cache_dir;
  int max_attempts = 8;                                 // per request, counted from the last progress
  std::chrono::milliseconds backoff_base{500};          // 0.5 s, 1 s, 2 s, ... capped at backoff_cap
  std::chrono::milliseconds backoff_cap{30000};
  static HubConfig from_env();
};

// $HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub.
std::string default_cache_dir();

// True for "org/name" (one slash, no "..", no leading slash, Hub-legal characters).
bool is_repo_id(const std::string& s);

// Percent-encodes a path or a revision for a URL ('/' kept in paths, encoded in revisions).
std::string url_encode(const std::string& s, bool keep_slash);

struct HttpReply {
  long status = 0;
  std::map<std::string, std::string> headers;  // of the final response, lower-case names
  std::string body;
};

// Messages the retry loop reports ("HTTP 503 from ...; retrying in 1.0 s (attempt 2 of 8)").
using MessageFn = std::function<void(const std::string&)>;

// The delay before retry number `attempt` (1-based): Retry-After when the server sent seconds,
// else base * 2^(attempt-1), capped.
std::chrono::milliseconds retry_delay(const HubConfig& cfg, int attempt, const std::string& retry_after);

// True for statuses worth retrying: 408, 429, 500, 502, 503, 504.
bool retryable_status(long status);

// Sleeps `d` in short steps; false when *cancel became true.
bool sleep_unless_cancelled(std::chrono::milliseconds d, const std::atomic<bool>* cancel);

// A GET (redirects followed) with retries; the body is kept. 4xx other than 408/429 are returned
// as replies, not errors, so callers can word them.
Result<HttpReply> get_with_retries(const HubConfig& cfg, const std::string& url, const MessageFn& on_message,
                                   const std::atomic<bool>* cancel);

struct RepoFile {
  std::string path;      // rfilename
  uint64_t size = 0;
  std::string blob_id;   // git blob sha1 (the ETag of a non-LFS file)
  std::string sha256;    // LFS files: the content hash (their ETag)
  bool lfs() const { return !sha256.empty(); }
  const std::string& etag() const { return lfs() ? sha256 : blob_id; }
};

struct RepoInfo {
  std::string commit;              // "sha"
  std::vector<RepoFile> files;     // "siblings"
};

// GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true. 401/403 name gated/private repos and
// HF_TOKEN; 404 names the repository or revision.
Result<RepoInfo> fetch_repo_info(const HubConfig& cfg, const std::string& repo, const std::string& revision,
                                 const MessageFn& on_message, const std::atomic<bool>* cancel);

// Wording of an HTTP failure of the Hub for `what` ("repository org/name", "file x of org/name").
std::string describe_http_error(long status, const std::string& what, const HubConfig& cfg,
                                const std::string& error_code);

}  // namespace infera::hub
