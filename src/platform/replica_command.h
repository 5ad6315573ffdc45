// How a node turns a job's op into a process (spec platform.md §10): the vLLM server arguments of a
// `vllm/vllm-openai` op mapped onto `infera serve`, and the model name resolved to files.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace infera::platform {

struct ServeCommand {
  std::string model;                       // as the op names it ("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B")
  int port = 8000;                         // the port the op exposes (vLLM's default 8000)
  std::vector<std::string> serve_args;     // flags for `infera serve`, without --model/--port/--host
  std::vector<std::string> notes;          // accepted-without-effect arguments, for the job log
};

// Maps the vLLM server arguments (exec form, as the op's `cmd`). Unknown or unsupported arguments
// fail with "unsupported vLLM argument: --foo" so that configuration drift is never silent.
Result<ServeCommand> map_vllm_args(const std::vector<std::string>& cmd);

// The op's cmd as a list: exec form as is; a string is split like a POSIX shell word list
// (quotes and backslashes); "__remove-if-empty__" and empty elements are dropped.
Result<std::vector<std::string>> op_cmd_list(const nlohmann::json& cmd);

struct ResolvedModel {
  std::string path;        // what `infera serve --model` gets
  std::string source;      // "local path", "model store", "Hugging Face cache"
  bool demo = false;       // a generated demo model (random weights)
};

// Resolves a model name in order: an existing local path; the node's model store
// (<models_dir>/<org>/<name>/ holding an HF folder or one GGUF file, or <models_dir>/<org>/<name>.gguf);
// the Hugging Face cache (<hf_cache>/models--org--name, refs/main snapshot). Fails with the spec's
// message when none has it.
Result<ResolvedModel> resolve_model(const std::string& model, const std::string& models_dir,
                                    const std::string& hf_cache);

// Marker file that `infera model import --demo` leaves beside a generated random-weight model.
inline constexpr const char* kDemoMarker = "INFERA_DEMO_RANDOM_WEIGHTS";

// $HF_HUB_CACHE, $HF_HOME/hub, or ~/.cache/huggingface/hub.
std::string default_hf_cache();

}  // namespace infera::platform
