#include "model/loader.h"

#include <filesystem>
#include <set>

namespace infera {

namespace fs = std::filesystem;

namespace {

std::string ne_string(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

bool same_shape(const TensorView& v, const std::vector<int64_t>& ne) {
  if (v.n_dims != static_cast<int>(ne.size())) return false;
  for (size_t i = 0; i < ne.size(); ++i)
    if (v.ne[i] != ne[i]) return false;
  return true;
}

// A lookup from a tensor name to a view in the file; nullopt = absent. Errors for present
// but unusable tensors come back as failed Results.
using Lookup = std::function<Result<std::optional<TensorView>>(const TensorSpec&, const std::string& name)>;

Result<std::vector<TensorView>> bind_weights(const std::vector<TensorSpec>& specs, const std::string& path,
                                             const Lookup& lookup, const char* shape_source) {
  std::vector<TensorView> out;
  for (const TensorSpec& s : specs) {
    INFERA_ASSIGN_OR_RETURN(std::optional<TensorView> v, lookup(s, s.name));
    if (!v && !s.fallback.empty()) {
      INFERA_ASSIGN_OR_RETURN(v, lookup(s, s.fallback));
    }
    if (!v) {
      if (s.optional) {
        out.emplace_back();
        continue;
      }
      return error("{}: required tensor '{}' is missing", path, s.name);
    }
    if (!same_shape(*v, s.ne))
      return error("{}: tensor '{}' has shape {} but {} implies {} (GGML order)", path, s.name, shape_string(*v),
                   shape_source, ne_string(s.ne));
    if (!dtype_info(v->type).weight_supported)
      return error("{}: tensor '{}' has type {}, which infera cannot use as a weight", path, s.name,
                   dtype_name(v->type));
    out.push_back(*v);
  }
  return out;
}

Result<LoadedModel> load_gguf(const std::string& path, Backend& be) {
  INFERA_ASSIGN_OR_RETURN(GgufFile f, GgufFile::open(path));
  auto file = std::make_shared<GgufFile>(std::move(f));
  INFERA_ASSIGN_OR_RETURN(std::string arch_name, file->get_string("general.architecture"));
  const Architecture* arch = find_architecture(arch_name);
  if (!arch)
    return error("{}: architecture '{}' is not supported (supported: {})", path, arch_name,
                 fmt::join(architecture_names(), ", "));
  INFERA_ASSIGN_OR_RETURN(ModelConfig c, config_from_gguf(*file, arch_name));
  arch->finish_config(c, WeightFormat::kGguf);
  const GgufTensor* embd = file->find_tensor("token_embd.weight");
  if (!embd) return error("{}: required tensor 'token_embd.weight' is missing", path);
  c.n_vocab = embd->view.ne[1];
  if (const GgufValue* vs = file->find(arch_name + ".vocab_size")) {
    auto n = vs->as_int();
    if (!n || *n != c.n_vocab)
      return error("{}: key '{}.vocab_size' is {} but token_embd.weight has {} rows", path, arch_name,
                   vs->to_display(), c.n_vocab);
  }
  if (const GgufValue* toks = file->find("tokenizer.ggml.tokens"); toks && toks->as_array()) {
    const size_t n_tok = toks->as_array()->items.size();
    if (static_cast<int64_t>(n_tok) > c.n_vocab)
      return error("{}: tokenizer has {} tokens but token_embd.weight has only {} rows", path, n_tok, c.n_vocab);
  }
  const std::vector<TensorSpec> specs = arch->tensors(c);
  Lookup lookup = [&](const TensorSpec&, const std::string& name) -> Result<std::optional<TensorView>> {
    const GgufTensor* t = file->find_tensor(name);
    if (!t) return std::optional<TensorView>();
    return std::optional<TensorView>(t->view);
  };
  INFERA_ASSIGN_OR_RETURN(std::vector<TensorView> w, bind_weights(specs, path, lookup, "the metadata"));
  std::set<std::string> known;
  for (const TensorSpec& s : specs) known.insert(s.name);
  for (const GgufTensor& t : file->tensors())
    if (!known.count(t.name))
      return error("{}: unexpected tensor '{}' for architecture '{}' (is the block count right?)", path, t.name,
                   arch_name);
  LoadedModel m;
  m.format = WeightFormat::kGguf;
  m.path = path;
  m.model = arch->create(c, std::move(w), be);
  m.gguf = std::move(file);
  return m;
}

Result<LoadedModel> load_hf(const std::string& dir, Backend& be) {
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  if (!fs::exists(cfg_path)) return error("{}: no config.json in this folder (not a Hugging Face model)", dir);
  INFERA_ASSIGN_OR_RETURN(Json cfg, read_json_file(cfg_path));
  if (!cfg.is_object()) return error("{}: not a JSON object", cfg_path);
  auto archs = cfg.find("architectures");
  if (archs == cfg.end() || !archs->is_array() || archs->empty() || !(*archs)[0].is_string())
    return error("{}: key 'architectures' must be a non-empty list of class names", cfg_path);
  const std::string hf_class = (*archs)[0].get<std::string>();
  const Architecture* arch = find_architecture_by_hf_class(hf_class);
  if (!arch) return error("{}: architecture '{}' is not supported (supported: Qwen2ForCausalLM, LlamaForCausalLM)", cfg_path, hf_class);
  INFERA_ASSIGN_OR_RETURN(ModelConfig c, config_from_hf(cfg, cfg_path, arch->name));
  arch->finish_config(c, WeightFormat::kHf);
  LoadedModel m;
  const std::string gen_path = (fs::path(dir) / "generation_config.json").string();
  if (fs::exists(gen_path)) {
    INFERA_ASSIGN_OR_RETURN(m.generation_config, read_json_file(gen_path));
    JsonObject g(m.generation_config, gen_path);
    INFERA_ASSIGN_OR_RETURN(c.bos_token_id, g.get_int_or("bos_token_id", -1));
    if (m.generation_config.contains("eos_token_id") && m.generation_config["eos_token_id"].is_array()) {
      const Json& e = m.generation_config["eos_token_id"];
      if (!e.empty() && e[0].is_number_integer()) c.eos_token_id = e[0].get<int64_t>();
    } else {
      INFERA_ASSIGN_OR_RETURN(c.eos_token_id, g.get_int_or("eos_token_id", -1));
    }
  }
  INFERA_ASSIGN_OR_RETURN(SafetensorsModel st, SafetensorsModel::open(dir));
  auto file = std::make_shared<SafetensorsModel>(std::move(st));
  const std::vector<TensorSpec> specs = arch->tensors(c);
  Lookup lookup = [&](const TensorSpec& s, const std::string& name) -> Result<std::optional<TensorView>> {
    std::string hf = name == s.name ? s.hf_name : std::string();
    if (name != s.name)  // a fallback: find the spec that owns that GGUF name
      for (const TensorSpec& o : specs)
        if (o.name == name) hf = o.hf_name;
    if (hf.empty()) return std::optional<TensorView>();
    const SafetensorsTensor* t = file->find(hf);
    if (!t) return std::optional<TensorView>();
    if (!t->view.valid())
      return error("{}: tensor '{}' has dtype {} (supported: F32, F16, BF16)", dir, hf, t->dtype);
    return std::optional<TensorView>(t->view);
  };
  INFERA_ASSIGN_OR_RETURN(std::vector<TensorView> w, bind_weights(specs, dir, lookup, "config.json"));
  std::set<std::string> known;
  for (const TensorSpec& s : specs) known.insert(s.hf_name);
  for (const SafetensorsTensor& t : file->tensors())
    if (!known.count(t.name) && !t.name.ends_with("rotary_emb.inv_freq"))
      return error("{}: unexpected tensor '{}' for {} (is num_hidden_layers right?)", dir, t.name, hf_class);
  m.format = WeightFormat::kHf;
  m.path = dir;
  m.model = arch->create(c, std::move(w), be);
  m.safetensors = std::move(file);
  return m;
}

}  // namespace

bool is_hf_folder(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

Result<LoadedModel> load_model(const std::string& path, Backend& backend) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return error("{}: no such file or folder", path);
  if (is_hf_folder(path)) return load_hf(path, backend);
  return load_gguf(path, backend);
}

}  // namespace infera
