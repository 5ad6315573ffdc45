// infera pull: a model from the Hugging Face Hub into the standard cache (or a plain folder).
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "cli_util.h"
#include "commands.h"
#include "hub/pull.h"

namespace infera::cli {

namespace {

struct PullArgs {
  hub::PullOptions opt;
  std::string cache_dir;
  bool quiet = false;
};

// A bar redrawn in place on a terminal; a plain line every few seconds otherwise.
class ProgressView {
 public:
  ProgressView() : tty_(::isatty(STDERR_FILENO) == 1) {}
  void update(const hub::PullProgress& p) {
    const auto now = std::chrono::steady_clock::now();
    if (tty_) {
      if (!p.finished && now - last_ < std::chrono::milliseconds(200)) return;
      last_ = now;
      winsize ws{};
      const int width = ::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 40 ? ws.ws_col : 100;
      const int bar = 24;
      const int fill = p.total ? static_cast<int>(bar * static_cast<double>(p.done) / static_cast<double>(p.total)) : bar;
      std::string line = "[" + std::string(fill, '#') + std::string(bar - fill, '-') + "] " + hub::format_progress_line(p);
      if (static_cast<int>(line.size()) > width - 1) line.resize(width - 1);
      std::fprintf(stderr, "\r%s\x1b[K%s", line.c_str(), p.finished ? "\n" : "");
      drawn_ = !p.finished;
    } else {
      if (!p.finished && now - last_ < std::chrono::seconds(2)) return;
      last_ = now;
      std::fprintf(stderr, "%s\n", hub::format_progress_line(p).c_str());
    }
    std::fflush(stderr);
  }
  void message(const std::string& m) {
    if (drawn_) std::fprintf(stderr, "\r\x1b[K");
    drawn_ = false;
    std::fprintf(stderr, "%s\n", m.c_str());
    std::fflush(stderr);
  }

 private:
  bool tty_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_{};
};

int run_pull(const PullArgs& a) {
  hub::HubConfig cfg = hub::HubConfig::from_env();
  if (!a.cache_dir.empty()) cfg.cache_dir = a.cache_dir;
  ProgressView view;
  hub::PullCallbacks cb;
  if (!a.quiet) {
    cb.message = [&](const std::string& m) { view.message(m); };
    cb.progress = [&](const hub::PullProgress& p) { view.update(p); };
  }
  auto r = hub::pull(cfg, a.opt, cb);
  if (!r) return fail(r.error());
  if (!a.quiet)
    view.message(fmt::format("{} files in {} (fetched {}, reused {})", r->files.size(), r->folder,
                             hub::format_bytes(r->fetched_bytes), hub::format_bytes(r->reused_bytes)));
  std::printf("%s\n", r->model_path.c_str());  // what `infera serve --model` takes
  return 0;
}

}  // namespace

void add_pull(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<PullArgs>();
  CLI::App* c = app.add_subcommand(
      "pull", "Download a model from the Hugging Face Hub into the Hugging Face cache (HF_ENDPOINT, HF_TOKEN, "
              "HF_HUB_OFFLINE, HF_HOME / HF_HUB_CACHE); prints the path `serve --model` takes");
  c->add_option("repo", a->opt.repo, "repository id, e.g. deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B")->required();
  c->add_option("--revision", a->opt.revision, "branch, tag or commit (default main)");
  c->add_option("--include", a->opt.selection.include, "glob pattern of files to fetch (repeatable)")
      ->allow_extra_args(false);
  c->add_option("--quant", a->opt.selection.quant, "one GGUF quantization by name, e.g. Q4_K_M (all split parts)");
  c->add_option("--local-dir", a->opt.local_dir, "put plain files in this folder instead of the cache");
  c->add_option("--cache-dir", a->cache_dir, "the Hugging Face cache (default $HF_HUB_CACHE, $HF_HOME/hub, "
                                             "~/.cache/huggingface/hub)");
  c->add_option("--connections", a->opt.tuning.connections, "parallel connections per large file (default 4)")
      ->check(CLI::Range(1, 32));
  c->add_option_function<int>(
       "--chunk-mb", [a](int mb) { a->opt.tuning.chunk_bytes = static_cast<uint64_t>(mb) << 20; },
       "unit of work per connection and of resume bookkeeping, MiB (default 16)")
      ->check(CLI::Range(1, 1024));
  c->add_flag("--quiet", a->quiet, "print only the resulting path");
  c->callback([a, exit_code] { *exit_code = run_pull(*a); });
}

}  // namespace infera::cli
