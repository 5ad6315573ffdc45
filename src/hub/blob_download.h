// One file from the Hub into place, resumable and verified:
//
//   lock  {lock_path} (flock): a second pull of the same blob waits, then finds it done
//   write {final}.incomplete, in chunks of `chunk_bytes` fetched with Range requests over up to
//         `connections` connections; {final}.incomplete.ranges records what each chunk holds, so a
//         cut, a crash or kill -9 resumes where the bytes end (a bare .incomplete left by another
//         tool counts as its size in contiguous bytes)
//   hash  sha256 (LFS) or the git blob sha1, computed over the growing contiguous prefix while the
//         download runs; a mismatch deletes the partial file and fetches once more, then fails
//   land  fdatasync, rename to {final}
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "base/status.h"
#include "hub/hub_http.h"

namespace infera::hub {

struct BlobRequest {
  std::string url;          // {endpoint}/{repo}/resolve/{commit}/{path}
  std::string what;         // "config.json of org/name", for messages
  uint64_t size = 0;
  std::string sha256;       // LFS content hash, or
  std::string git_sha1;     // the git blob id of a small file
  std::string final_path;   // where the verified file lands
  std::string lock_path;
};

struct DownloadTuning {
  int connections = 4;                  // parallel Range connections for one large file
  uint64_t chunk_bytes = 16ull << 20;   // unit of work and of resume bookkeeping
};

// Called from the downloading thread with the bytes of this blob now on disk (including resumed ones).
using BytesFn = std::function<void(uint64_t done)>;

struct BlobOutcome {
  uint64_t fetched = 0;   // bytes transferred by this call
  uint64_t resumed = 0;   // bytes found on disk from an earlier attempt
  bool by_other = false;  // another process finished it while we waited for the lock
};

Result<BlobOutcome> download_blob(const HubConfig& cfg, const BlobRequest& req, const DownloadTuning& tuning,
                                  const BytesFn& on_bytes, const MessageFn& on_message,
                                  const std::atomic<bool>* cancel);

}  // namespace infera::hub
