#include "engine/chat_prompt.h"

#include "chat_template/builtin_templates.h"
#include "chat_template/chat_template.h"

namespace infera {

namespace {
// A vocabulary with the R1 turn markers as added tokens gets the R1 template when it has none.
bool uses_r1_turn_tokens(const Tokenizer& tok) {
  bool user = false, assistant = false;
  for (const AddedToken& a : tok.added_tokens()) {
    user |= a.content == "<\xEF\xBD\x9C" "User\xEF\xBD\x9C>";
    assistant |= a.content == "<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C>";
  }
  return user && assistant;
}
}  // namespace

Result<std::string> render_chat_prompt(const Tokenizer& tok, const ChatRequest& req,
                                       const std::string& template_override) {
  std::string source = template_override.empty() ? tok.chat_template() : template_override;
  if (source.empty() && uses_r1_turn_tokens(tok)) source = kR1ChatTemplate;
  if (source.empty()) return error("the model has no chat template (tokenizer_config.json chat_template or GGUF "
                                   "tokenizer.chat_template); give one with --chat-template");
  INFERA_ASSIGN_OR_RETURN(ChatTemplate tmpl, ChatTemplate::parse(source));
  if (!req.messages.is_array()) return error("messages must be a list");
  nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
  ctx["messages"] = req.messages;
  ctx["tools"] = req.tools;
  ctx["documents"] = nullptr;
  ctx["add_generation_prompt"] = req.add_generation_prompt;
  if (tok.bos_id() >= 0 && static_cast<size_t>(tok.bos_id()) < tok.vocab_size()) ctx["bos_token"] = tok.token_text(tok.bos_id());
  if (tok.eos_id() >= 0 && static_cast<size_t>(tok.eos_id()) < tok.vocab_size()) ctx["eos_token"] = tok.token_text(tok.eos_id());
  if (req.kwargs.is_object())
    for (auto it = req.kwargs.begin(); it != req.kwargs.end(); ++it) ctx[it.key()] = it.value();
  return tmpl.render(ctx);
}

}  // namespace infera
