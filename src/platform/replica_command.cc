#include "platform/replica_command.h"

#include "hub/hub_http.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include <fmt/format.h>

namespace infera::platform {

namespace fs = std::filesystem;

namespace {

enum class Arg {
  kModel,       // --model M
  kPort,        // --port P
  kHost,        // --host H: ignored, the node binds loopback
  kPass,        // same flag and value(s) on infera serve
  kPassFlag,    // same flag, no value
  kNamesPass,   // --served-model-name N [N...]
  kAccept,      // takes a value; accepted, no effect here
  kAcceptFlag,  // no value; accepted, no effect here
  kWarn,        // takes a value; accepted with a warning
  kWarnFlag,
  kCheckOne,    // must be 1 (parallel sizes)
  kKvDtype,     // auto (dropped), f16 / q8_0 (passed), fp8* (an 8-bit cache: q8_0)
  kUnsupported, // takes a value; fails
};

const std::map<std::string, Arg>& table() {
  static const std::map<std::string, Arg> t = {
      {"--model", Arg::kModel},
      {"--port", Arg::kPort},
      {"--host", Arg::kHost},
      {"--served-model-name", Arg::kNamesPass},
      {"--max-model-len", Arg::kPass},
      {"--api-key", Arg::kPass},
      {"--reasoning-parser", Arg::kPass},
      {"--chat-template", Arg::kPass},
      {"--generation-config", Arg::kPass},
      {"--enable-reasoning", Arg::kAcceptFlag},
      {"--response-role", Arg::kAccept},
      {"--trust-request-chat-template", Arg::kAcceptFlag},
      {"--enable-prompt-tokens-details", Arg::kAcceptFlag},
      {"--enable-force-include-usage", Arg::kAcceptFlag},
      {"--enable-request-id-headers", Arg::kAcceptFlag},
      {"--return-tokens-as-token-ids", Arg::kAcceptFlag},
      {"--max-logprobs", Arg::kAccept},
      {"--seed", Arg::kAccept},
      {"--enable-server-load-tracking", Arg::kAcceptFlag},
      {"--dtype", Arg::kAccept},
      {"--max-num-seqs", Arg::kPass},
      {"--max-num-batched-tokens", Arg::kPass},
      {"--enable-prefix-caching", Arg::kAcceptFlag},
      {"--no-enable-prefix-caching", Arg::kPassFlag},
      {"--enable-chunked-prefill", Arg::kAcceptFlag},
      {"--block-size", Arg::kPass},
      {"--gpu-memory-utilization", Arg::kAccept},
      {"--kv-cache-dtype", Arg::kKvDtype},
      {"--tensor-parallel-size", Arg::kCheckOne},
      {"--pipeline-parallel-size", Arg::kCheckOne},
      {"--enforce-eager", Arg::kAcceptFlag},
      {"--trust-remote-code", Arg::kAcceptFlag},
      {"--disable-log-requests", Arg::kAcceptFlag},
      {"--disable-log-stats", Arg::kAcceptFlag},
      {"--uvicorn-log-level", Arg::kAccept},
      {"--swap-space", Arg::kAccept},
      {"--download-dir", Arg::kAccept},
      {"--enable-auto-tool-choice", Arg::kWarnFlag},
      {"--tool-call-parser", Arg::kWarn},
      {"--quantization", Arg::kUnsupported},
  };
  return t;
}

}  // namespace

Result<ServeCommand> map_vllm_args(const std::vector<std::string>& cmd) {
  ServeCommand out;
  size_t i = 0;
  auto value = [&](const std::string& flag, std::optional<std::string>& inline_value) -> Result<std::string> {
    if (inline_value) return *inline_value;
    if (i + 1 >= cmd.size()) return error("vLLM argument {} needs a value", flag);
    return cmd[++i];
  };
  for (; i < cmd.size(); ++i) {
    std::string a = cmd[i];
    std::optional<std::string> inline_value;
    if (a.rfind("--", 0) == 0) {
      if (auto eq = a.find('='); eq != std::string::npos) {
        inline_value = a.substr(eq + 1);
        a = a.substr(0, eq);
      }
    } else {
      if (i == 0 && out.model.empty()) {  // `vllm serve M` / api_server positional model
        out.model = a;
        continue;
      }
      if (a == "serve" && i == 0) continue;
      return error("unsupported vLLM argument: {}", a);
    }
    auto it = table().find(a);
    if (it == table().end()) return error("unsupported vLLM argument: {}", a);
    switch (it->second) {
      case Arg::kModel: {
        INFERA_ASSIGN_OR_RETURN(out.model, value(a, inline_value));
        break;
      }
      case Arg::kPort: {
        INFERA_ASSIGN_OR_RETURN(std::string p, value(a, inline_value));
        out.port = std::atoi(p.c_str());
        if (out.port <= 0 || out.port > 65535) return error("vLLM argument --port: bad port {}", p);
        break;
      }
      case Arg::kHost: {
        INFERA_ASSIGN_OR_RETURN(std::string h, value(a, inline_value));
        out.notes.push_back(fmt::format("--host {} ignored: the node binds the replica to loopback", h));
        break;
      }
      case Arg::kPass: {
        INFERA_ASSIGN_OR_RETURN(std::string v, value(a, inline_value));
        out.serve_args.push_back(a);
        out.serve_args.push_back(v);
        break;
      }
      case Arg::kPassFlag:
        out.serve_args.push_back(a);
        break;
      case Arg::kNamesPass: {
        if (inline_value) {
          out.serve_args.push_back(a);
          out.serve_args.push_back(*inline_value);
          break;
        }
        bool any = false;
        while (i + 1 < cmd.size() && cmd[i + 1].rfind("--", 0) != 0) {
          out.serve_args.push_back(a);
          out.serve_args.push_back(cmd[++i]);
          any = true;
        }
        if (!any) return error("vLLM argument {} needs a value", a);
        break;
      }
      case Arg::kAccept: {
        INFERA_ASSIGN_OR_RETURN(std::string v, value(a, inline_value));
        out.notes.push_back(fmt::format("{} {} accepted (no effect on this engine yet)", a, v));
        break;
      }
      case Arg::kAcceptFlag:
        out.notes.push_back(fmt::format("{} accepted (no effect on this engine yet)", a));
        break;
      case Arg::kWarn: {
        INFERA_ASSIGN_OR_RETURN(std::string v, value(a, inline_value));
        out.notes.push_back(fmt::format("warning: {} {} accepted; tool_choice \"auto\" still answers 400", a, v));
        break;
      }
      case Arg::kWarnFlag:
        out.notes.push_back(fmt::format("warning: {} accepted; tool_choice \"auto\" still answers 400", a));
        break;
      case Arg::kCheckOne: {
        INFERA_ASSIGN_OR_RETURN(std::string v, value(a, inline_value));
        if (v != "1") return error("unsupported vLLM argument: {} {}", a, v);
        break;
      }
      case Arg::kKvDtype: {
        INFERA_ASSIGN_OR_RETURN(std::string v, value(a, inline_value));
        if (v == "auto") break;
        if (v == "fp8" || v == "fp8_e4m3" || v == "fp8_e5m2") {
          out.notes.push_back(fmt::format("{} {}: the CPU engine's 8-bit KV cache is q8_0", a, v));
          v = "q8_0";
        }
        if (v != "f16" && v != "q8_0") return error("unsupported vLLM argument: {} {}", a, v);
        out.serve_args.push_back(a);
        out.serve_args.push_back(v);
        break;
      }
      case Arg::kUnsupported: {
        INFERA_ASSIGN_OR_RETURN(std::string v, value(a, inline_value));
        return error("unsupported vLLM argument: {} {}", a, v);
      }
    }
  }
  if (out.model.empty()) out.model = "facebook/opt-125m";  // vLLM's default model
  return out;
}

Result<std::vector<std::string>> op_cmd_list(const nlohmann::json& cmd) {
  std::vector<std::string> out;
  if (cmd.is_null()) return out;
  if (cmd.is_array()) {
    for (const auto& e : cmd) {
      if (!e.is_string()) return error("cmd: expected strings");
      std::string s = e;
      if (s.empty() || s == "__remove-if-empty__") continue;
      out.push_back(s);
    }
    return out;
  }
  if (!cmd.is_string()) return error("cmd: expected string or array");
  const std::string s = cmd;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quote) {
      if (c == quote) quote = 0;
      else if (c == '\\' && quote == '"' && i + 1 < s.size()) cur += s[++i];
      else cur += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < s.size()) {
      cur += s[++i];
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) out.push_back(cur);
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (quote) return error("cmd: unterminated quote");
  if (in_word) out.push_back(cur);
  return out;
}

std::string default_hf_cache() { return hub::default_cache_dir(); }

namespace {

// A folder holding an HF model (config.json) or exactly one GGUF file (or a split set).
std::optional<std::string> model_in_folder(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return std::nullopt;
  if (fs::exists(dir / "config.json", ec)) return dir.string();
  std::vector<std::string> ggufs;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() > 5 && name.substr(name.size() - 5) == ".gguf") ggufs.push_back(e.path().string());
  }
  std::sort(ggufs.begin(), ggufs.end());
  if (ggufs.size() == 1) return ggufs[0];
  for (const auto& g : ggufs)
    if (g.find("-00001-of-") != std::string::npos) return g;
  return std::nullopt;
}

}  // namespace

Result<ResolvedModel> resolve_model(const std::string& model, const std::string& models_dir,
                                    const std::string& hf_cache) {
  std::error_code ec;
  ResolvedModel r;
  if (!model.empty() && fs::exists(model, ec)) {
    r.path = model;
    r.source = "local path";
    r.demo = fs::exists(fs::path(model).parent_path() / kDemoMarker, ec) || fs::exists(fs::path(model) / kDemoMarker, ec);
    return r;
  }
  const bool repo_like = model.find("..") == std::string::npos && !model.empty() && model[0] != '/';
  if (repo_like && !models_dir.empty()) {
    const fs::path dir = fs::path(models_dir) / model;
    if (auto p = model_in_folder(dir)) {
      r.path = *p;
      r.source = "model store";
      r.demo = fs::exists(dir / kDemoMarker, ec);
      return r;
    }
    if (fs::is_regular_file(fs::path(models_dir) / (model + ".gguf"), ec)) {
      r.path = (fs::path(models_dir) / (model + ".gguf")).string();
      r.source = "model store";
      return r;
    }
  }
  if (repo_like && model.find('/') != std::string::npos && !hf_cache.empty()) {
    std::string repo_dir = "models--" + model;
    for (size_t p = 0; (p = repo_dir.find('/', p)) != std::string::npos;) repo_dir.replace(p, 1, "--");
    const fs::path base = fs::path(hf_cache) / repo_dir;
    std::ifstream ref(base / "refs" / "main");
    std::string commit;
    if (ref && std::getline(ref, commit) && !commit.empty()) {
      if (auto p = model_in_folder(base / "snapshots" / commit)) {
        r.path = *p;
        r.source = "Hugging Face cache";
        return r;
      }
    }
  }
  return error(
      "model {} is not in the model store ({}) nor in the Hugging Face cache ({}); run `infera pull {}`, put the files "
      "in {}/{}/ (or run `infera model import PATH --as {}`), or give a local path",
      model, models_dir, hf_cache, model, models_dir, model, model);
}

}  // namespace infera::platform
