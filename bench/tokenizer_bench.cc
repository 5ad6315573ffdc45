// Tokenizer benchmarks (Google Benchmark):
//   build/release/bench/infera_bench_tokenizer [--benchmark_filter=...]
// Corpora: "mixed" = this repository's docs and C++ sources plus the fixture texts of ordinary
// categories (English, code, numbers, unicode, whitespace); "adversarial" = every fixture case,
// including long runs of CJK, digits, spaces and emoji, which defeat the word cache.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "formats/json_util.h"
#include "tokenizer/tokenizer.h"

namespace infera {
namespace {

const std::string kRoot = INFERA_SOURCE_DIR;
const std::string kQwen = kRoot + "/tests/fixtures/tokenizers/deepseek-r1-distill-qwen/tokenizer.json";

std::string read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string fixture_texts(bool adversarial) {
  std::string out;
  std::ifstream f(kRoot + "/tests/fixtures/tokenizers/cases-qwen.jsonl");
  for (std::string line; std::getline(f, line);) {
    const Json j = Json::parse(line);
    const std::string cat = j["category"];
    if (adversarial || (cat != "long" && !cat.starts_with("random"))) out += j["text"].get<std::string>() + "\n";
  }
  return out;
}

const std::string& corpus(bool adversarial) {
  static const std::string mixed = [] {
    std::string s;
    for (const char* dir : {"/docs", "/src/tokenizer", "/src/model", "/src/formats"})
      for (const auto& e : std::filesystem::directory_iterator(kRoot + dir)) s += read(e.path().string());
    s += read(kRoot + "/README.md");
    for (int i = 0; i < 20; ++i) s += fixture_texts(false);
    return s;
  }();
  static const std::string adv = [] {
    std::string s;
    for (int i = 0; i < 5; ++i) s += fixture_texts(true);
    return s;
  }();
  return adversarial ? adv : mixed;
}

const Tokenizer& qwen() {
  static const std::unique_ptr<Tokenizer> t = Tokenizer::from_hf(kQwen).value();
  return *t;
}

void BM_LoadQwenTokenizerJson(benchmark::State& state) {
  for (auto _ : state) {
    auto t = Tokenizer::from_hf(kQwen);
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_LoadQwenTokenizerJson)->Unit(benchmark::kMillisecond)->Iterations(5);

void encode_bench(benchmark::State& state, bool adversarial) {
  const Tokenizer& t = qwen();
  const std::string& text = corpus(adversarial);
  size_t n_ids = 0;
  for (auto _ : state) n_ids = t.encode(text).size();
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["ids"] = static_cast<double>(n_ids);
  state.counters["bytes"] = static_cast<double>(text.size());
}
void BM_EncodeMixed(benchmark::State& state) { encode_bench(state, false); }
void BM_EncodeAdversarial(benchmark::State& state) { encode_bench(state, true); }
BENCHMARK(BM_EncodeMixed)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeAdversarial)->Unit(benchmark::kMillisecond);

void BM_DecodeMixed(benchmark::State& state) {
  const Tokenizer& t = qwen();
  const std::vector<int32_t> ids = t.encode(corpus(false));
  for (auto _ : state) benchmark::DoNotOptimize(t.decode(ids, true));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * corpus(false).size()));
}
BENCHMARK(BM_DecodeMixed)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace infera

BENCHMARK_MAIN();
