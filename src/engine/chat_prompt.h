// Renders a conversation into the prompt text a model expects, with the model's own chat template
// and special tokens, the way vLLM's chat endpoint does (transformers' apply_chat_template).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "tokenizer/tokenizer.h"

namespace infera {

struct ChatRequest {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  bool add_generation_prompt = true;
  nlohmann::ordered_json tools;                                    // null: no tools
  nlohmann::ordered_json kwargs = nlohmann::ordered_json::object();  // extra template variables
};

// `template_override`: a template source to use instead of the tokenizer's (empty: the tokenizer's).
Result<std::string> render_chat_prompt(const Tokenizer& tok, const ChatRequest& req,
                                       const std::string& template_override = {});

}  // namespace infera
