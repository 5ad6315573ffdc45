// Structured outputs (Google Benchmark): one step's mask over the R1 vocabulary (151,936 ids) at
// several points of a JSON-schema output and of a json_object output, and compiling the schema.
//   build/release/bench/infera_bench_structured_output [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include "engine/structured_output.h"
#include "server/json_schema.h"
#include "tokenizer/tokenizer.h"

namespace infera {
namespace {

const std::string kQwen = std::string(INFERA_SOURCE_DIR) + "/tests/fixtures/tokenizers/deepseek-r1-distill-qwen/tokenizer.json";
constexpr const char* kSchema =
    R"({"type":"object","properties":{"name":{"type":"string"},"bio":{"type":"string","maxLength":200},)"
    R"("age":{"type":"integer","minimum":0,"maximum":120},"tags":{"type":"array","items":{"type":"string"},"maxItems":5},)"
    R"("ok":{"type":"boolean"}},"required":["name","bio","age","ok"]})";

struct Vocab {
  std::shared_ptr<TokenBytes> bytes = std::make_shared<TokenBytes>();
  std::vector<int32_t> single;  // the id of each one-byte token (to feed a prefix)
};

const Vocab& vocab() {
  static const Vocab v = [] {
    Vocab out;
    auto tok = Tokenizer::load(kQwen);
    if (!tok) throw std::runtime_error(tok.error());
    const size_t n = (*tok)->vocab_size();
    out.bytes->bytes.resize(n);
    out.bytes->special.assign(n, false);
    out.single.assign(256, -1);
    for (size_t i = 0; i < n; ++i) {
      out.bytes->bytes[i] = (*tok)->token_bytes(static_cast<int32_t>(i));
      out.bytes->special[i] = (*tok)->is_special(static_cast<int32_t>(i));
      const std::string& b = out.bytes->bytes[i];
      if (b.size() == 1 && !out.bytes->special[i] && out.single[static_cast<uint8_t>(b[0])] < 0)
        out.single[static_cast<uint8_t>(b[0])] = static_cast<int32_t>(i);
    }
    out.bytes->finalize();
    return out;
  }();
  return v;
}

std::shared_ptr<const ByteDfa> schema_dfa() {
  static const std::shared_ptr<const ByteDfa> d = *compile_regex(*json_schema_regex(nlohmann::ordered_json::parse(kSchema)));
  return d;
}

void run_mask(benchmark::State& state, const OutputConstraintFactory& make, const std::string& prefix) {
  const Vocab& v = vocab();
  auto c = make();
  for (char ch : prefix) c->accept(v.single[static_cast<uint8_t>(ch)]);
  std::vector<float> logits(v.bytes->bytes.size());
  const int32_t eos[] = {151643};
  size_t allowed = 0;
  for (auto _ : state) {
    std::fill(logits.begin(), logits.end(), 0.0f);
    c->mask(logits, eos);
    benchmark::DoNotOptimize(logits.data());
  }
  for (float x : logits) allowed += x > -INFINITY;
  state.counters["allowed"] = static_cast<double>(allowed);
}

const char* const kPrefixes[] = {"", R"({"name":")", R"({"name":"Ada", "bio":")", R"({"name":"Ada", "bio":"x", "age":)"};

void BM_SchemaMask(benchmark::State& state) {
  run_mask(state, regex_constraint(vocab().bytes, schema_dfa()), kPrefixes[state.range(0)]);
}
BENCHMARK(BM_SchemaMask)->ArgName("at")->DenseRange(0, 3)->Unit(benchmark::kMicrosecond);  // start, name, bio, age

void BM_JsonObjectMask(benchmark::State& state) {
  run_mask(state, json_object_constraint(vocab().bytes), state.range(0) ? R"({"name": ")" : "");
}
BENCHMARK(BM_JsonObjectMask)->ArgName("in_string")->DenseRange(0, 1)->Unit(benchmark::kMicrosecond);

void BM_SchemaCompile(benchmark::State& state) {
  const nlohmann::ordered_json schema = nlohmann::ordered_json::parse(kSchema);
  for (auto _ : state) {
    auto d = compile_regex(*json_schema_regex(schema));
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_SchemaCompile)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace infera

BENCHMARK_MAIN();
