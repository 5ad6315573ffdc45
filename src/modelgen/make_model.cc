#include "modelgen/make_model.h"
#include "chat_template/builtin_templates.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include "base/half.h"
#include "base/thread_pool.h"
#include "formats/gguf_writer.h"
#include "formats/json_util.h"
#include "formats/safetensors.h"
#include "formats/tokenizer_json.h"
#include "model/model.h"
#include "tensor/quant.h"

namespace infera {

namespace fs = std::filesystem;

namespace {

// ---- deterministic random rows -------------------------------------------------------------

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t hash_name(const std::string& s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// xoshiro256** seeded by splitmix64.
struct Rng {
  uint64_t s[4];
  explicit Rng(uint64_t seed) {
    for (auto& x : s) x = seed = splitmix64(seed);
  }
  uint64_t next() {
    const uint64_t r = std::rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = std::rotl(s[3], 45);
    return r;
  }
  // Approximately standard normal: Irwin-Hall sum of four 16-bit uniforms, standardized
  // (mean 0, variance 1, support +-3.46). One generator call per value keeps a 1.8 B-parameter
  // model well under a minute.
  float normal() {
    const uint64_t r = next();
    float sum = 0;
    for (int k = 0; k < 4; ++k) sum += (static_cast<float>((r >> (16 * k)) & 0xFFFF) + 0.5f) * (1.0f / 65536.0f);
    return (sum - 2.0f) * 1.7320508f;
  }
};

float round_bf16(float x) { return bf16_to_f32(f32_to_bf16(x)); }

// Row `row` (HF order) of tensor `s`, as f32.
void generate_row(const TensorSpec& s, uint64_t seed, int64_t row, const ModelConfig& c,
                  const std::vector<TokenType>& token_types, const std::vector<float>& rope_divs, float* out) {
  const int64_t n = s.ne[0];
  if (s.init == TensorInit::kRopeFreqs) {
    std::copy(rope_divs.begin(), rope_divs.end(), out);
    return;
  }
  Rng rng(splitmix64(seed ^ hash_name(s.name)) + static_cast<uint64_t>(row) * 0x632BE59BD9B4E019ull);
  float std_dev = 1.0f, offset = 0.0f;
  bool bf16_exact = false;
  switch (s.init) {
    case TensorInit::kEmbedding: std_dev = 1.0f; break;
    case TensorInit::kProjection: std_dev = 1.0f / std::sqrt(static_cast<float>(n)); break;
    case TensorInit::kOutput: {
      std_dev = 4.0f / std::sqrt(static_cast<float>(n));
      const bool filler = static_cast<size_t>(row) >= token_types.size() ||
                          token_types[static_cast<size_t>(row)] == TokenType::kUnused;
      if (filler) std_dev *= 0.25f;  // padding ids practically never win the argmax
      break;
    }
    case TensorInit::kNorm: std_dev = 0.01f, offset = 1.0f, bf16_exact = true; break;
    case TensorInit::kBias: std_dev = 0.01f, bf16_exact = true; break;
    case TensorInit::kRopeFreqs: break;
  }
  for (int64_t i = 0; i < n; ++i) {
    const float v = offset + std_dev * rng.normal();
    out[i] = bf16_exact ? round_bf16(v) : v;
  }
  (void)c;
}

// GGUF llama files hold Wq/Wk with rows permuted per head: GGUF row 2i <- HF row i,
// GGUF row 2i+1 <- HF row d/2 + i (d = rows per head).
int64_t hf_row_of_gguf_row(const TensorSpec& s, int64_t g) {
  if (s.permute_heads <= 0) return g;
  const int64_t d = s.ne[1] / s.permute_heads, head = g / d, local = g % d;
  return head * d + (local % 2 == 0 ? local / 2 : d / 2 + local / 2);
}

// ---- tokenizer ------------------------------------------------------------------------------

// A byte-level vocabulary without merges: 256 byte tokens plus the R1 distills' special tokens.
TokenizerData synthetic_tokenizer(const std::string& arch) {
  TokenizerData d;
  for (int b = 0; b < 256; ++b) {
    d.tokens.push_back(byte_level_char(static_cast<uint8_t>(b)));
    d.types.push_back(TokenType::kNormal);
    d.special.push_back(false);
  }
  const std::string bar = "\xEF\xBD\x9C", sp = "\xE2\x96\x81";  // U+FF5C, U+2581
  const std::vector<std::pair<std::string, bool>> added = {
      {"<" + bar + "end" + sp + "of" + sp + "sentence" + bar + ">", true},
      {"<" + bar + "User" + bar + ">", false},
      {"<" + bar + "Assistant" + bar + ">", false},
      {"<" + bar + "begin" + sp + "of" + sp + "sentence" + bar + ">", true},
      {"<think>", false},
      {"</think>", false},
  };
  for (const auto& [tok, special] : added) {
    d.tokens.push_back(tok);
    d.types.push_back(added_token_type(tok, special));
    d.special.push_back(special);
  }
  d.eos_id = 256;
  d.bos_id = 259;
  d.pad_id = 256;
  d.chat_template = kR1ChatTemplate;
  (void)arch;
  return d;
}

// ---- dtype policy ---------------------------------------------------------------------------

struct DTypePlan {
  std::string label;      // as given
  DType main;             // 2-D tensors
  bool q4_k_m = false;    // llama-quantize's Q4_K_M mix
  uint32_t file_type = 0;  // general.file_type
};

Result<DTypePlan> plan_dtype(const std::string& s) {
  if (s == "q4_k_m") return DTypePlan{s, DType::Q4_K, true, 15};
  auto t = parse_dtype(s);
  if (!t || !dtype_info(*t).weight_supported)
    return error("--dtype '{}' is not one of f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, "
                 "q6_k, q4_k_m", s);
  static const std::pair<DType, uint32_t> kFtype[] = {
      {DType::F32, 0}, {DType::F16, 1}, {DType::Q4_0, 2}, {DType::Q4_1, 3}, {DType::Q8_0, 7}, {DType::Q5_0, 8},
      {DType::Q5_1, 9}, {DType::Q2_K, 10}, {DType::Q3_K, 12}, {DType::Q4_K, 14}, {DType::Q5_K, 16},
      {DType::Q6_K, 18}, {DType::BF16, 32}};
  uint32_t ft = 0;
  for (auto [d, f] : kFtype)
    if (d == *t) ft = f;
  return DTypePlan{s, *t, false, ft};
}

// llama.cpp's Q4_K_M gives more bits to attn_v / ffn_down in the first and last eighth of the
// layers and every third layer between.
bool use_more_bits(int64_t layer, int64_t n_layer) {
  return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

// llama-quantize gives the output matrix (the token embedding where the two are tied) Q6_K for
// every quantized type but Q8_0, or Q8_0 where rows are not a multiple of 256.
bool is_output_matrix(const TensorSpec& s, bool has_output) {
  return s.name == "output.weight" || (!has_output && s.name == "token_embd.weight");
}

DType tensor_dtype(const DTypePlan& p, const TensorSpec& s, const ModelConfig& c, bool has_output) {
  if (!s.is_matrix()) return DType::F32;
  if (is_output_matrix(s, has_output) && dtype_info(p.main).block_elems > 1 && p.main != DType::Q8_0)
    return s.ne[0] % 256 == 0 ? DType::Q6_K : DType::Q8_0;
  if (!p.q4_k_m) return p.main;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    if ((s.name == b + "attn_v.weight" || s.name == b + "ffn_down.weight") && use_more_bits(l, c.n_layer))
      return DType::Q6_K;
  }
  return DType::Q4_K;
}

// ---- writers --------------------------------------------------------------------------------

struct Plan {
  ModelConfig config;
  Preset preset;
  TokenizerData tok;
  std::vector<TensorSpec> specs;
  std::vector<float> rope_divs;
  uint64_t seed = 0;
};

// Fills `out` with rows [0, n_rows) of spec `s`, converted to `type`; `row_map` maps output rows
// to HF rows.
Status fill_tensor(ThreadPool& pool, const Plan& p, const TensorSpec& s, DType type, bool gguf_order,
                   std::span<uint8_t> out) {
  const int64_t n = s.ne[0], rows = s.ne.size() > 1 ? s.ne[1] : 1, rb = row_bytes(type, n);
  pool.parallel_for(rows, [&](int64_t r0, int64_t r1) {
    std::vector<float> buf(static_cast<size_t>(n));
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t src = gguf_order ? hf_row_of_gguf_row(s, r) : r;
      generate_row(s, p.seed, src, p.config, p.tok.types, p.rope_divs, buf.data());
      quantize_row(type, buf.data(), out.data() + r * rb, n);
    }
  });
  return Status::ok();
}

GgufValue string_array(const std::vector<std::string>& v) {
  std::vector<GgufValue> items;
  items.reserve(v.size());
  for (const std::string& s : v) items.push_back(GgufValue::of_string(s));
  return GgufValue::of_array(GgufType::STRING, std::move(items));
}

Result<MakeModelReport> write_gguf(const Plan& p, const DTypePlan& dp, const std::string& out, ThreadPool& pool) {
  const ModelConfig& c = p.config;
  const std::string a = c.arch + ".";
  GgufWriter w;
  w.add_kv("general.architecture", GgufValue::of_string(c.arch));
  w.add_kv("general.type", GgufValue::of_string("model"));
  w.add_kv("general.name", GgufValue::of_string(p.preset.model_name));
  w.add_kv(a + "block_count", GgufValue::of_u32(static_cast<uint32_t>(c.n_layer)));
  w.add_kv(a + "context_length", GgufValue::of_u32(static_cast<uint32_t>(c.n_ctx_train)));
  w.add_kv(a + "embedding_length", GgufValue::of_u32(static_cast<uint32_t>(c.n_embd)));
  w.add_kv(a + "feed_forward_length", GgufValue::of_u32(static_cast<uint32_t>(c.n_ff)));
  w.add_kv(a + "attention.head_count", GgufValue::of_u32(static_cast<uint32_t>(c.n_head)));
  w.add_kv(a + "attention.head_count_kv", GgufValue::of_u32(static_cast<uint32_t>(c.n_head_kv)));
  w.add_kv(a + "rope.freq_base", GgufValue::of_f32(static_cast<float>(c.rope_theta)));
  w.add_kv(a + "attention.layer_norm_rms_epsilon", GgufValue::of_f32(c.rms_eps));
  if (c.arch == "llama") {
    w.add_kv(a + "vocab_size", GgufValue::of_u32(static_cast<uint32_t>(c.n_vocab)));
    w.add_kv(a + "rope.dimension_count", GgufValue::of_u32(static_cast<uint32_t>(c.n_rot)));
  }
  w.add_kv("general.file_type", GgufValue::of_u32(dp.file_type));
  // llama-quantize writes the quantization version into every file it makes; the converter's
  // F32 output has none.
  if (dp.q4_k_m || dp.main != DType::F32) w.add_kv("general.quantization_version", GgufValue::of_u32(2));
  w.add_kv("tokenizer.ggml.model", GgufValue::of_string("gpt2"));
  w.add_kv("tokenizer.ggml.pre", GgufValue::of_string(c.arch == "qwen2" ? "deepseek-r1-qwen" : "llama-bpe"));
  std::vector<std::string> tokens = p.tok.tokens;
  std::vector<GgufValue> types;
  for (size_t i = 0; i < static_cast<size_t>(c.n_vocab); ++i) {
    if (i >= tokens.size()) tokens.push_back("[PAD" + std::to_string(i) + "]");
    types.push_back(GgufValue::of_i32(static_cast<int32_t>(i < p.tok.types.size() ? p.tok.types[i] : TokenType::kUnused)));
  }
  w.add_kv("tokenizer.ggml.tokens", string_array(tokens));
  w.add_kv("tokenizer.ggml.token_type", GgufValue::of_array(GgufType::I32, std::move(types)));
  w.add_kv("tokenizer.ggml.merges", string_array(p.tok.merges));
  if (p.tok.bos_id >= 0) w.add_kv("tokenizer.ggml.bos_token_id", GgufValue::of_u32(static_cast<uint32_t>(p.tok.bos_id)));
  if (p.tok.eos_id >= 0) w.add_kv("tokenizer.ggml.eos_token_id", GgufValue::of_u32(static_cast<uint32_t>(p.tok.eos_id)));
  if (p.tok.pad_id >= 0) w.add_kv("tokenizer.ggml.padding_token_id", GgufValue::of_u32(static_cast<uint32_t>(p.tok.pad_id)));
  w.add_kv("tokenizer.ggml.add_bos_token", GgufValue::of_bool(p.tok.add_bos));
  w.add_kv("tokenizer.ggml.add_eos_token", GgufValue::of_bool(p.tok.add_eos));
  if (!p.tok.chat_template.empty()) w.add_kv("tokenizer.chat_template", GgufValue::of_string(p.tok.chat_template));

  std::vector<const TensorSpec*> order;
  std::vector<DType> types_of;
  MakeModelReport rep;
  const bool has_output =
      std::any_of(p.specs.begin(), p.specs.end(), [](const TensorSpec& s) { return s.name == "output.weight"; });
  for (const TensorSpec& s : p.specs) {
    if (s.init == TensorInit::kRopeFreqs && p.rope_divs.empty()) continue;
    order.push_back(&s);
    types_of.push_back(tensor_dtype(dp, s, c, has_output));
    w.add_tensor({s.name, types_of.back(), s.ne});
    int64_t n = 1;
    for (int64_t d : s.ne) n *= d;
    if (s.init != TensorInit::kRopeFreqs) rep.n_params += n;
  }
  INFERA_RETURN_IF_ERROR(w.write(out, [&](size_t i, std::span<uint8_t> buf) {
    return fill_tensor(pool, p, *order[i], types_of[i], /*gguf_order=*/true, buf);
  }));
  rep.n_tensors = static_cast<int64_t>(order.size());
  rep.bytes = fs::file_size(out);
  return rep;
}

Status write_json(const std::string& path, const Json& j) {
  std::ofstream f(path, std::ios::binary);
  f << j.dump(2) << "\n";
  if (!f) return error("{}: write failed", path);
  return Status::ok();
}

Json hf_tokenizer_json(const TokenizerData& t, const std::string& arch) {
  Json vocab = Json::object(), added = Json::array();
  for (size_t i = 0; i < t.tokens.size(); ++i) {
    if (t.types[i] == TokenType::kNormal) {
      vocab[t.tokens[i]] = i;
    } else {
      added.push_back({{"id", i}, {"content", t.tokens[i]}, {"single_word", false}, {"lstrip", false},
                       {"rstrip", false}, {"normalized", false}, {"special", static_cast<bool>(t.special[i])}});
    }
  }
  const std::string digits = arch == "qwen2" ? "\\p{N}" : "\\p{N}{1,3}";
  const std::string re = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" + digits +
                         "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  Json j = {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", added}};
  j["normalizer"] = arch == "qwen2" ? Json{{"type", "NFC"}} : Json(nullptr);
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers",
                         {{{"type", "Split"}, {"pattern", {{"Regex", re}}}, {"behavior", "Isolated"}, {"invert", false}},
                          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}}}};
  j["post_processor"] = nullptr;
  j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  j["model"] = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", ""},
                {"end_of_word_suffix", ""}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
                {"vocab", vocab}, {"merges", t.merges}};
  return j;
}

Result<MakeModelReport> write_hf(const Plan& p, const DTypePlan& dp, const std::string& out_dir,
                                 const std::string& tokenizer_src, ThreadPool& pool) {
  if (dp.q4_k_m || (dp.main != DType::F32 && dp.main != DType::F16 && dp.main != DType::BF16))
    return error("--format hf stores f32, f16 or bf16 weights, not {}", dp.label);
  const ModelConfig& c = p.config;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return error("{}: cannot create folder: {}", out_dir, ec.message());
  const std::string st_dtype(dtype_name(dp.main));
  Json cfg = {{"architectures", {c.arch == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
              {"model_type", c.arch}, {"attention_dropout", 0.0}, {"bos_token_id", p.tok.bos_id},
              {"eos_token_id", p.tok.eos_id}, {"hidden_act", "silu"}, {"hidden_size", c.n_embd},
              {"initializer_range", 0.02}, {"intermediate_size", c.n_ff},
              {"max_position_embeddings", c.n_ctx_train}, {"num_attention_heads", c.n_head},
              {"num_hidden_layers", c.n_layer}, {"num_key_value_heads", c.n_head_kv},
              {"rms_norm_eps", c.rms_eps}, {"rope_theta", c.rope_theta}, {"tie_word_embeddings", false},
              {"torch_dtype", dp.main == DType::F32 ? "float32" : dp.main == DType::F16 ? "float16" : "bfloat16"},
              {"transformers_version", "4.44.0"}, {"use_cache", true}, {"vocab_size", c.n_vocab}};
  if (c.arch == "qwen2") {
    cfg["use_sliding_window"] = false;
    cfg["sliding_window"] = 4096;
    cfg["max_window_layers"] = c.n_layer;
    cfg["use_mrope"] = false;
  } else {
    cfg["attention_bias"] = false;
    cfg["mlp_bias"] = false;
    if (p.preset.llama3_scaling)
      cfg["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", p.preset.scaling.factor},
                             {"low_freq_factor", p.preset.scaling.low_freq_factor},
                             {"high_freq_factor", p.preset.scaling.high_freq_factor},
                             {"original_max_position_embeddings", p.preset.scaling.original_context}};
  }
  INFERA_RETURN_IF_ERROR(write_json((fs::path(out_dir) / "config.json").string(), cfg));
  Json gen = {{"_from_model_config", true}, {"bos_token_id", p.tok.bos_id}, {"eos_token_id", p.tok.eos_id},
              {"do_sample", true}, {"temperature", 0.6}, {"top_p", 0.95}, {"transformers_version", "4.44.0"}};
  INFERA_RETURN_IF_ERROR(write_json((fs::path(out_dir) / "generation_config.json").string(), gen));

  // Tokenizer files: copied from the source, or written for the byte-level vocabulary.
  if (!tokenizer_src.empty()) {
    const fs::path src = fs::is_directory(tokenizer_src, ec) ? fs::path(tokenizer_src) : fs::path(tokenizer_src).parent_path();
    const fs::path tj = fs::is_directory(tokenizer_src, ec) ? src / "tokenizer.json" : fs::path(tokenizer_src);
    fs::copy_file(tj, fs::path(out_dir) / "tokenizer.json", fs::copy_options::overwrite_existing, ec);
    if (ec) return error("{}: cannot copy: {}", tj.string(), ec.message());
    if (fs::exists(src / "tokenizer_config.json"))
      fs::copy_file(src / "tokenizer_config.json", fs::path(out_dir) / "tokenizer_config.json",
                    fs::copy_options::overwrite_existing, ec);
  } else {
    INFERA_RETURN_IF_ERROR(write_json((fs::path(out_dir) / "tokenizer.json").string(), hf_tokenizer_json(p.tok, c.arch)));
    Json tc = {{"add_bos_token", true}, {"add_eos_token", false}, {"bos_token", p.tok.tokens[p.tok.bos_id]},
               {"eos_token", p.tok.tokens[p.tok.eos_id]}, {"pad_token", p.tok.tokens[p.tok.eos_id]},
               {"model_max_length", 16384}, {"tokenizer_class", "LlamaTokenizerFast"},
               {"chat_template", p.tok.chat_template}};
    INFERA_RETURN_IF_ERROR(write_json((fs::path(out_dir) / "tokenizer_config.json").string(), tc));
  }

  std::vector<SafetensorsSpec> specs;
  std::vector<const TensorSpec*> order;
  MakeModelReport rep;
  for (const TensorSpec& s : p.specs) {
    if (s.hf_name.empty()) continue;
    order.push_back(&s);
    std::vector<int64_t> shape(s.ne.rbegin(), s.ne.rend());
    specs.push_back({s.hf_name, st_dtype, shape});
    int64_t n = 1;
    for (int64_t d : s.ne) n *= d;
    rep.n_params += n;
  }
  const std::string st_path = (fs::path(out_dir) / "model.safetensors").string();
  INFERA_RETURN_IF_ERROR(write_safetensors(st_path, specs, [&](size_t i, std::span<uint8_t> buf) {
    return fill_tensor(pool, p, *order[i], dp.main, /*gguf_order=*/false, buf);
  }));
  rep.n_tensors = static_cast<int64_t>(order.size());
  rep.bytes = fs::file_size(st_path);
  return rep;
}

}  // namespace

Result<MakeModelReport> make_model(const MakeModelOptions& o) {
  if (o.out.empty()) return error("--out is required");
  if (o.format != "gguf" && o.format != "hf") return error("--format '{}' must be gguf or hf", o.format);
  Plan p;
  INFERA_ASSIGN_OR_RETURN(p.preset, find_preset(o.arch, o.preset));
  INFERA_ASSIGN_OR_RETURN(DTypePlan dp, plan_dtype(o.dtype));
  if (!o.tokenizer.empty()) {
    INFERA_ASSIGN_OR_RETURN(p.tok, read_hf_tokenizer(o.tokenizer));
  } else {
    p.tok = synthetic_tokenizer(o.arch);
  }
  p.seed = o.seed;
  p.config = p.preset.config;
  const int64_t n_tokens = static_cast<int64_t>(p.tok.tokens.size());
  if (p.config.n_vocab == 0) p.config.n_vocab = (n_tokens + 63) / 64 * 64;
  if (n_tokens > p.config.n_vocab)
    return error("the tokenizer has {} tokens but preset '{}' has only {} embedding rows", n_tokens, o.preset,
                 p.config.n_vocab);
  const Architecture* arch = find_architecture(o.arch);
  if (!arch) return error("--arch '{}' is not supported (supported: qwen2, llama)", o.arch);
  if (p.preset.llama3_scaling) p.rope_divs = llama3_rope_divisors(p.preset.scaling, p.config.n_rot, p.config.rope_theta);
  p.specs = arch->tensors(p.config);
  ThreadPool pool(o.n_threads > 0 ? o.n_threads : default_thread_count());
  if (o.format == "gguf") return write_gguf(p, dp, o.out, pool);
  return write_hf(p, dp, o.out, o.tokenizer, pool);
}

}  // namespace infera
