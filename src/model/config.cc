#include "model/config.h"

#include <cmath>
#include <numbers>

namespace infera {

std::vector<float> llama3_rope_divisors(const Llama3RopeScaling& s, int64_t n_rot, double theta) {
  std::vector<float> out(static_cast<size_t>(n_rot / 2));
  const double low_wavelen = static_cast<double>(s.original_context) / s.low_freq_factor;
  const double high_wavelen = static_cast<double>(s.original_context) / s.high_freq_factor;
  for (size_t i = 0; i < out.size(); ++i) {
    const double inv_freq = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(n_rot));
    const double wavelen = 2.0 * std::numbers::pi / inv_freq;
    double div;
    if (wavelen < high_wavelen) {
      div = 1.0;
    } else if (wavelen > low_wavelen) {
      div = s.factor;
    } else {
      const double smooth = (static_cast<double>(s.original_context) / wavelen - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      div = 1.0 / ((1.0 - smooth) / s.factor + smooth);
    }
    out[i] = static_cast<float>(div);
  }
  return out;
}

namespace {

Status check_config(const ModelConfig& c, const std::string& where) {
  auto bad = [&](const char* what, int64_t v) { return error("{}: {} is {} (must be positive)", where, what, v); };
  if (c.n_embd <= 0) return bad("embedding size", c.n_embd);
  if (c.n_layer <= 0 || c.n_layer > 1000) return error("{}: layer count {} is out of range", where, c.n_layer);
  if (c.n_head <= 0) return bad("head count", c.n_head);
  if (c.n_head_kv <= 0) return bad("KV head count", c.n_head_kv);
  if (c.n_ff <= 0) return bad("feed-forward size", c.n_ff);
  if (c.head_dim <= 0) return bad("head size", c.head_dim);
  if (c.n_head % c.n_head_kv != 0)
    return error("{}: head count {} is not a multiple of the KV head count {}", where, c.n_head, c.n_head_kv);
  if (c.n_rot <= 0 || c.n_rot > c.head_dim || c.n_rot % 2 != 0)
    return error("{}: rotary dimension count {} must be even and within 1..{}", where, c.n_rot, c.head_dim);
  if (!(c.rms_eps > 0) || !(c.rope_theta > 0))
    return error("{}: rms epsilon {} and rope base {} must be positive", where, c.rms_eps, c.rope_theta);
  return Status::ok();
}

}  // namespace

Result<ModelConfig> config_from_gguf(const GgufFile& f, const std::string& arch) {
  ModelConfig c;
  c.arch = arch;
  const std::string p = arch + ".";
  INFERA_ASSIGN_OR_RETURN(c.n_embd, f.get_int(p + "embedding_length"));
  INFERA_ASSIGN_OR_RETURN(c.n_layer, f.get_int(p + "block_count"));
  INFERA_ASSIGN_OR_RETURN(c.n_ctx_train, f.get_int_or(p + "context_length", 4096));
  // head counts and feed_forward_length may be per-layer arrays; infera needs them uniform.
  for (auto [key, dst] : {std::pair{"feed_forward_length", &c.n_ff}, std::pair{"attention.head_count", &c.n_head},
                          std::pair{"attention.head_count_kv", &c.n_head_kv}}) {
    const GgufValue* v = f.find(p + key);
    if (!v) {
      if (std::string_view(key) == "attention.head_count_kv") continue;  // defaults to head_count
      return error("{}: required key '{}{}' is missing", f.path(), p, key);
    }
    if (v->as_array()) {
      INFERA_ASSIGN_OR_RETURN(std::vector<int64_t> per_layer, f.get_int_array(p + key));
      if (per_layer.empty()) return error("{}: key '{}{}' is an empty array", f.path(), p, key);
      for (int64_t x : per_layer)
        if (x != per_layer[0])
          return error("{}: key '{}{}' varies per layer, which infera does not support", f.path(), p, key);
      *dst = per_layer[0];
    } else {
      INFERA_ASSIGN_OR_RETURN(*dst, f.get_int(p + key));
    }
  }
  if (c.n_head_kv == 0) c.n_head_kv = c.n_head;
  if (c.n_head <= 0) return error("{}: key '{}attention.head_count' is {}", f.path(), p, c.n_head);
  INFERA_ASSIGN_OR_RETURN(c.head_dim, f.get_int_or(p + "attention.key_length", c.n_embd / c.n_head));
  INFERA_ASSIGN_OR_RETURN(int64_t vlen, f.get_int_or(p + "attention.value_length", c.head_dim));
  if (vlen != c.head_dim)
    return error("{}: key length {} differs from value length {}, which infera does not support", f.path(),
                 c.head_dim, vlen);
  INFERA_ASSIGN_OR_RETURN(c.n_rot, f.get_int_or(p + "rope.dimension_count", c.head_dim));
  INFERA_ASSIGN_OR_RETURN(double eps, f.get_float(p + "attention.layer_norm_rms_epsilon"));
  c.rms_eps = static_cast<float>(eps);
  INFERA_ASSIGN_OR_RETURN(c.rope_theta, f.get_float_or(p + "rope.freq_base", 10000.0));
  if (const GgufValue* st = f.find(p + "rope.scaling.type")) {
    const std::string* s = st->as_string();
    if (!s) return error("{}: key '{}rope.scaling.type' must be a string", f.path(), p);
    if (*s == "linear") {
      INFERA_ASSIGN_OR_RETURN(double factor, f.get_float(p + "rope.scaling.factor"));
      if (!(factor > 0)) return error("{}: rope scaling factor {} must be positive", f.path(), factor);
      c.rope_freq_scale = 1.0 / factor;
    } else if (*s != "none") {
      return error("{}: rope scaling type '{}' is not supported (supported: none, linear)", f.path(), *s);
    }
  }
  INFERA_ASSIGN_OR_RETURN(c.bos_token_id, f.get_int_or("tokenizer.ggml.bos_token_id", -1));
  INFERA_ASSIGN_OR_RETURN(c.eos_token_id, f.get_int_or("tokenizer.ggml.eos_token_id", -1));
  INFERA_RETURN_IF_ERROR(check_config(c, f.path()));
  return c;
}

Result<ModelConfig> config_from_hf(const Json& j, const std::string& path, const std::string& arch) {
  ModelConfig c;
  c.arch = arch;
  JsonObject o(j, path);
  INFERA_ASSIGN_OR_RETURN(c.n_embd, o.get_int("hidden_size"));
  INFERA_ASSIGN_OR_RETURN(c.n_layer, o.get_int("num_hidden_layers"));
  INFERA_ASSIGN_OR_RETURN(c.n_head, o.get_int("num_attention_heads"));
  INFERA_ASSIGN_OR_RETURN(c.n_head_kv, o.get_int_or("num_key_value_heads", c.n_head));
  INFERA_ASSIGN_OR_RETURN(c.n_ff, o.get_int("intermediate_size"));
  INFERA_ASSIGN_OR_RETURN(c.n_vocab, o.get_int("vocab_size"));
  INFERA_ASSIGN_OR_RETURN(c.n_ctx_train, o.get_int_or("max_position_embeddings", 4096));
  if (c.n_head <= 0) return error("{}: num_attention_heads is {}", path, c.n_head);
  INFERA_ASSIGN_OR_RETURN(c.head_dim, o.get_int_or("head_dim", c.n_embd / c.n_head));
  c.n_rot = c.head_dim;
  INFERA_ASSIGN_OR_RETURN(double eps, o.get_float_or("rms_norm_eps", 1e-6));
  c.rms_eps = static_cast<float>(eps);
  INFERA_ASSIGN_OR_RETURN(c.rope_theta, o.get_float_or("rope_theta", 10000.0));
  INFERA_ASSIGN_OR_RETURN(std::string act, o.get_string_or("hidden_act", "silu"));
  if (act != "silu") return error("{}: hidden_act '{}' is not supported (supported: silu)", path, act);
  INFERA_ASSIGN_OR_RETURN(bool tied, o.get_bool_or("tie_word_embeddings", false));
  (void)tied;  // the loader falls back to the embedding when lm_head is absent
  if (o.has("rope_scaling")) {
    const Json& rs = j.at("rope_scaling");
    if (!rs.is_object()) return error("{}: key 'rope_scaling' must be an object", path);
    JsonObject r(rs, path + " rope_scaling");
    INFERA_ASSIGN_OR_RETURN(std::string type, r.get_string_or("rope_type", ""));
    if (type.empty()) {
      INFERA_ASSIGN_OR_RETURN(type, r.get_string_or("type", ""));
    }
    if (type == "llama3") {
      Llama3RopeScaling s;
      INFERA_ASSIGN_OR_RETURN(s.factor, r.get_float("factor"));
      INFERA_ASSIGN_OR_RETURN(s.low_freq_factor, r.get_float("low_freq_factor"));
      INFERA_ASSIGN_OR_RETURN(s.high_freq_factor, r.get_float("high_freq_factor"));
      INFERA_ASSIGN_OR_RETURN(s.original_context, r.get_int("original_max_position_embeddings"));
      if (!(s.high_freq_factor > s.low_freq_factor) || !(s.factor > 0))
        return error("{}: llama3 rope_scaling needs factor > 0 and high_freq_factor > low_freq_factor", path);
      c.rope_freq_divisors = llama3_rope_divisors(s, c.n_rot, c.rope_theta);
    } else if (type == "linear") {
      INFERA_ASSIGN_OR_RETURN(double factor, r.get_float("factor"));
      if (!(factor > 0)) return error("{}: rope_scaling factor must be positive", path);
      c.rope_freq_scale = 1.0 / factor;
    } else if (!type.empty() && type != "default") {
      return error("{}: rope_scaling type '{}' is not supported (supported: llama3, linear)", path, type);
    }
  }
  INFERA_RETURN_IF_ERROR(check_config(c, path));
  return c;
}

std::string describe(const ModelConfig& c) {
  return fmt::format(
      "{}: n_layer {}, n_embd {}, n_head {}/{} kv, head_dim {}, n_ff {}, n_vocab {}, ctx {}, rope θ {} {}{}, eps {}",
      c.arch, c.n_layer, c.n_embd, c.n_head, c.n_head_kv, c.head_dim, c.n_ff, c.n_vocab, c.n_ctx_train,
      c.rope_theta, c.rope_style == RopeStyle::kNeox ? "neox" : "norm",
      c.rope_freq_divisors.empty() ? "" : " +freq factors", c.rms_eps);
}

}  // namespace infera
