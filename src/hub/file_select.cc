#include "hub/file_select.h"

#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <regex>
#include <set>

#include <fmt/format.h>

namespace infera::hub {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string join(const std::vector<std::string>& v, size_t max = 12) {
  std::string out;
  for (size_t i = 0; i < v.size() && i < max; ++i) out += (i ? ", " : "") + v[i];
  if (v.size() > max) out += fmt::format(", ... ({} in all)", v.size());
  return out;
}

bool is_gguf(const std::string& f) { return ends_with(lower(f), ".gguf"); }

// The quantization written in a GGUF file name: Q4_K_M, IQ3_XXS, Q8_0, F16, BF16, ...
const std::regex& quant_regex() {
  static const std::regex re(R"((?:^|[-._/])((?:I?Q[0-9]+(?:_[A-Z0-9]+)*)|BF16|F16|F32)(?=[-./]|$))",
                             std::regex::icase);
  return re;
}

// "x-00002-of-00003.gguf" -> {"x-", 2, 3}
bool split_part(const std::string& f, std::string* stem, int* part, int* count) {
  static const std::regex re(R"(^(.*)-([0-9]{5})-of-([0-9]{5})\.gguf$)", std::regex::icase);
  std::smatch m;
  if (!std::regex_match(f, m, re)) return false;
  *stem = m[1];
  *part = std::stoi(m[2]);
  *count = std::stoi(m[3]);
  return true;
}

}  // namespace

bool glob_match(const std::string& pattern, const std::string& name) {
  return ::fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
}

std::vector<std::string> gguf_quants(const std::vector<std::string>& files) {
  std::set<std::string> out;
  for (const std::string& f : files) {
    if (!is_gguf(f)) continue;
    std::string base = f.substr(0, f.size() - 5);
    for (std::sregex_iterator it(base.begin(), base.end(), quant_regex()), end; it != end; ++it) {
      std::string q = (*it)[1];
      std::transform(q.begin(), q.end(), q.begin(), [](unsigned char c) { return std::toupper(c); });
      out.insert(q);
    }
  }
  return {out.begin(), out.end()};
}

Result<std::vector<std::string>> select_files(const std::vector<std::string>& files, const Selection& sel,
                                              const std::string& repo) {
  std::set<std::string> picked;
  for (const std::string& f : files)
    for (const std::string& p : sel.include)
      if (glob_match(p, f)) picked.insert(f);

  if (!sel.quant.empty()) {
    const std::string want = lower(sel.quant);
    std::vector<std::string> matched;
    for (const std::string& f : files) {
      if (!is_gguf(f)) continue;
      const std::string base = f.substr(0, f.size() - 5);
      for (std::sregex_iterator it(base.begin(), base.end(), quant_regex()), end; it != end; ++it)
        if (lower((*it)[1]) == want) {
          matched.push_back(f);
          break;
        }
    }
    if (matched.empty()) {
      const auto quants = gguf_quants(files);
      return error("{} has no GGUF file for quantization {}{}", repo, sel.quant,
                   quants.empty() ? " (it holds no GGUF files)" : " (available: " + join(quants, 40) + ")");
    }
    // Every part of each split set, and no set with parts missing.
    std::map<std::string, std::pair<int, std::set<int>>> sets;
    for (const std::string& f : matched) {
      std::string stem;
      int part = 0, count = 0;
      if (split_part(f, &stem, &part, &count)) {
        sets[stem].first = count;
        sets[stem].second.insert(part);
      }
    }
    for (const auto& [stem, s] : sets)
      if (static_cast<int>(s.second.size()) != s.first || *s.second.begin() != 1 || *s.second.rbegin() != s.first)
        return error("{}: the split GGUF set {}-*-of-{:05d}.gguf is incomplete in the repository ({} of {} parts)",
                     repo, stem, s.first, s.second.size(), s.first);
    picked.insert(matched.begin(), matched.end());
  }

  if (sel.include.empty() && sel.quant.empty()) {
    bool safetensors = false;
    for (const std::string& f : files) safetensors = safetensors || ends_with(f, ".safetensors");
    if (!safetensors) {
      const auto quants = gguf_quants(files);
      if (!quants.empty())
        return error("{} holds GGUF files: choose one quantization with --quant (available: {})", repo,
                     join(quants, 40));
      return error("{} has no safetensors weights; choose files with --include (files: {})", repo, join(files));
    }
    static const char* kModelFolder[] = {"*.safetensors", "*.json", "*.model", "*.tiktoken", "*.txt", "*.jinja"};
    for (const std::string& f : files)
      for (const char* p : kModelFolder)
        if (glob_match(p, f)) picked.insert(f);
  }
  if (picked.empty())
    return error("no file of {} matches --include {} (files: {})", repo, join(sel.include), join(files));
  return std::vector<std::string>(picked.begin(), picked.end());
}

std::string model_entry(const std::string& folder, const std::vector<std::string>& picked) {
  std::vector<std::string> ggufs;
  for (const std::string& f : picked)
    if (is_gguf(f)) ggufs.push_back(f);
  bool config = std::find(picked.begin(), picked.end(), "config.json") != picked.end();
  if (config || ggufs.empty()) return folder;
  std::sort(ggufs.begin(), ggufs.end());
  for (const std::string& g : ggufs) {
    std::string stem;
    int part = 0, count = 0;
    if (split_part(g, &stem, &part, &count) && part == 1) return folder + "/" + g;
  }
  return folder + "/" + ggufs[0];
}

}  // namespace infera::hub
