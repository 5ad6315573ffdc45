// Forced tool calls: `tool_choice` "required" or a named function, as vLLM 0.10 serves them without
// an auto tool parser: the request's `tools` become a JSON schema that guided decoding follows, and
// the generated text becomes the message's `tool_calls` (whole, or as streamed deltas).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace infera::server {

using OJson = nlohmann::ordered_json;

struct ToolChoice {
  // kAuto: the model may call tools in its own format, read out by --tool-call-parser.
  enum class Kind { kNone, kNamed, kRequired, kAuto } kind = Kind::kNone;
  std::string name;  // kNamed: the function
};

// What `tools` and `tool_choice` ask for (vLLM's check_tool_usage). `schema` receives the JSON
// schema the output must follow, or null (no tool call); a function without parameters takes an
// empty object. The error is {status, type, message}, type "Bad Request" for
// the request's shape and "BadRequestError" for the rest.
struct ToolChoiceError {
  int status;
  std::string type, message;
};
// `auto_tools`: the server has an auto tool parser (serve --enable-auto-tool-choice).
std::optional<ToolChoiceError> parse_tool_choice(const OJson& body, ToolChoice& out, OJson& schema, bool auto_tools = false);

// "chatcmpl-tool-" and 32 random hex digits.
std::string tool_call_id();

// Python's json.dumps(value, ensure_ascii=False): ", " and ": " separators, floats as repr.
std::string py_json_dumps(const OJson& value);

// A whole output's tool calls ({"id","type":"function","function":{"name","arguments"}} each):
// a named function's arguments are the text itself; "required" text must be the JSON array the
// schema describes, and each call's arguments are its parameters re-serialized as Python's
// json.dumps. An error names what is wrong (text cut short by max_tokens, not an array...).
Result<OJson> whole_tool_calls(const ToolChoice& choice, const std::string& text);

// One element of a "required" array as far as the text goes.
struct ToolCallDraft {
  std::string name;
  bool name_done = false;
  std::string arguments;  // the raw text of its "parameters" value so far
  bool arguments_started = false;
};
// Reads a possibly unfinished `[{"name": ..., "parameters": ...}, ...]`; stops at the first byte
// that does not fit (text from guided decoding always fits).
std::vector<ToolCallDraft> read_tool_call_drafts(std::string_view text);

// Streams "required" tool calls: each call's first delta carries its id, type, name and the
// arguments so far; later deltas carry the arguments' new text. Feed the whole text after reasoning.
class RequiredToolCallStream {
 public:
  // The tool_calls delta entries for what `text` adds to the text fed before (maybe none).
  OJson update(std::string_view text);
  bool any() const { return !sent_.empty(); }

 private:
  std::vector<size_t> sent_;  // per call: argument bytes sent
};

}  // namespace infera::server
