#include "chat_template/chat_template.h"

#include "chat_template/ast.h"
#include "chat_template/render.h"

namespace infera {

struct ChatTemplate::Impl {
  jinja::Body body;
  ChatTemplateOptions options;
};

Result<ChatTemplate> ChatTemplate::parse(const std::string& source, ChatTemplateOptions options) {
  jinja::LexOptions lex{options.trim_blocks, options.lstrip_blocks, options.keep_trailing_newline};
  INFERA_ASSIGN_OR_RETURN(jinja::Body body, jinja::parse_template(source, lex));
  auto impl = std::make_shared<Impl>();
  impl->body = std::move(body);
  impl->options = options;
  ChatTemplate t;
  t.impl_ = std::move(impl);
  return t;
}

Result<std::string> ChatTemplate::render(const nlohmann::ordered_json& context) const {
  if (!context.is_object() && !context.is_null()) return error("chat template context must be a JSON object");
  auto globals = std::make_shared<jinja::Scope>();
  jinja::install_globals(*globals);
  auto scope = std::make_shared<jinja::Scope>();
  scope->parent = globals;
  for (auto it = context.begin(); context.is_object() && it != context.end(); ++it) {
    scope->vars[it.key()] = jinja::Value::from_json(it.value());
  }
  jinja::Limits limits;
  limits.max_output = impl_->options.max_output_bytes;
  limits.max_iterations = impl_->options.max_loop_iterations;
  jinja::Renderer renderer(limits);
  return renderer.render(impl_->body, scope);
}

Result<std::string> ChatTemplate::render(const nlohmann::json& context) const {
  return render(nlohmann::ordered_json::parse(context.dump()));
}

}  // namespace infera
