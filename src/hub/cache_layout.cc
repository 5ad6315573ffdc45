#include "hub/cache_layout.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

namespace infera::hub {

namespace fs = std::filesystem;

std::string repo_folder_name(const std::string& repo) {
  std::string out = "models--" + repo;
  for (size_t p = 0; (p = out.find('/', p)) != std::string::npos;) out.replace(p, 1, "--");
  return out;
}

std::string RepoCache::root() const { return (fs::path(cache_dir) / repo_folder_name(repo)).string(); }
std::string RepoCache::blob_path(const std::string& etag) const { return root() + "/blobs/" + etag; }
std::string RepoCache::snapshot_dir(const std::string& commit) const { return root() + "/snapshots/" + commit; }
std::string RepoCache::lock_path(const std::string& etag) const {
  return (fs::path(cache_dir) / ".locks" / repo_folder_name(repo) / (etag + ".lock")).string();
}
std::string RepoCache::ref_path(const std::string& revision) const { return root() + "/refs/" + revision; }

bool is_commit_hash(const std::string& s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

std::optional<std::string> read_ref(const RepoCache& c, const std::string& revision) {
  if (is_commit_hash(revision)) return revision;
  std::ifstream in(c.ref_path(revision));
  std::string commit;
  if (!in || !std::getline(in, commit)) return std::nullopt;
  while (!commit.empty() && std::isspace(static_cast<unsigned char>(commit.back()))) commit.pop_back();
  if (!is_commit_hash(commit)) return std::nullopt;
  return commit;
}

Status write_ref(const RepoCache& c, const std::string& revision, const std::string& commit) {
  if (revision == commit) return Status::ok();
  const fs::path path = c.ref_path(revision);
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return error("cannot create {}: {}", path.parent_path().string(), ec.message());
  const fs::path tmp = path.string() + fmt::format(".tmp{}", ::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << commit;  // no newline, as huggingface_hub writes it
    if (!out) return error("cannot write {}", tmp.string());
  }
  fs::rename(tmp, path, ec);
  if (ec) return error("cannot write {}: {}", path.string(), ec.message());
  return Status::ok();
}

Status link_snapshot_file(const RepoCache& c, const std::string& commit, const std::string& path,
                          const std::string& etag) {
  const fs::path link = fs::path(c.snapshot_dir(commit)) / path;
  std::error_code ec;
  fs::create_directories(link.parent_path(), ec);
  if (ec) return error("cannot create {}: {}", link.parent_path().string(), ec.message());
  // snapshots/<commit>/<a>/<b>/file -> ../../../../blobs/<etag>
  std::string target = "../../";
  for (char ch : path)
    if (ch == '/') target += "../";
  target += "blobs/" + etag;
  const fs::path tmp = link.string() + fmt::format(".tmp{}", ::getpid());
  fs::remove(tmp, ec);
  fs::create_symlink(target, tmp, ec);
  if (ec) return error("cannot create the link {}: {}", tmp.string(), ec.message());
  fs::rename(tmp, link, ec);
  if (ec) return error("cannot create the link {}: {}", link.string(), ec.message());
  return Status::ok();
}

std::vector<std::string> list_snapshot(const RepoCache& c, const std::string& commit) {
  std::vector<std::string> out;
  const fs::path dir = c.snapshot_dir(commit);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (fs::is_regular_file(it->path(), ec))  // follows the link: a dangling one is not a file
      out.push_back(it->path().lexically_relative(dir).generic_string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<uint64_t> free_bytes(const std::string& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return error("cannot read the free space of {}", dir);
  return static_cast<uint64_t>(st.f_bavail) * static_cast<uint64_t>(st.f_frsize);
}

}  // namespace infera::hub
