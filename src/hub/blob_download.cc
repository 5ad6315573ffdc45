#include "hub/blob_download.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include <fmt/format.h>

namespace infera::hub {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_;
};

// flock on the blob's lock file, waiting (cancellably) while another process holds it.
Result<std::unique_ptr<Fd>> lock_blob(const BlobRequest& req, const MessageFn& on_message,
                                      const std::atomic<bool>* cancel, bool* waited) {
  std::error_code ec;
  fs::create_directories(fs::path(req.lock_path).parent_path(), ec);
  auto fd = std::make_unique<Fd>(::open(req.lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (fd->get() < 0) return error("cannot open the lock file {}: {}", req.lock_path, std::strerror(errno));
  *waited = false;
  while (::flock(fd->get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) return error("cannot lock {}: {}", req.lock_path, std::strerror(errno));
    if (!*waited && on_message) on_message(fmt::format("waiting for another download of {}", req.what));
    *waited = true;
    if (!sleep_unless_cancelled(std::chrono::milliseconds(100), cancel)) return error("cancelled");
  }
  return fd;
}

Status pwrite_all(int fd, const char* p, size_t n, uint64_t off, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      return error("cannot write {}: {}", path, std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
    off += static_cast<uint64_t>(w);
  }
  return Status::ok();
}

// Chunk bookkeeping shared by the connections and the coordinating (hashing) thread.
struct Chunks {
  uint64_t size = 0, chunk = 0;
  size_t n = 0;
  std::unique_ptr<std::atomic<uint64_t>[]> done;
  Chunks(uint64_t size, uint64_t chunk) : size(size), chunk(chunk), n(size ? (size + chunk - 1) / chunk : 0) {
    done = std::make_unique<std::atomic<uint64_t>[]>(n);
    for (size_t i = 0; i < n; ++i) done[i] = 0;
  }
  uint64_t start(size_t i) const { return i * chunk; }
  uint64_t len(size_t i) const { return std::min(chunk, size - start(i)); }
  uint64_t total_done() const {
    uint64_t t = 0;
    for (size_t i = 0; i < n; ++i) t += done[i].load();
    return t;
  }
  // Bytes from 0 that are all on disk.
  uint64_t contiguous() const {
    uint64_t t = 0;
    for (size_t i = 0; i < n; ++i) {
      const uint64_t d = done[i].load();
      t += d;
      if (d < len(i)) break;
    }
    return t;
  }
  void from_prefix(uint64_t bytes) {
    for (size_t i = 0; i < n; ++i) done[i] = std::min(len(i), bytes > start(i) ? bytes - start(i) : 0);
  }
};

std::string ranges_path(const std::string& incomplete) { return incomplete + ".ranges"; }

// "infera-partial 1 <size> <chunk>" then "<index> <done>" lines.
void load_ranges(Chunks& c, const std::string& incomplete) {
  std::error_code ec;
  const auto on_disk = fs::exists(incomplete, ec) ? fs::file_size(incomplete, ec) : 0;
  std::ifstream in(ranges_path(incomplete));
  std::string magic;
  int version = 0;
  uint64_t size = 0, chunk = 0;
  if (in && (in >> magic >> version >> size >> chunk) && magic == "infera-partial" && version == 1 &&
      size == c.size && chunk == c.chunk) {
    size_t i = 0;
    uint64_t d = 0;
    while (in >> i >> d)  // never more than the file holds (a record outliving its data)
      if (i < c.n) c.done[i] = std::min({d, c.len(i), on_disk > c.start(i) ? on_disk - c.start(i) : 0});
    return;
  }
  c.from_prefix(std::min<uint64_t>(on_disk, c.size));  // a bare .incomplete (ours without a record, or another tool's)
}

void save_ranges(const Chunks& c, const std::string& incomplete) {
  const std::string path = ranges_path(incomplete), tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "infera-partial 1 " << c.size << ' ' << c.chunk << '\n';
    for (size_t i = 0; i < c.n; ++i)
      if (const uint64_t d = c.done[i].load()) out << i << ' ' << d << '\n';
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
}

struct Hasher {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool git = false;
  Hasher(bool git, uint64_t size) : git(git) {
    EVP_DigestInit_ex(ctx, git ? EVP_sha1() : EVP_sha256(), nullptr);
    if (git) {
      const std::string header = fmt::format("blob {}", size);
      EVP_DigestUpdate(ctx, header.data(), header.size() + 1);  // with the NUL
    }
  }
  ~Hasher() { EVP_MD_CTX_free(ctx); }
  void update(const char* p, size_t n) { EVP_DigestUpdate(ctx, p, n); }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    std::string out;
    for (unsigned i = 0; i < len; ++i) out += fmt::format("{:02x}", md[i]);
    return out;
  }
};

size_t header_cb(char* data, size_t size, size_t n, void* user) {
  auto* h = static_cast<std::map<std::string, std::string>*>(user);
  std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    h->clear();
    return size * n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return size * n;
  std::string name = line.substr(0, colon), value = line.substr(colon + 1);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
  while (!value.empty() && value.front() == ' ') value.erase(0, 1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.pop_back();
  (*h)[name] = value;
  return size * n;
}

int xfer_cb(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* cancel = static_cast<const std::atomic<bool>*>(user);
  return cancel && cancel->load() ? 1 : 0;
}

// One connection: claims chunks in order and fetches each with Range requests, resuming inside a
// chunk after a cut.
class Connection {
 public:
  Connection(const HubConfig& cfg, const BlobRequest& req, Chunks& chunks, int fd, const std::string& path,
             const MessageFn& on_message, const std::atomic<bool>* cancel, std::condition_variable& cv)
      : cfg_(cfg), req_(req), chunks_(chunks), fd_(fd), path_(path), on_message_(on_message), cancel_(cancel),
        cv_(cv) {
  }
  ~Connection() {
    if (curl_) curl_easy_cleanup(curl_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  Status fetch_chunk(size_t i) {
    if (!curl_) curl_ = curl_easy_init();  // one handle per connection: keep-alive across chunks
    if (!curl_) return error("libcurl failed to initialise");
    CURL* c = curl_;
    const uint64_t start = chunks_.start(i), len = chunks_.len(i);
    int attempt = 0;
    while (chunks_.done[i].load() < len) {
      from_ = start + chunks_.done[i].load();
      end_ = start + len;  // exclusive
      chunk_ = i;
      checked_ = false;
      accept_ = false;
      fatal_ = Status::ok();
      headers_.clear();
      const uint64_t before = chunks_.done[i].load();
      curl_slist* hdrs = nullptr;
      if (!cfg_.token.empty()) hdrs = curl_slist_append(hdrs, ("Authorization: Bearer " + cfg_.token).c_str());
      const std::string range = fmt::format("{}-{}", from_, end_ - 1);
      char err[CURL_ERROR_SIZE] = {0};
      curl_easy_reset(c);
      curl_easy_setopt(c, CURLOPT_URL, req_.url.c_str());
      curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
      curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
      curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
      curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
      curl_easy_setopt(c, CURLOPT_USERAGENT, "infera/0.1");
      curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
      curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
      curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
      curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
      curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
      curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Connection::write_cb);
      curl_easy_setopt(c, CURLOPT_WRITEDATA, this);
      curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
      curl_easy_setopt(c, CURLOPT_HEADERDATA, &headers_);
      curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
      curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, xfer_cb);
      curl_easy_setopt(c, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(cancel_));
      const CURLcode rc = curl_easy_perform(c);
      long status = 0;
      curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
      curl_slist_free_all(hdrs);
      if (!fatal_) return fatal_;
      if (cancel_ && cancel_->load()) return error("cancelled");
      if (chunks_.done[i].load() >= len) break;
      std::string why;
      if (rc != CURLE_OK) {
        why = fmt::format("{} while fetching {}", err[0] ? err : curl_easy_strerror(rc), req_.what);
      } else if (status == 206 || (status == 200 && accept_)) {
        why = fmt::format("connection closed early while fetching {}", req_.what);
      } else if (retryable_status(status)) {
        why = fmt::format("HTTP {} while fetching {}", status, req_.what);
      } else {
        const auto code = headers_.find("x-error-code");
        return Status::error(describe_http_error(status, req_.what, cfg_, code == headers_.end() ? "" : code->second));
      }
      if (chunks_.done[i].load() > before) attempt = 0;  // progress: the count starts again
      if (++attempt >= cfg_.max_attempts) return error("{}; gave up after {} attempts", why, attempt);
      const auto ra = headers_.find("retry-after");
      const auto delay = retry_delay(cfg_, attempt, ra == headers_.end() ? "" : ra->second);
      if (on_message_)
        on_message_(fmt::format("{} at byte {}; retrying in {:.1f} s (attempt {} of {})", why,
                                start + chunks_.done[i].load(), delay.count() / 1000.0, attempt + 1,
                                cfg_.max_attempts));
      if (!sleep_unless_cancelled(delay, cancel_)) return error("cancelled");
    }
    return Status::ok();
  }

 private:
  static size_t write_cb(char* data, size_t size, size_t n, void* user) {
    return static_cast<Connection*>(user)->on_data(data, size * n);
  }

  size_t on_data(const char* data, size_t n) {
    if (!checked_) {  // the first bytes of the final response (redirect bodies never reach here)
      checked_ = true;
      long status = 0;
      curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
      if (status == 206) {
        unsigned long long a = 0, b = 0, total = 0;
        const auto cr = headers_.find("content-range");
        if (cr == headers_.end() || std::sscanf(cr->second.c_str(), "bytes %llu-%llu/%llu", &a, &b, &total) != 3) {
          fatal_ = error("the server answered {} without a valid Content-Range", req_.what);
          return 0;
        }
        if (total != chunks_.size) {
          fatal_ = error("{} changed on the server: it has {} bytes, the file list said {}", req_.what, total,
                         chunks_.size);
          return 0;
        }
        if (a != from_) {
          fatal_ = error("the server answered bytes {}- of {} when asked for bytes {}-", a, req_.what, from_);
          return 0;
        }
        accept_ = true;
      } else if (status == 200) {
        if (from_ != 0 || end_ != chunks_.size) {
          fatal_ = error("the server ignored the Range request for {} (HTTP 200)", req_.what);
          return 0;
        }
        accept_ = true;  // the whole file, as asked
      }
    }
    if (!accept_) return n;  // an error page
    // Straight from curl's buffer into the page cache: no copy of our own.
    const uint64_t at = chunks_.start(chunk_) + chunks_.done[chunk_].load();
    const size_t take = static_cast<size_t>(std::min<uint64_t>(n, end_ > at ? end_ - at : 0));
    if (Status s = pwrite_all(fd_, data, take, at, path_); !s) {
      fatal_ = s;
      return 0;
    }
    chunks_.done[chunk_] += take;  // recorded only once written
    if (Clock::now() - last_notify_ > std::chrono::milliseconds(20)) {
      last_notify_ = Clock::now();
      cv_.notify_all();
    }
    return n;
  }

  const HubConfig& cfg_;
  const BlobRequest& req_;
  Chunks& chunks_;
  int fd_;
  std::string path_;
  const MessageFn& on_message_;
  const std::atomic<bool>* cancel_;
  std::condition_variable& cv_;
  CURL* curl_ = nullptr;
  std::map<std::string, std::string> headers_;
  Status fatal_;
  size_t chunk_ = 0;
  uint64_t from_ = 0, end_ = 0;
  bool checked_ = false, accept_ = false;
  Clock::time_point last_notify_{};
};

}  // namespace

Result<BlobOutcome> download_blob(const HubConfig& cfg, const BlobRequest& req, const DownloadTuning& tuning,
                                  const BytesFn& on_bytes, const MessageFn& on_message,
                                  const std::atomic<bool>* cancel) {
  static const bool init = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  if (!init) return error("libcurl failed to initialise");
  std::mutex message_mu;  // the connections report retries from their own threads
  const MessageFn say = [&](const std::string& m) {
    std::lock_guard<std::mutex> l(message_mu);
    if (on_message) on_message(m);
  };
  BlobOutcome outcome;
  bool waited = false;
  INFERA_ASSIGN_OR_RETURN(std::unique_ptr<Fd> lock, lock_blob(req, on_message, cancel, &waited));
  std::error_code ec;
  if (fs::is_regular_file(req.final_path, ec) && fs::file_size(req.final_path, ec) == req.size) {
    outcome.by_other = waited;
    if (on_bytes) on_bytes(req.size);
    return outcome;
  }
  fs::create_directories(fs::path(req.final_path).parent_path(), ec);
  if (ec) return error("cannot create {}: {}", fs::path(req.final_path).parent_path().string(), ec.message());
  const std::string incomplete = req.final_path + ".incomplete";
  const bool git = req.sha256.empty();
  const std::string& expected = git ? req.git_sha1 : req.sha256;

  for (int round = 0;; ++round) {
    Fd fd(::open(incomplete.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (fd.get() < 0) return error("cannot open {}: {}", incomplete, std::strerror(errno));
    Chunks chunks(req.size, std::max<uint64_t>(tuning.chunk_bytes, 1));
    load_ranges(chunks, incomplete);
    const uint64_t resumed = chunks.total_done();
    if (round == 0) outcome.resumed = resumed;
    if (resumed > 0 && on_message)
      on_message(fmt::format("resuming {} at {} of {} bytes", req.what, resumed, req.size));

    // Connections claim the chunks that still miss bytes, in file order, so the hash can follow.
    std::vector<size_t> todo;
    for (size_t i = 0; i < chunks.n; ++i)
      if (chunks.done[i].load() < chunks.len(i)) todo.push_back(i);
    std::atomic<size_t> next{0};
    std::mutex mu;
    std::condition_variable cv;
    Status failure;
    std::atomic<bool> stop{false};
    std::atomic<int> running{0};
    const int n_conn = static_cast<int>(std::min<size_t>(std::max(1, tuning.connections), std::max<size_t>(todo.size(), 1)));
    std::vector<std::thread> workers;
    std::atomic<bool> abort_all{false};
    auto worker = [&] {
      Connection conn(cfg, req, chunks, fd.get(), incomplete, say, &abort_all, cv);
      for (;;) {
        const size_t k = next.fetch_add(1);
        if (k >= todo.size() || stop.load()) break;
        Status s = conn.fetch_chunk(todo[k]);
        if (!s) {
          std::lock_guard<std::mutex> l(mu);
          if (failure) failure = s;
          stop = true;
          abort_all = true;
          break;
        }
      }
      {
        std::lock_guard<std::mutex> l(mu);
        --running;
      }
      cv.notify_all();
    };
    running = todo.empty() ? 0 : n_conn;
    for (int w = 0; w < (todo.empty() ? 0 : n_conn); ++w) workers.emplace_back(worker);

    // This thread: hash the contiguous prefix as it grows, record progress, report bytes.
    // Read through a mapping of the whole size (no copy out of the page cache); only bytes already
    // written (below the contiguous prefix) are ever touched.
    Hasher hasher(git, req.size);
    uint64_t hashed = 0;
    const char* map = nullptr;
    if (req.size > 0) {
      void* m = ::mmap(nullptr, req.size, PROT_READ, MAP_SHARED, fd.get(), 0);
      if (m == MAP_FAILED) return error("cannot map {}: {}", incomplete, std::strerror(errno));
      map = static_cast<const char*>(m);
    }
    struct Unmap {
      const char* p;
      uint64_t n;
      ~Unmap() {
        if (p) ::munmap(const_cast<char*>(p), n);
      }
    } unmap{map, req.size};
    auto last_save = Clock::now();
    auto hash_upto = [&](uint64_t limit) {
      uint64_t this_call = 0;
      while (hashed < limit && this_call < (64u << 20)) {  // back to the timers now and then
        const size_t n = static_cast<size_t>(std::min<uint64_t>(4u << 20, limit - hashed));
        hasher.update(map + hashed, n);
        hashed += n;
        this_call += n;
      }
    };
    for (;;) {
      if (cancel && cancel->load()) abort_all = true;
      const uint64_t prefix = chunks.contiguous();
      if (hashed < prefix) hash_upto(prefix);
      if (on_bytes) on_bytes(chunks.total_done());
      if (Clock::now() - last_save > std::chrono::milliseconds(250)) {
        save_ranges(chunks, incomplete);
        last_save = Clock::now();
      }
      std::unique_lock<std::mutex> l(mu);
      if (running == 0) break;
      if (hashed >= chunks.contiguous()) cv.wait_for(l, std::chrono::milliseconds(100));
    }
    for (auto& t : workers) t.join();
    save_ranges(chunks, incomplete);
    if (cancel && cancel->load()) return error("cancelled");
    if (!failure) return failure;
    outcome.fetched += chunks.total_done() - resumed;
    while (hashed < req.size) hash_upto(req.size);
    const std::string got = hasher.hex();
    if (got != expected) {
      ::close(fd.release());
      fs::remove(incomplete, ec);
      fs::remove(ranges_path(incomplete), ec);
      if (round == 0) {
        if (on_message)
          on_message(fmt::format("{}: {} mismatch (expected {}, got {}); fetching it again", req.what,
                                 git ? "git sha1" : "sha256", expected, got));
        continue;
      }
      return error("{}: {} mismatch twice (expected {}, got {}); the download is corrupted on the way or the "
                   "server's file differs from its file list", req.what, git ? "git sha1" : "sha256", expected, got);
    }
    if (::fdatasync(fd.get()) != 0) return error("cannot sync {}: {}", incomplete, std::strerror(errno));
    fs::rename(incomplete, req.final_path, ec);
    if (ec) return error("cannot move {} into place: {}", incomplete, ec.message());
    fs::remove(ranges_path(incomplete), ec);
    if (Fd dir(::open(fs::path(req.final_path).parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); dir.get() >= 0)
      ::fsync(dir.get());
    if (on_bytes) on_bytes(req.size);
    return outcome;
  }
}

}  // namespace infera::hub
