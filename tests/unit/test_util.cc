#include "unit/test_util.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <cstring>
#include <random>

#include "engine/regex_dfa.h"

namespace infera::test {

namespace fs = std::filesystem;

TempDir::TempDir() {
  std::random_device rd;
  path_ = (fs::temp_directory_path() / ("infera-test-" + std::to_string(rd()) + std::to_string(rd()))).string();
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string fixture(const std::string& rel) { return std::string(INFERA_FIXTURES_DIR) + "/" + rel; }

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<float> read_f32(const std::string& path) {
  const std::vector<uint8_t> b = read_bytes(path);
  std::vector<float> out(b.size() / 4);
  std::memcpy(out.data(), b.data(), out.size() * 4);
  return out;
}

CommandResult run_infera(const std::string& args) {
  CommandResult r;
  // Stderr joins stdout unless the arguments redirect it themselves.
  const bool own_redirect = args.find("2>") != std::string::npos;
  const std::string cmd = std::string(INFERA_BINARY) + " " + args + (own_redirect ? "" : " 2>&1");
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::vector<std::string> random_matches(const ByteDfa& d, int count, uint32_t seed) {
  const size_t n = d.states();
  std::vector<int> dist(n, 1 << 30);  // bytes to the nearest match
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t s = 0; s < n; ++s) {
      int best = d.accept[s] ? 0 : dist[s];
      for (int b = 0; b < 256; ++b)
        if (const int32_t t = d.step(static_cast<int32_t>(s), static_cast<uint8_t>(b)); t >= 0) best = std::min(best, dist[static_cast<size_t>(t)] + 1);
      if (best < dist[s]) dist[s] = best, changed = true;
    }
  }
  std::mt19937 g(seed);
  std::vector<std::string> out;
  while (static_cast<int>(out.size()) < count) {
    int32_t s = d.start;
    std::string text;
    while (!(d.accept[static_cast<size_t>(s)] && (g() % 3 == 0 || !d.live[static_cast<size_t>(s)]))) {
      std::vector<int> any, closer;
      for (int b = 0; b < 256; ++b)
        if (const int32_t t = d.step(s, static_cast<uint8_t>(b)); t >= 0) {
          any.push_back(b);
          if (dist[static_cast<size_t>(t)] < dist[static_cast<size_t>(s)]) closer.push_back(b);
        }
      const std::vector<int>& pick = (g() % 10 < 6 && !closer.empty()) ? closer : any;
      const int b = pick[g() % pick.size()];
      text.push_back(static_cast<char>(b));
      s = d.step(s, static_cast<uint8_t>(b));
    }
    out.push_back(text);
  }
  return out;
}

}  // namespace infera::test
