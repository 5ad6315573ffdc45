// Jinja2-subset interpreter for Hugging Face chat templates.
//
//   auto tmpl = infera::ChatTemplate::parse(source);            // Result<ChatTemplate>
//   auto text = tmpl->render(nlohmann::ordered_json{...});      // Result<std::string>
//
// Semantics follow Python Jinja2 as transformers configures it (ImmutableSandboxedEnvironment, trim_blocks,
// lstrip_blocks, loopcontrols, no autoescape, transformers' `tojson`, globals raise_exception / strftime_now).
// Unsupported constructs fail at parse or render time with "chat template line N: ..."; a template's own
// raise_exception(msg) fails with exactly "TemplateError: msg".
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace infera {

namespace jinja {
struct Stmt;
}

struct ChatTemplateOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
  size_t max_output_bytes = 64u << 20;
  int64_t max_loop_iterations = 1'000'000;  // total over all loops of one render
};

class ChatTemplate {
 public:
  static Result<ChatTemplate> parse(const std::string& source, ChatTemplateOptions options = {});

  // `context` must be a JSON object (or null: no variables); its keys become template variables (JSON null => None, absent =>
  // undefined). Prefer ordered_json: object key order is visible through `tojson` and iteration, and
  // nlohmann::json has already sorted the keys alphabetically.
  Result<std::string> render(const nlohmann::ordered_json& context) const;
  Result<std::string> render(const nlohmann::json& context) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace infera
