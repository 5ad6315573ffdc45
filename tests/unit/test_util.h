// Helpers for tests: temporary folders, byte files, fixture paths, running the CLI.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace infera {
struct ByteDfa;
}

namespace infera::test {

// A fresh folder under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string fixture(const std::string& rel);  // tests/fixtures/<rel>
std::vector<uint8_t> read_bytes(const std::string& path);
void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes);
std::vector<float> read_f32(const std::string& path);

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};
// Runs the built `infera` binary with the given argument string.
CommandResult run_infera(const std::string& args);

// `count` random texts the automaton accepts: at each byte, often one that brings a match closer.
std::vector<std::string> random_matches(const ByteDfa& d, int count, uint32_t seed);

}  // namespace infera::test
