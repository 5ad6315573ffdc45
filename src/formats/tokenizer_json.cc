#include "formats/tokenizer_json.h"

#include <filesystem>

#include "base/mapped_file.h"
#include "formats/json_util.h"

namespace infera {

namespace fs = std::filesystem;

std::string byte_level_char(uint8_t b) {
  // Printable bytes map to themselves; the rest to U+0100 + k in byte order.
  auto printable = [](int x) { return (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255); };
  uint32_t cp = b;
  if (!printable(b)) {
    int k = 0;
    for (int x = 0; x < b; ++x)
      if (!printable(x)) ++k;
    cp = 256 + static_cast<uint32_t>(k);
  }
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else {
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return s;
}

TokenType added_token_type(const std::string& c, bool special) {
  auto looks_special = [&](std::string_view open, std::string_view close) {
    return c.size() >= open.size() + close.size() && c.starts_with(open) && c.ends_with(close);
  };
  if (special || looks_special("<|", "|>") || looks_special("<\xEF\xBD\x9C", "\xEF\xBD\x9C>"))
    return TokenType::kControl;
  return TokenType::kUserDefined;
}

namespace {

// tokenizer_config.json writes special tokens either as a string or as {"content": ...}.
std::string token_content(const Json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return {};
}

Status read_normalizer(const Json& n, const std::string& p, TokenizerData& d) {
  if (n.is_null()) return Status::ok();
  const std::string type = n.value("type", "");
  if (type == "NFC") {
    d.nfc = true;
  } else if (type == "Sequence" && n.contains("normalizers") && n["normalizers"].is_array()) {
    for (const Json& x : n["normalizers"]) INFERA_RETURN_IF_ERROR(read_normalizer(x, p, d));
  } else {
    return error("{}: normalizer '{}' is not supported (supported: NFC)", p, type);
  }
  return Status::ok();
}

Status read_pre_tokenizer(const Json& t, const std::string& p, TokenizerData& d) {
  if (t.is_null()) return Status::ok();
  const std::string type = t.value("type", "");
  if (type == "Sequence" && t.contains("pretokenizers") && t["pretokenizers"].is_array()) {
    for (const Json& x : t["pretokenizers"]) INFERA_RETURN_IF_ERROR(read_pre_tokenizer(x, p, d));
  } else if (type == "Split") {
    const Json& pat = t.value("pattern", Json::object());
    if (!pat.contains("Regex") || !pat["Regex"].is_string())
      return error("{}: Split pre-tokenizer without a Regex pattern is not supported", p);
    if (t.value("behavior", "") != "Isolated" || t.value("invert", false))
      return error("{}: Split behavior '{}' is not supported (supported: Isolated)", p, t.value("behavior", ""));
    d.split_patterns.push_back(pat["Regex"].get<std::string>());
  } else if (type == "ByteLevel") {
    if (t.value("add_prefix_space", false)) return error("{}: ByteLevel add_prefix_space is not supported", p);
    if (t.value("use_regex", true)) d.split_patterns.push_back("GPT2");  // the GPT-2 regex
  } else {
    return error("{}: pre-tokenizer '{}' is not supported (supported: Split, ByteLevel, Sequence)", p, type);
  }
  return Status::ok();
}

// BOS from a TemplateProcessing post-processor ("<bos> $A"), alone or in a Sequence.
void read_post_processor(const Json& t, TokenizerData& d) {
  if (!t.is_object()) return;
  if (t.value("type", "") == "Sequence" && t.contains("processors") && t["processors"].is_array()) {
    for (const Json& x : t["processors"]) read_post_processor(x, d);
  } else if (t.value("type", "") == "TemplateProcessing" && t.contains("single") && t["single"].is_array() &&
             !t["single"].empty() && t["single"][0].contains("SpecialToken")) {
    const std::string name = t["single"][0]["SpecialToken"].value("id", "");
    const Json& st = t.value("special_tokens", Json::object());
    if (st.contains(name) && st[name].contains("ids") && st[name]["ids"].is_array() && !st[name]["ids"].empty() &&
        st[name]["ids"][0].is_number_integer())
      d.post_bos_id = st[name]["ids"][0].get<int64_t>();
  }
}

Status read_pipeline(const Json& j, const std::string& p, TokenizerData& d) {
  INFERA_RETURN_IF_ERROR(read_normalizer(j.value("normalizer", Json()), p, d));
  INFERA_RETURN_IF_ERROR(read_pre_tokenizer(j.value("pre_tokenizer", Json()), p, d));
  read_post_processor(j.value("post_processor", Json()), d);
  const Json& im = j["model"].value("ignore_merges", Json(false));
  d.ignore_merges = im.is_boolean() && im.get<bool>();
  return Status::ok();
}

}  // namespace

// tokenizer.json holds ~150k vocabulary entries and ~150k merges. A SAX pass moves those two
// straight into flat vectors and builds a DOM only for the small rest, which is about twice as
// fast as a full DOM parse.
class TokenizerJsonSax {
 public:
  using json = Json;
  Json root;
  std::vector<std::pair<std::string, int64_t>> vocab;
  std::vector<std::string> merges;
  std::string error;

  bool null() { return value(Json(nullptr)); }
  bool boolean(bool b) { return value(Json(b)); }
  bool number_integer(Json::number_integer_t v) { return vocab_mode() ? vocab_id(v) : value(Json(v)); }
  bool number_unsigned(Json::number_unsigned_t v) {
    return vocab_mode() ? vocab_id(static_cast<int64_t>(v)) : value(Json(v));
  }
  bool number_float(Json::number_float_t v, const std::string&) { return value(Json(v)); }
  bool string(std::string& v) {
    if (mode_ == Mode::kMerges) {
      merges.push_back(std::move(v));
      return true;
    }
    if (mode_ == Mode::kMergePair) {
      pair_.push_back(std::move(v));
      return pair_.size() <= 2 || fail("a merge pair has more than two parts");
    }
    return value(Json(std::move(v)));
  }
  bool binary(Json::binary_t&) { return fail("binary values are not JSON"); }
  bool key(std::string& k) {
    key_ = std::move(k);
    return true;
  }
  bool start_object(std::size_t) {
    if (mode_ != Mode::kDom) return fail(mode_ == Mode::kVocab ? "a vocab entry is not an integer id" : "a merge is not a string or pair");
    if (is_model_child("vocab")) return enter(Mode::kVocab);
    return open(Json::object());
  }
  bool end_object() { return close(); }
  bool start_array(std::size_t) {
    if (mode_ == Mode::kMerges) return enter(Mode::kMergePair);
    if (mode_ != Mode::kDom) return fail("a vocab entry is not an integer id");
    if (is_model_child("merges")) return enter(Mode::kMerges);
    return open(Json::array());
  }
  bool end_array() {
    if (mode_ == Mode::kMergePair) {
      if (pair_.size() != 2) return fail("a merge pair does not have two parts");
      merges.push_back(pair_[0] + " " + pair_[1]);
      pair_.clear();
    }
    return close();
  }
  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& e) {
    return fail(fmt::format("not valid JSON at byte {}: {}", pos, e.what()));
  }

 private:
  enum class Mode { kDom, kVocab, kMerges, kMergePair };
  struct Frame {
    Json* container;  // null for the vocab / merges frames
    Mode mode;
    std::string key;  // key under which this container sits in its parent object
  };

  bool fail(std::string msg) {
    if (error.empty()) error = std::move(msg);
    return false;
  }
  bool vocab_mode() const { return mode_ == Mode::kVocab; }
  bool vocab_id(int64_t v) {
    vocab.emplace_back(std::move(key_), v);
    return true;
  }
  // True when the next container is root["model"][name].
  bool is_model_child(const char* name) const {
    return stack_.size() == 2 && stack_[1].key == "model" && stack_[1].container->is_object() && key_ == name;
  }
  Json* place(Json v) {
    if (stack_.empty()) {
      root = std::move(v);
      return &root;
    }
    Json* top = stack_.back().container;
    if (!top) return nullptr;
    if (top->is_object()) return &((*top)[key_] = std::move(v));
    top->push_back(std::move(v));
    return &top->back();
  }
  bool value(Json v) {
    if (mode_ != Mode::kDom) return fail(mode_ == Mode::kVocab ? "a vocab entry is not an integer id" : "a merge is not a string or pair");
    place(std::move(v));
    return true;
  }
  bool open(Json v) {
    const std::string k = stack_.empty() || !stack_.back().container->is_object() ? std::string() : key_;
    Json* c = place(std::move(v));
    stack_.push_back({c, Mode::kDom, k});
    return true;
  }
  bool enter(Mode m) {
    stack_.push_back({nullptr, m, key_});
    mode_ = m;
    return true;
  }
  bool close() {
    if (stack_.empty()) return fail("unbalanced JSON");
    stack_.pop_back();
    mode_ = stack_.empty() ? Mode::kDom : stack_.back().mode;
    return true;
  }

  std::vector<Frame> stack_;
  Mode mode_ = Mode::kDom;
  std::string key_;
  std::vector<std::string> pair_;
};

Result<TokenizerData> read_hf_tokenizer_impl(const std::string& path);

Result<TokenizerData> read_hf_tokenizer(const std::string& path) {
  try {
    return read_hf_tokenizer_impl(path);
  } catch (const Json::exception& e) {  // a value of an unexpected JSON type somewhere
    return error("{}: malformed tokenizer file: {}", path, e.what());
  }
}

Result<TokenizerData> read_hf_tokenizer_impl(const std::string& path) {
  std::error_code ec;
  const fs::path file = fs::is_directory(path, ec) ? fs::path(path) / "tokenizer.json" : fs::path(path);
  const std::string p = file.string();
  INFERA_ASSIGN_OR_RETURN(std::string text, read_text_file(p));
  TokenizerJsonSax sax;
  if (!Json::sax_parse(text, &sax) || !sax.error.empty())
    return error("{}: {}", p, sax.error.empty() ? std::string("not valid JSON") : sax.error);
  Json& j = sax.root;
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object())
    return error("{}: missing object 'model'", p);
  const Json& model = j["model"];
  if (!model.contains("type") || !model["type"].is_string() || model["type"].get<std::string>() != "BPE")
    return error("{}: model type '{}' is not supported (supported: BPE)", p,
                 model.contains("type") ? model["type"].dump() : std::string("?"));
  if (sax.vocab.empty()) return error("{}: missing or empty object 'model.vocab'", p);
  TokenizerData d;
  auto put = [&](int64_t id, const std::string& tok, TokenType type, bool special) -> Status {
    if (id < 0 || id > 10'000'000) return error("{}: token '{}' has impossible id {}", p, tok, id);
    if (static_cast<size_t>(id) >= d.tokens.size()) {
      d.tokens.resize(static_cast<size_t>(id) + 1);
      d.types.resize(static_cast<size_t>(id) + 1, TokenType::kUnused);
      d.special.resize(static_cast<size_t>(id) + 1, false);
    }
    d.tokens[static_cast<size_t>(id)] = tok;
    d.types[static_cast<size_t>(id)] = type;
    d.special[static_cast<size_t>(id)] = special;
    return Status::ok();
  };
  for (auto& [tok, id] : sax.vocab) INFERA_RETURN_IF_ERROR(put(id, tok, TokenType::kNormal, false));
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const Json& a : j["added_tokens"]) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
          !a["content"].is_string())
        return error("{}: an added_tokens entry lacks an integer 'id' or string 'content'", p);
      const std::string c = a["content"].get<std::string>();
      const bool special = a.value("special", false);
      INFERA_RETURN_IF_ERROR(put(a["id"].get<int64_t>(), c, added_token_type(c, special), special));
    }
  }
  for (size_t i = 0; i < d.tokens.size(); ++i)
    if (d.tokens[i].empty()) d.tokens[i] = "[PAD" + std::to_string(i) + "]";
  d.merges = std::move(sax.merges);
  INFERA_RETURN_IF_ERROR(read_pipeline(j, p, d));
  // tokenizer_config.json: BOS/EOS, add_bos_token, chat template.
  const fs::path cfg_path = file.parent_path() / "tokenizer_config.json";
  if (fs::exists(cfg_path, ec)) {
    INFERA_ASSIGN_OR_RETURN(Json cfg, read_json_file(cfg_path.string()));
    auto id_of = [&](const std::string& content) -> int64_t {
      for (size_t i = 0; i < d.tokens.size(); ++i)
        if (d.tokens[i] == content) return static_cast<int64_t>(i);
      return -1;
    };
    if (cfg.contains("bos_token")) d.bos_id = id_of(token_content(cfg["bos_token"]));
    if (cfg.contains("eos_token")) d.eos_id = id_of(token_content(cfg["eos_token"]));
    if (cfg.contains("pad_token")) d.pad_id = id_of(token_content(cfg["pad_token"]));
    if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean()) d.add_bos = cfg["add_bos_token"].get<bool>();
    if (cfg.contains("add_eos_token") && cfg["add_eos_token"].is_boolean()) d.add_eos = cfg["add_eos_token"].get<bool>();
    if (cfg.contains("chat_template") && cfg["chat_template"].is_string())
      d.chat_template = cfg["chat_template"].get<std::string>();
  }
  return d;
}

}  // namespace infera
