// Chat-template parsing and rendering of arbitrary template text: a Status, never a crash or hang
// (the interpreter bounds recursion, loop iterations and output size).
#include "chat_template/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string source(reinterpret_cast<const char*>(data), size);
  infera::ChatTemplateOptions opts;
  opts.max_output_bytes = 1 << 20;
  opts.max_loop_iterations = 100000;
  auto t = infera::ChatTemplate::parse(source, opts);
  if (!t.ok()) return 0;
  static const nlohmann::ordered_json ctx = nlohmann::ordered_json::parse(R"({
    "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "Hi {{ x }}"},
                 {"role": "assistant", "content": "r</think>\n\nok"},
                 {"role": "assistant", "content": null, "tool_calls": [{"type": "function",
                   "function": {"name": "f", "arguments": "{\"a\": 1}"}}]},
                 {"role": "tool", "content": "42"}],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>", "tools": null,
    "documents": null})");
  (void)t->render(ctx);
  return 0;
}
