// infera chat-template: render a conversation with the model's chat template, exactly.
#include <cstdio>
#include <memory>

#include "base/mapped_file.h"
#include "cli_util.h"
#include "commands.h"
#include "engine/chat_prompt.h"

namespace infera::cli {

namespace {
struct ChatTemplateArgs {
  std::string model, messages_json, tools_json, kwargs_json, template_file;
  bool add_generation_prompt = false;
};

Result<nlohmann::ordered_json> read_ordered_json(const std::string& path) {
  INFERA_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(text, nullptr, false);
  if (j.is_discarded()) return error("{}: not valid JSON", path);
  return j;
}

int run_chat_template(const ChatTemplateArgs& a) {
  auto tok = Tokenizer::load(a.model);
  if (!tok) return fail(tok.error());
  ChatRequest req;
  req.add_generation_prompt = a.add_generation_prompt;
  auto messages = read_ordered_json(a.messages_json);
  if (!messages) return fail(messages.error());
  // Either a list of messages or an object with "messages" (and optionally "tools").
  if (messages->is_object() && messages->contains("messages")) {
    req.messages = (*messages)["messages"];
    if (messages->contains("tools")) req.tools = (*messages)["tools"];
  } else {
    req.messages = *messages;
  }
  if (!req.messages.is_array()) return fail(fmt::format("{}: expected a list of messages", a.messages_json));
  if (!a.tools_json.empty()) {
    auto tools = read_ordered_json(a.tools_json);
    if (!tools) return fail(tools.error());
    req.tools = *tools;
  }
  if (!a.kwargs_json.empty()) {
    auto kw = read_ordered_json(a.kwargs_json);
    if (!kw) return fail(kw.error());
    if (!kw->is_object()) return fail(fmt::format("{}: expected a JSON object", a.kwargs_json));
    req.kwargs = *kw;
  }
  std::string override_source;
  if (!a.template_file.empty()) {
    auto t = read_text_file(a.template_file);
    if (!t) return fail(t.error());
    override_source = *t;
  }
  auto prompt = render_chat_prompt(**tok, req, override_source);
  if (!prompt) return fail(prompt.error());
  std::fwrite(prompt->data(), 1, prompt->size(), stdout);
  return 0;
}
}  // namespace

void add_chat_template(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<ChatTemplateArgs>();
  CLI::App* c = app.add_subcommand("chat-template", "Render messages with the model's chat template (printed exactly)");
  c->add_option("--model", a->model, "GGUF file, HF model folder, or folder with tokenizer files")->required();
  c->add_option("--messages-json", a->messages_json, "JSON list of {role, content} messages")->required();
  c->add_flag("--add-generation-prompt", a->add_generation_prompt, "end with the assistant turn opener");
  c->add_option("--tools-json", a->tools_json, "JSON list of tool definitions");
  c->add_option("--kwargs-json", a->kwargs_json, "JSON object of extra template variables");
  c->add_option("--chat-template", a->template_file, "use this template file instead of the model's");
  c->callback([a, exit_code] { *exit_code = run_chat_template(*a); });
}

}  // namespace infera::cli
