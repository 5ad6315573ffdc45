#include "hub/pull.h"

#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>

#include <fmt/format.h>

#include "hub/cache_layout.h"

namespace infera::hub {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string local_meta_dir(const std::string& local_dir) {
  return (fs::path(local_dir) / ".cache" / "huggingface" / "download").string();
}

// A --local-dir file is current when its metadata (huggingface_hub's format: commit, etag, time)
// names the same etag and the size matches.
bool local_file_current(const std::string& local_dir, const RepoFile& f) {
  std::error_code ec;
  const fs::path file = fs::path(local_dir) / f.path;
  if (!fs::is_regular_file(file, ec) || fs::file_size(file, ec) != f.size) return false;
  std::ifstream in(fs::path(local_meta_dir(local_dir)) / (f.path + ".metadata"));
  std::string commit, etag;
  return in && std::getline(in, commit) && std::getline(in, etag) && etag == f.etag();
}

Status write_local_meta(const std::string& local_dir, const RepoFile& f, const std::string& commit) {
  const fs::path meta = fs::path(local_meta_dir(local_dir)) / (f.path + ".metadata");
  std::error_code ec;
  fs::create_directories(meta.parent_path(), ec);
  std::ofstream out(meta, std::ios::trunc);
  out << commit << '\n'
      << f.etag() << '\n'
      << std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count() << '\n';
  if (!out) return error("cannot write {}", meta.string());
  return Status::ok();
}

// Progress over all the files of a pull: totals, a rate over the last seconds, rate-limited calls.
class ProgressTracker {
 public:
  ProgressTracker(const PullCallbacks& cb, uint64_t total, int files) : cb_(cb) {
    p_.total = total;
    p_.files = files;
  }
  void start_file(const std::string& name, int index) {
    p_.file = name;
    p_.file_index = index;
  }
  void bytes(uint64_t file_done) {
    p_.done = base_ + file_done;
    const auto now = Clock::now();
    samples_.emplace_back(now, p_.done);
    while (samples_.size() > 2 && now - samples_.front().first > std::chrono::seconds(5)) samples_.pop_front();
    if (now - last_call_ < std::chrono::milliseconds(100)) return;
    last_call_ = now;
    emit();
  }
  void end_file(uint64_t size) {
    base_ += size;
    p_.done = base_;
  }
  void finish() {
    p_.finished = true;
    const double secs = std::chrono::duration<double>(Clock::now() - started_).count();
    p_.bytes_per_s = secs > 0 ? static_cast<double>(p_.total) / secs : 0;
    if (cb_.progress) cb_.progress(p_);
  }

 private:
  void emit() {
    if (samples_.size() >= 2) {
      const double dt = std::chrono::duration<double>(samples_.back().first - samples_.front().first).count();
      if (dt > 0.05) p_.bytes_per_s = static_cast<double>(samples_.back().second - samples_.front().second) / dt;
    }
    if (cb_.progress) cb_.progress(p_);
  }

  const PullCallbacks& cb_;
  PullProgress p_;
  uint64_t base_ = 0;
  std::deque<std::pair<Clock::time_point, uint64_t>> samples_;
  Clock::time_point last_call_{}, started_ = Clock::now();
};

Result<PullResult> pull_offline(const HubConfig& cfg, const PullOptions& opt, const PullCallbacks& cb) {
  const RepoCache cache{cfg.cache_dir, opt.repo};
  const auto commit = read_ref(cache, opt.revision);
  std::vector<std::string> names;
  if (commit) names = list_snapshot(cache, *commit);
  if (!commit || names.empty())
    return error("HF_HUB_OFFLINE is set and {} (revision {}) is not in the Hugging Face cache at {}; pull it while "
                 "online (`infera pull {}`) or unset HF_HUB_OFFLINE",
                 opt.repo, opt.revision, cfg.cache_dir, opt.repo);
  auto picked = select_files(names, opt.selection, opt.repo);
  if (!picked)
    return error("HF_HUB_OFFLINE is set and the cached snapshot of {} at {} ({}) lacks the requested files: {}",
                 opt.repo, commit->substr(0, 12), cache.snapshot_dir(*commit), picked.error());
  PullResult r;
  r.commit = *commit;
  r.files = *picked;
  r.folder = cache.snapshot_dir(*commit);
  std::error_code ec;
  for (const std::string& f : r.files) r.reused_bytes += fs::file_size(fs::path(r.folder) / f, ec);
  if (!opt.local_dir.empty()) {
    for (const std::string& f : r.files) {
      const fs::path dst = fs::path(opt.local_dir) / f;
      fs::create_directories(dst.parent_path(), ec);
      fs::copy_file(fs::path(r.folder) / f, dst, fs::copy_options::overwrite_existing, ec);
      if (ec) return error("cannot copy {} to {}: {}", f, dst.string(), ec.message());
    }
    r.folder = opt.local_dir;
  }
  if (cb.message)
    cb.message(fmt::format("HF_HUB_OFFLINE: using the cached snapshot {} of {} ({} files)", commit->substr(0, 12),
                           opt.repo, r.files.size()));
  r.model_path = model_entry(r.folder, r.files);
  return r;
}

}  // namespace

Result<PullResult> pull(const HubConfig& cfg, const PullOptions& opt, const PullCallbacks& cb,
                        const std::atomic<bool>* cancel) {
  if (!is_repo_id(opt.repo)) return error("'{}' is not a Hub repository id (org/name)", opt.repo);
  if (opt.revision.empty() || opt.revision.find("..") != std::string::npos || opt.revision.front() == '/')
    return error("invalid revision '{}'", opt.revision);
  if (cfg.offline) return pull_offline(cfg, opt, cb);
  const RepoCache cache{cfg.cache_dir, opt.repo};
  const bool local = !opt.local_dir.empty();

  INFERA_ASSIGN_OR_RETURN(RepoInfo info, fetch_repo_info(cfg, opt.repo, opt.revision, cb.message, cancel));
  std::vector<std::string> names;
  std::map<std::string, const RepoFile*> by_name;
  for (const RepoFile& f : info.files) {
    names.push_back(f.path);
    by_name[f.path] = &f;
  }
  INFERA_ASSIGN_OR_RETURN(std::vector<std::string> picked, select_files(names, opt.selection, opt.repo));

  PullResult r;
  r.commit = info.commit;
  r.files = picked;
  r.folder = local ? opt.local_dir : cache.snapshot_dir(info.commit);
  std::vector<const RepoFile*> fetch;
  uint64_t fetch_bytes = 0, partial_bytes = 0;
  std::error_code ec;
  for (const std::string& name : picked) {
    const RepoFile& f = *by_name.at(name);
    if (local) {
      if (local_file_current(opt.local_dir, f)) {
        r.reused_bytes += f.size;
        continue;
      }
    } else {
      const fs::path link = fs::path(cache.snapshot_dir(info.commit)) / f.path;
      if (fs::is_regular_file(link, ec) && fs::file_size(link, ec) == f.size) {
        r.reused_bytes += f.size;
        continue;
      }
      const std::string blob = cache.blob_path(f.etag());
      if (fs::is_regular_file(blob, ec) && fs::file_size(blob, ec) == f.size) {  // fetched for another revision
        INFERA_RETURN_IF_ERROR(link_snapshot_file(cache, info.commit, f.path, f.etag()));
        r.reused_bytes += f.size;
        continue;
      }
    }
    fetch.push_back(&f);
    fetch_bytes += f.size;
  }
  const std::string blob_dir = local ? local_meta_dir(opt.local_dir) : cache.root() + "/blobs";
  fs::create_directories(blob_dir, ec);
  if (ec) return error("cannot create {}: {}", blob_dir, ec.message());
  for (const RepoFile* f : fetch) {
    const std::string part = (local ? (fs::path(opt.local_dir) / f->path).string() : cache.blob_path(f->etag())) +
                             ".incomplete";
    if (fs::is_regular_file(part, ec)) partial_bytes += std::min<uint64_t>(fs::file_size(part, ec), f->size);
  }
  if (cb.message)
    cb.message(fmt::format("{} at {} (revision {}): {} file{}, {} to fetch{}", opt.repo, info.commit.substr(0, 12),
                           opt.revision, picked.size(), picked.size() == 1 ? "" : "s", format_bytes(fetch_bytes),
                           r.reused_bytes ? fmt::format(", {} already {}", format_bytes(r.reused_bytes),
                                                        local ? "in " + opt.local_dir : "in the cache")
                                          : std::string()));
  const uint64_t need = fetch_bytes - std::min(fetch_bytes, partial_bytes);
  INFERA_ASSIGN_OR_RETURN(uint64_t free, free_bytes(blob_dir));
  if (need > free)
    return error("not enough disk space in {}: the pull needs {} more, {} is free", blob_dir, format_bytes(need),
                 format_bytes(free));

  ProgressTracker progress(cb, fetch_bytes, static_cast<int>(fetch.size()));
  int index = 0;
  for (const RepoFile* f : fetch) {
    if (cancel && cancel->load()) return error("cancelled");
    progress.start_file(f->path, ++index);
    BlobRequest req;
    req.url = fmt::format("{}/{}/resolve/{}/{}", cfg.endpoint, opt.repo, info.commit, url_encode(f->path, true));
    req.what = fmt::format("{} of {}", f->path, opt.repo);
    req.size = f->size;
    if (f->lfs()) {
      req.sha256 = f->sha256;
    } else {
      req.git_sha1 = f->blob_id;
    }
    if (local) {
      req.final_path = (fs::path(opt.local_dir) / f->path).string();
      req.lock_path = (fs::path(local_meta_dir(opt.local_dir)) / (f->path + ".lock")).string();
    } else {
      req.final_path = cache.blob_path(f->etag());
      req.lock_path = cache.lock_path(f->etag());
    }
    INFERA_ASSIGN_OR_RETURN(BlobOutcome out, download_blob(cfg, req, opt.tuning,
                                                           [&](uint64_t done) { progress.bytes(done); }, cb.message,
                                                           cancel));
    progress.end_file(f->size);
    r.fetched_bytes += out.fetched;
    if (local) {
      INFERA_RETURN_IF_ERROR(write_local_meta(opt.local_dir, *f, info.commit));
    } else {
      INFERA_RETURN_IF_ERROR(link_snapshot_file(cache, info.commit, f->path, f->etag()));
    }
  }
  if (!fetch.empty()) progress.finish();
  if (!local) INFERA_RETURN_IF_ERROR(write_ref(cache, opt.revision, info.commit));
  r.model_path = model_entry(r.folder, r.files);
  return r;
}

}  // namespace infera::hub
