#include "model/layers.h"

#include <cmath>

#include "base/check.h"
#include "base/mapped_file.h"
#include "kernels/reference/ops.h"
#include "tensor/quant.h"

namespace infera::layers {

std::vector<float> to_f32(const TensorView& t) {
  if (!t.valid()) return {};
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  for (int64_t r = 0; r < t.n_rows(); ++r) dequantize_row(t.type, t.row(r), out.data() + r * t.ne[0], t.ne[0]);
  return out;
}

std::vector<float> rope_table(const ModelConfig& c, std::span<const int32_t> positions) {
  const int64_t half = c.n_rot / 2, n = static_cast<int64_t>(positions.size());
  std::vector<float> cs(static_cast<size_t>(n * half * 2));
  for (int64_t i = 0; i < half; ++i) {
    double inv_freq = std::pow(c.rope_theta, -2.0 * static_cast<double>(i) / static_cast<double>(c.n_rot));
    if (!c.rope_freq_divisors.empty()) inv_freq /= c.rope_freq_divisors[static_cast<size_t>(i)];
    for (int64_t t = 0; t < n; ++t) {
      const double angle = static_cast<double>(positions[static_cast<size_t>(t)]) * c.rope_freq_scale * inv_freq;
      cs[(t * half + i) * 2] = static_cast<float>(std::cos(angle));
      cs[(t * half + i) * 2 + 1] = static_cast<float>(std::sin(angle));
    }
  }
  return cs;
}

void rms_norm_rows(const ModelConfig& c, const float* x, const std::vector<float>& w, int64_t n, float* y) {
  CHECK(static_cast<int64_t>(w.size()) == c.n_embd);
  for (int64_t t = 0; t < n; ++t) ref::rms_norm(x + t * c.n_embd, w.data(), c.rms_eps, y + t * c.n_embd, c.n_embd);
}

namespace {
void add_bias(float* y, const std::vector<float>& b, int64_t n) {
  if (b.empty()) return;
  const int64_t d = static_cast<int64_t>(b.size());
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < d; ++i) y[t * d + i] += b[static_cast<size_t>(i)];
}
}  // namespace

void attention(Backend& be, const ModelConfig& c, const AttentionWeights& w, int64_t layer, const float* h,
               const ForwardBatch& b, std::span<const int64_t> slots, const std::vector<float>& rope, KvStore& kv,
               float* out) {
  const int64_t n = static_cast<int64_t>(b.tokens.size());
  const int64_t hd = c.head_dim, q_dim = c.q_dim(), kv_dim = c.kv_dim();
  const bool neox = c.rope_style == RopeStyle::kNeox;
  const int64_t half = c.n_rot / 2;
  std::vector<float> q(static_cast<size_t>(n * q_dim)), k(static_cast<size_t>(n * kv_dim)),
      v(static_cast<size_t>(n * kv_dim));
  const TensorView* qkv_w[3] = {&w.wq, &w.wk, &w.wv};
  float* qkv_y[3] = {q.data(), k.data(), v.data()};  // [n, q_dim], [n, kv_dim], [n, kv_dim]
  be.matmul_many(qkv_w, h, n, qkv_y);
  add_bias(q.data(), w.bq, n);
  add_bias(k.data(), w.bk, n);
  add_bias(v.data(), w.bv, n);
  for (int64_t t = 0; t < n; ++t) {
    const float* cs = rope.data() + t * half * 2;
    for (int64_t hh = 0; hh < c.n_head; ++hh) ref::rope(q.data() + t * q_dim + hh * hd, cs, c.n_rot, neox);
    for (int64_t hh = 0; hh < c.n_head_kv; ++hh) ref::rope(k.data() + t * kv_dim + hh * hd, cs, c.n_rot, neox);
    const int64_t slot = slots[static_cast<size_t>(t)];
    for (int64_t hh = 0; hh < c.n_head_kv; ++hh) {
      quantize_row(kv.type, k.data() + t * kv_dim + hh * hd, kv.k_row(layer, hh, slot), hd);
      quantize_row(kv.type, v.data() + t * kv_dim + hh * hd, kv.v_row(layer, hh, slot), hd);
    }
  }
  std::vector<float> att(static_cast<size_t>(q_dim * n));  // [n, q_dim]
  AttentionArgs a;
  a.q = q.data();
  a.n = n;
  a.n_head = c.n_head;
  a.n_head_kv = c.n_head_kv;
  a.head_dim = hd;
  a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
  a.positions = b.positions.data();
  a.seq = b.seq.data();
  a.tables = b.tables.data();
  a.block_size = kv.block_size;
  a.k = kv.k_layer(layer);
  a.v = kv.v_layer(layer);
  a.row_bytes = kv.row_bytes;
  a.head_stride = kv.head_stride();
  a.type = kv.type;
  a.out = att.data();
  be.attention(a);
  be.matmul(w.wo, att.data(), n, out);  // [n, n_embd]
}

void swiglu_ffn(Backend& be, const ModelConfig& c, const FfnWeights& w, const float* h, int64_t n, float* out) {
  std::vector<float> g(static_cast<size_t>(n * c.n_ff)), u(g.size());
  const TensorView* gu_w[2] = {&w.gate, &w.up};
  float* gu_y[2] = {g.data(), u.data()};
  be.matmul_many(gu_w, h, n, gu_y);
  be.swiglu(g.data(), u.data(), g.data(), n * c.n_ff);
  be.matmul(w.down, g.data(), n, out);
}

void decoder_forward(Backend& be, const ModelConfig& c, const DecoderWeights& w, const ForwardBatch& b, KvStore& kv,
                     std::vector<float>& logits) {
  const int64_t n = static_cast<int64_t>(b.tokens.size()), E = c.n_embd;
  std::vector<float> x(static_cast<size_t>(n * E)), h(x.size()), o(x.size());  // [n, n_embd]
  be.get_rows(w.tok_embd, b.tokens, x.data());
  const std::vector<float> rope = rope_table(c, b.positions);
  std::vector<int64_t> slots(static_cast<size_t>(n));  // the slot mapping
  for (int64_t t = 0; t < n; ++t) {
    const int64_t p = b.positions[static_cast<size_t>(t)];
    const auto& table = b.tables[static_cast<size_t>(b.seq[static_cast<size_t>(t)])];
    slots[static_cast<size_t>(t)] = table[static_cast<size_t>(p / kv.block_size)] * kv.block_size + p % kv.block_size;
  }
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const DecoderLayer& L = w.layers[static_cast<size_t>(l)];
    rms_norm_rows(c, x.data(), L.attn_norm, n, h.data());
    attention(be, c, L.attn, l, h.data(), b, slots, rope, kv, o.data());
    for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
    rms_norm_rows(c, x.data(), L.ffn_norm, n, h.data());
    swiglu_ffn(be, c, L.ffn, h.data(), n, o.data());
    for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
  }
  const int64_t rows = static_cast<int64_t>(b.logit_rows.size());
  logits.resize(static_cast<size_t>(rows * c.n_vocab));
  if (rows == 0) return;
  std::vector<float> sel(static_cast<size_t>(rows * E));
  for (int64_t r = 0; r < rows; ++r)
    std::copy_n(x.data() + b.logit_rows[static_cast<size_t>(r)] * E, E, sel.data() + r * E);
  rms_norm_rows(c, sel.data(), w.output_norm, rows, h.data());
  be.matmul(w.output, h.data(), rows, logits.data());
}

namespace {
class DecoderModel final : public Model {
 public:
  DecoderModel(const ModelConfig& c, DecoderWeights w, Backend& be) : c_(c), w_(std::move(w)), be_(be) {}
  const ModelConfig& config() const override { return c_; }

 protected:
  void forward_batch_impl(const ForwardBatch& b, KvStore& kv, std::vector<float>& logits) override {
    decoder_forward(be_, c_, w_, b, kv, logits);
  }

 private:
  ModelConfig c_;
  DecoderWeights w_;
  Backend& be_;
};
}  // namespace

std::unique_ptr<Model> make_decoder_model(const ModelConfig& c, DecoderWeights w, Backend& be) {
  // Each packed weight's file pages are released at once, so the copy replaces the file's pages in
  // RSS instead of adding to them, also at the peak during loading.
  const auto pack = [&](TensorView& v) {
    if (std::shared_ptr<const uint8_t> p = be.pack(v)) {
      v.packed = p.get();
      w.packed.push_back(std::move(p));
      release_mapped_pages(v.data, v.nbytes);
    }
  };
  for (DecoderLayer& l : w.layers) {
    for (TensorView* v : {&l.attn.wq, &l.attn.wk, &l.attn.wv, &l.attn.wo, &l.ffn.gate, &l.ffn.up, &l.ffn.down}) pack(*v);
  }
  pack(w.output);
  return std::make_unique<DecoderModel>(c, std::move(w), be);
}

}  // namespace infera::layers
