// `infera pull` and a node's download of a missing model: a repository's files at a revision into
// the Hugging Face cache (or a plain folder), reusing whatever the cache already holds.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "hub/blob_download.h"
#include "hub/file_select.h"
#include "hub/hub_http.h"

namespace infera::hub {

struct PullOptions {
  std::string repo;                  // "org/name"
  std::string revision = "main";     // branch, tag or commit
  Selection selection;
  std::string local_dir;             // non-empty: plain files there instead of cache links
  DownloadTuning tuning;
};

struct PullProgress {
  std::string file;                  // the file being fetched
  uint64_t done = 0, total = 0;      // bytes of the files to fetch (cached ones excluded)
  double bytes_per_s = 0;            // over the last few seconds
  int file_index = 0, files = 0;     // 1-based index among the files to fetch
  bool finished = false;
};

struct PullCallbacks {
  std::function<void(const std::string&)> message;        // one line: plan, reuse, retries, resume
  std::function<void(const PullProgress&)> progress;      // every ~100 ms while bytes move, and at the end
};

struct PullResult {
  std::string commit;
  std::string folder;                // snapshots/<commit> or the local dir
  std::string model_path;            // what `--model` takes (the folder, or a GGUF's first part)
  std::vector<std::string> files;
  uint64_t fetched_bytes = 0, reused_bytes = 0;
};

Result<PullResult> pull(const HubConfig& cfg, const PullOptions& opt, const PullCallbacks& cb,
                        const std::atomic<bool>* cancel = nullptr);

// "1.23 GB", "512 MB", "17 KB", "5 B" (decimal units, as the Hub shows sizes).
std::string format_bytes(uint64_t n);

// "model.safetensors  1.2 GB / 3.4 GB (35%)  210 MB/s  ETA 11 s" for logs and plain terminals.
std::string format_progress_line(const PullProgress& p);

}  // namespace infera::hub
