#include <cmath>

#include <fmt/format.h>

#include "hub/pull.h"

namespace infera::hub {

std::string format_bytes(uint64_t n) {
  if (n < 1000) return fmt::format("{} B", n);
  static const char* kUnits[] = {"KB", "MB", "GB", "TB"};
  double v = static_cast<double>(n);
  int u = -1;
  while (v >= 1000 && u < 3) {
    v /= 1000;
    ++u;
  }
  if (v < 10) return fmt::format("{:.2f} {}", v, kUnits[u]);
  if (v < 100) return fmt::format("{:.1f} {}", v, kUnits[u]);
  return fmt::format("{:.0f} {}", v, kUnits[u]);
}

namespace {
std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const auto t = static_cast<int64_t>(s + 0.5);
  if (t < 60) return fmt::format("{} s", t);
  if (t < 3600) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}h{:02d}m", t / 3600, (t % 3600) / 60);
}
}  // namespace

std::string format_progress_line(const PullProgress& p) {
  const int pct = p.total ? static_cast<int>(100.0 * static_cast<double>(p.done) / static_cast<double>(p.total)) : 100;
  std::string line = fmt::format("{} ({}/{})  {} / {} ({}%)", p.file, p.file_index, p.files, format_bytes(p.done),
                                 format_bytes(p.total), pct);
  if (p.bytes_per_s > 0) {
    line += fmt::format("  {}/s", format_bytes(static_cast<uint64_t>(p.bytes_per_s)));
    if (!p.finished) line += "  ETA " + format_duration(static_cast<double>(p.total - p.done) / p.bytes_per_s);
  }
  return line;
}

}  // namespace infera::hub
