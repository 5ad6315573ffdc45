// Automatic tool calls (`tool_choice` "auto" with `serve --enable-auto-tool-choice
// --tool-call-parser NAME`, as vLLM's): the model writes its calls as text in its own format and a
// parser reads them out of the answer. Formats:
//   hermes       Qwen2.5, Hermes, ...: <tool_call>{"name": ..., "arguments": {...}}</tool_call>, any number,
//                after optional text (the content)
//   llama3_json  Llama 3.1 / 3.2: the whole answer is {"name": ..., "parameters": {...}} objects
//                separated by "; ", after an optional <|python_tag|>
//   deepseek_v3  DeepSeek V3 / R1 and their distills: <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function
//                <｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>
// Like vLLM's parsers, an answer whose calls cannot be read is all content (no call).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace infera::server {

using OJson = nlohmann::ordered_json;

struct ParsedToolCalls {
  OJson calls = OJson::array();         // {"id","type":"function","function":{"name","arguments"}} each
  std::optional<std::string> content;   // the text outside the calls (nullopt: none)
};

class ToolCallParser {
 public:
  virtual ~ToolCallParser() = default;
  // The calls of a whole answer. With `final` false the text may go on: only calls that are
  // already whole count (and content is not set).
  virtual ParsedToolCalls extract(std::string_view text, bool final) const = 0;
  // Where the calls begin in `text`, or npos; `held` gets how many bytes at its end could still
  // turn into the beginning (not to be streamed as content yet).
  virtual size_t calls_begin(std::string_view text, size_t& held) const = 0;
};

// The parser of a --tool-call-parser name, or null.
std::unique_ptr<ToolCallParser> make_tool_call_parser(std::string_view name);
// The names make_tool_call_parser knows, for messages.
const std::vector<std::string>& tool_call_parser_names();

// One choice's streamed answer under a parser: text before the calls streams as content (minus a
// possible beginning of the marker); each call goes out whole, as one delta with its id, type,
// name and arguments, once it is complete (at the latest when the answer ends).
class AutoToolCallStream {
 public:
  explicit AutoToolCallStream(const ToolCallParser& parser) : parser_(parser) {}
  struct Delta {
    std::string content;
    OJson calls = OJson::array();
  };
  Delta update(std::string_view delta, bool final);
  bool any() const { return calls_sent_ > 0; }

 private:
  const ToolCallParser& parser_;
  std::string text_;
  size_t content_sent_ = 0, calls_sent_ = 0;
  size_t begin_ = std::string::npos;  // where the calls begin, once seen
};

}  // namespace infera::server
