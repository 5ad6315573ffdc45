#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <queue>

#include "tokenizer/unicode.h"

namespace infera {

namespace {
constexpr size_t kMaxCachedPiece = 128;
constexpr size_t kMaxCacheEntries = 1 << 17;
}  // namespace

void Tokenizer::finish_init() {
  added_kind_.assign(tokens_.size(), 0);
  added_by_first_byte_.assign(256, {});
  for (size_t i = 0; i < added_.size(); ++i) {
    const AddedToken& a = added_[i];
    if (a.content.empty()) continue;
    added_kind_[static_cast<size_t>(a.id)] = a.special ? 2 : 1;
    added_by_first_byte_[static_cast<uint8_t>(a.content[0])].push_back(static_cast<int32_t>(i));
  }
  for (auto& v : added_by_first_byte_)
    std::stable_sort(v.begin(), v.end(), [&](int32_t a, int32_t b) {
      return added_[static_cast<size_t>(a)].content.size() > added_[static_cast<size_t>(b)].content.size();
    });
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < added_kind_.size() && added_kind_[static_cast<size_t>(id)] == 2;
}

// BPE over one pre-tokenized piece (raw bytes). Symbols form a linked list; a min-heap of
// candidate pairs ordered by (rank, position) gives O(n log n) even for very long pieces.
// Scratch buffers are per thread, so steady-state encoding does not allocate.
void Tokenizer::bpe(std::string_view piece, std::vector<int32_t>& out) const {
  const tok::ByteLevel& bl = tok::ByteLevel::get();
  if (ignore_merges_) {
    std::string enc;
    for (char c : piece) enc += bl.encode[static_cast<uint8_t>(c)];
    if (const int32_t id = vocab_.find(enc); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  struct Sym {
    int32_t id, prev, next;
  };
  struct Cand {
    int32_t rank, left, left_id, right_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  thread_local std::vector<Sym> s;
  thread_local std::vector<Cand> heap;
  const int32_t n = static_cast<int32_t>(piece.size());
  s.resize(static_cast<size_t>(n));
  heap.clear();
  for (int32_t i = 0; i < n; ++i) s[i] = {byte_ids_[static_cast<uint8_t>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1};
  auto push = [&](int32_t left) {
    if (left < 0 || s[left].next < 0) return;
    const int32_t r = s[left].next;
    if (const tok::MergeTable::Entry* m = merges_.find(s[left].id, s[r].id)) {
      heap.push_back({m->rank, left, s[left].id, s[r].id});
      std::push_heap(heap.begin(), heap.end(), std::greater<Cand>());
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<Cand>());
    const Cand c = heap.back();
    heap.pop_back();
    // Stale candidates: the left symbol was merged away (id -1) or changed, or its neighbour did.
    if (s[c.left].id != c.left_id) continue;
    const int32_t r = s[c.left].next;
    if (r < 0 || s[r].id != c.right_id) continue;
    s[c.left].id = merges_.find(c.left_id, c.right_id)->result;
    s[c.left].next = s[r].next;
    if (s[r].next >= 0) s[s[r].next].prev = c.left;
    s[r].id = -1;
    push(s[c.left].prev);
    push(c.left);
  }
  for (int32_t i = 0; i >= 0 && i < n; i = s[i].next) out.push_back(s[i].id);
}

void Tokenizer::encode_text(std::string_view text, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  const std::string normalized = nfc_ ? tok::nfc(text) : std::string();
  const std::string_view t = nfc_ ? std::string_view(normalized) : text;
  std::vector<std::string_view> pieces;
  pre_.split(t, pieces);
  for (std::string_view p : pieces) {
    if (p.size() <= kMaxCachedPiece) {
      std::lock_guard<std::mutex> lock(cache_mu_);
      if (auto it = cache_.find(p); it != cache_.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        continue;
      }
    }
    const size_t start = out.size();
    bpe(p, out);
    if (p.size() <= kMaxCachedPiece) {
      std::lock_guard<std::mutex> lock(cache_mu_);
      if (cache_.size() >= kMaxCacheEntries) cache_.clear();
      cache_.emplace(std::string(p), std::vector<int32_t>(out.begin() + static_cast<std::ptrdiff_t>(start), out.end()));
    }
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view input, const EncodeOptions& o) const {
  std::string sanitized;
  std::string_view text = input;
  for (size_t i = 0; i < input.size();) {
    const size_t n = tok::utf8_seq_len(input, i);
    if (n == 0) {
      sanitized = tok::sanitize_utf8(input);
      text = sanitized;
      break;
    }
    i += n;
  }
  std::vector<int32_t> out;
  if (o.add_special_tokens && add_bos_ && bos_id_ >= 0) out.push_back(bos_id_);
  size_t seg = 0;
  if (o.specials != SpecialTokens::kNone) {
    for (size_t i = 0; i < text.size();) {
      int32_t hit = -1;
      for (int32_t k : added_by_first_byte_[static_cast<uint8_t>(text[i])]) {
        const AddedToken& a = added_[static_cast<size_t>(k)];
        if (a.special && o.specials == SpecialTokens::kNonSpecialOnly) continue;
        if (text.compare(i, a.content.size(), a.content) == 0) {
          hit = k;
          break;
        }
      }
      if (hit < 0) {
        ++i;
        continue;
      }
      encode_text(text.substr(seg, i - seg), out);
      out.push_back(added_[static_cast<size_t>(hit)].id);
      i += added_[static_cast<size_t>(hit)].content.size();
      seg = i;
    }
  }
  encode_text(text.substr(seg), out);
  return out;
}

std::string Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= tokens_.size()) return {};
  const std::string& t = tokens_[static_cast<size_t>(id)];
  std::string out;
  if (!tok::ByteLevel::get().decode(t, &out)) return t;  // not byte-level text (e.g. "<｜User｜>"): raw
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (skip_special && is_special(id)) continue;
    bytes += token_bytes(id);
  }
  return tok::sanitize_utf8(bytes);
}

}  // namespace infera
