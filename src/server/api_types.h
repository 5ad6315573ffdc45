// OpenAI / vLLM request parsing and validation (vLLM 0.10.2's rules and messages) and the pieces of
// response formatting that need Python's conventions. See docs and the API contract for details.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/generator.h"
#include "engine/regex_dfa.h"
#include "server/tool_calls.h"
#include "tokenizer/tokenizer.h"

namespace infera::server {

using OJson = nlohmann::ordered_json;

// String constants for co_await'ed calls (GCC 12 rejects string literals converted to std::string
// inside co_await expressions: "array used as initializer").
inline const std::string kJsonType = "application/json";
inline const std::string kSseType = "text/event-stream; charset=utf-8";
inline const std::string kPromType = "text/plain; version=0.0.4; charset=utf-8";
inline const std::string kUnauthorizedBody = "{\"error\":\"Unauthorized\"}";
inline const std::string kDone = "data: [DONE]\n\n";
inline const std::string kEmpty;

// An error answered as {"error":{"message","type","param":null,"code"}}.
struct ApiError {
  // A constructor, not aggregate initialization: GCC 12 miscompiles string-literal aggregates
  // inside co_await expressions ("array used as initializer").
  ApiError(int s, std::string t, std::string m) : status(s), type(std::move(t)), message(std::move(m)) {}
  int status = 400;
  std::string type = "BadRequestError";
  std::string message;
};

// Python's str(float): shortest round trip, integral values keep ".0".
std::string py_float(double x);

struct GenerationDefaults {  // from generation_config.json ("auto"), else vLLM's
  std::optional<double> temperature, top_p, min_p, repetition_penalty;
  std::optional<int64_t> top_k, max_new_tokens;
  std::vector<int32_t> eos_ids;
};

// The most choices (n) one request may ask for, and the most sequences (batched prompts x n).
inline constexpr int64_t kMaxChoices = 128;
inline constexpr int64_t kMaxSequencesPerRequest = 2048;

// What both endpoints share, after validation.
struct CompletionParams {
  GenerationParams gen;
  std::optional<int64_t> max_tokens;  // request cap (null: the rest of the context)
  int64_t n = 1;
  bool stream = false;
  bool include_usage = false, continuous_usage = false;
  std::vector<std::string> stop;
  std::vector<std::string> bad_words;  // chat only: tokenized into GenerationParams::bad_words_ids
  enum class Structured { kNone, kJsonObject, kChoice, kRegex } structured = Structured::kNone;
  std::vector<std::string> choices;  // kChoice
  // kRegex: guided_regex, or a JSON schema turned into one (`regex_source` names the field, for
  // errors); ApiServer compiles it to `dfa` off the HTTP thread.
  std::string regex, regex_source;
  std::shared_ptr<const ByteDfa> dfa;
  ToolChoice tool_choice;  // chat: "required" or a named function turns the output into tool_calls
  bool include_stop_str = false;
  bool skip_special_tokens = true;
  bool echo = false;
  bool echo_only = false;  // completions' echo with max_tokens 0: the prompt alone (one token is generated)
  bool return_token_ids = false;
  bool tokens_as_ids = false;  // return_tokens_as_token_ids
  // logprobs / prompt_logprobs of -1 (the whole vocabulary): refused against the vocabulary size
  bool logprobs_all = false, prompt_logprobs_all = false;
  bool include_reasoning = true;
  int64_t truncate_prompt_tokens = 0;  // 0: off; -1: max_model_len; k: keep the last k
  std::string request_id;  // body's request_id
};

// Reads the sampling and stopping fields common to chat and completions. `max_tokens_default`:
// completions default to 16, chat to null.
// `auto_tools`: the server reads tool calls out of answers (serve --enable-auto-tool-choice).
std::optional<ApiError> parse_common(const OJson& body, const GenerationDefaults& d, bool is_chat,
                                     CompletionParams& out, bool auto_tools = false);

// Sampling-parameter checks with vLLM's messages (after the context check fixed max_tokens).
std::optional<ApiError> validate_sampling(const CompletionParams& p);

// Incremental text of one choice, as vLLM's detokenizer: text whose decoding ends in U+FFFD (an
// incomplete or invalid UTF-8 tail) is held back until a later token completes it, and never
// emitted if none does; stop strings are searched in the decoded text and, while streaming, the
// last max(len(stop)) - 1 characters are held back until they cannot start a match;
// skip_special_tokens drops special tokens. Feed tokens; take() returns text that is safe to emit.
class TextAssembler {
 public:
  TextAssembler(const Tokenizer& tok, const CompletionParams& p);
  void push(int32_t token);
  // Text ready to emit now; after a stop-string match, the text up to it (and stopped() is true).
  std::string take(bool final);
  bool stopped() const { return stopped_; }
  const std::string& stop_string() const { return stop_string_; }

 private:
  const Tokenizer& tok_;
  const CompletionParams& p_;
  std::string bytes_;    // all generated bytes so far
  size_t decoded_ = 0;   // bytes_[0, decoded_) decodes without a U+FFFD tail
  size_t emitted_ = 0;   // bytes of text handed out
  size_t lookback_ = 0;  // characters: max stop length - 1 (how far back a new match may start)
  size_t holdback_ = 0;  // characters not emitted yet while streaming (lookback_, or 0 when the stop string stays)
  bool stopped_ = false;
  std::string stop_string_;
};

// Python's int(s) for base-10 text (sign, underscores between digits, surrounding whitespace).
std::optional<int64_t> py_int(const std::string& s);

// Python's len() of UTF-8 text: its code points.
int64_t py_len(std::string_view utf8);

}  // namespace infera::server
