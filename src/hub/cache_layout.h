// The Hugging Face cache layout, shared with huggingface_hub and every tool built on it:
//
//   {cache}/models--{org}--{name}/blobs/{etag}                 file contents (sha256 for LFS, git sha1 otherwise)
//   {cache}/models--{org}--{name}/snapshots/{commit}/{path}    relative symlinks to ../../blobs/{etag}
//   {cache}/models--{org}--{name}/refs/{revision}              the commit a branch or tag pointed to
//   {cache}/.locks/models--{org}--{name}/{etag}.lock           held (flock) while a blob is written
//
// A blob becomes visible only complete and verified (rename of blobs/{etag}.incomplete).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace infera::hub {

// "org/name" -> "models--org--name".
std::string repo_folder_name(const std::string& repo);

struct RepoCache {
  std::string cache_dir, repo;
  std::string root() const;                                   // {cache}/models--org--name
  std::string blob_path(const std::string& etag) const;
  std::string snapshot_dir(const std::string& commit) const;
  std::string lock_path(const std::string& etag) const;
  std::string ref_path(const std::string& revision) const;
};

// True for a 40-hex-digit commit hash.
bool is_commit_hash(const std::string& s);

// The commit refs/{revision} names, if any.
std::optional<std::string> read_ref(const RepoCache& c, const std::string& revision);

// Writes refs/{revision} atomically (no-op when revision is the commit itself).
Status write_ref(const RepoCache& c, const std::string& revision, const std::string& commit);

// snapshots/{commit}/{path} -> ../../blobs/{etag} (relative, as many ../ as path has folders),
// replacing whatever was there atomically.
Status link_snapshot_file(const RepoCache& c, const std::string& commit, const std::string& path,
                          const std::string& etag);

// The files of a snapshot whose links resolve (recursive, relative paths, sorted).
std::vector<std::string> list_snapshot(const RepoCache& c, const std::string& commit);

// Bytes free for an unprivileged writer at `dir` (statvfs f_bavail * f_frsize).
Result<uint64_t> free_bytes(const std::string& dir);

}  // namespace infera::hub
