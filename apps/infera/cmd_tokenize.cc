// infera tokenize: text -> token ids (and back) with the model's own tokenizer.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli_util.h"
#include "commands.h"
#include "formats/json_util.h"
#include "tokenizer/tokenizer.h"

namespace infera::cli {

namespace {
struct TokenizeArgs {
  std::string model, text, input_jsonl;
  bool special = false, decode = false, add_bos = false;
};

std::string ids_json(const std::vector<int32_t>& ids) { return Json{{"ids", ids}}.dump(); }

int run_tokenize(const TokenizeArgs& a) {
  auto t = Tokenizer::load(a.model);
  if (!t) return fail(t.error());
  const EncodeOptions opts{a.add_bos, a.special ? SpecialTokens::kAll : SpecialTokens::kNone};
  if (!a.input_jsonl.empty()) {
    std::ifstream in(a.input_jsonl);
    if (!in) return fail(fmt::format("{}: cannot open", a.input_jsonl));
    size_t line_no = 0;
    for (std::string line; std::getline(in, line);) {
      ++line_no;
      if (line.empty()) continue;
      Json j = Json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("text") || !j["text"].is_string())
        return fail(fmt::format("{}:{}: expected a JSON object with a string \"text\"", a.input_jsonl, line_no));
      std::printf("%s\n", ids_json((*t)->encode(j["text"].get<std::string>(), opts)).c_str());
    }
    return 0;
  }
  if (a.decode) {
    auto ids = parse_token_ids(a.text);
    if (!ids) return fail(ids.error());
    for (int32_t id : *ids)
      if (id >= static_cast<int32_t>((*t)->vocab_size())) return fail(fmt::format("token id {} is outside the vocabulary", id));
    std::printf("%s\n", (*t)->decode(*ids, !a.special).c_str());
    return 0;
  }
  const std::vector<int32_t> ids = (*t)->encode(a.text, opts);
  for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? " " : "", ids[i]);
  std::printf("\n");
  return 0;
}
}  // namespace

void add_tokenize(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<TokenizeArgs>();
  CLI::App* c = app.add_subcommand("tokenize", "Encode text to token ids (or decode ids with --decode)");
  c->add_option("--model", a->model, "GGUF file, HF model folder, or folder/file with tokenizer.json")->required();
  c->add_option("text", a->text, "text to encode (with --decode: ids to decode)");
  c->add_option("--input-jsonl", a->input_jsonl, "lines {\"text\": ...}; writes one {\"ids\": [...]} line each");
  c->add_flag("--special", a->special, "parse special-token text into special ids (decode: keep special tokens)");
  c->add_flag("--add-bos", a->add_bos, "prepend BOS as the tokenizer's post-processor does");
  c->add_flag("--decode", a->decode, "decode ids to text");
  c->callback([a, exit_code] { *exit_code = run_tokenize(*a); });
}

}  // namespace infera::cli
