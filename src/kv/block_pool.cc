#include "kv/block_pool.h"

#include "base/check.h"

namespace infera::kv {

BlockPool::BlockPool(int32_t num_blocks, bool prefix_caching) : blocks_(static_cast<size_t>(num_blocks)),
                                                                 prefix_caching_(prefix_caching) {
  CHECK(num_blocks >= 2);
  blocks_[0].ref_cnt = 1;  // the null block is permanently "in use"
  for (int32_t id = 1; id < num_blocks; ++id) push_tail(id);
}

double BlockPool::usage() const {
  const int32_t usable = num_blocks() - 1;
  return static_cast<double>(usable - num_free_) / static_cast<double>(usable);
}

void BlockPool::push_tail(int32_t id) {
  Block& b = blocks_[static_cast<size_t>(id)];
  CHECK(!b.in_free_list);
  b.prev = tail_;
  b.next = -1;
  if (tail_ >= 0) blocks_[static_cast<size_t>(tail_)].next = id;
  else head_ = id;
  tail_ = id;
  b.in_free_list = true;
  ++num_free_;
}

void BlockPool::unlink(int32_t id) {
  Block& b = blocks_[static_cast<size_t>(id)];
  CHECK(b.in_free_list);
  if (b.prev >= 0) blocks_[static_cast<size_t>(b.prev)].next = b.next;
  else head_ = b.next;
  if (b.next >= 0) blocks_[static_cast<size_t>(b.next)].prev = b.prev;
  else tail_ = b.prev;
  b.prev = b.next = -1;
  b.in_free_list = false;
  --num_free_;
}

void BlockPool::evict(int32_t id) {
  Block& b = blocks_[static_cast<size_t>(id)];
  if (!b.has_hash) return;
  auto it = cached_.find(b.hash);
  if (it != cached_.end() && it->second == id) cached_.erase(it);
  b.has_hash = false;
  b.hash = 0;
}

std::vector<int32_t> BlockPool::allocate(int32_t n) {
  CHECK(n >= 0 && n <= num_free_);
  std::vector<int32_t> out;
  out.reserve(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    const int32_t id = head_;
    unlink(id);
    evict(id);
    blocks_[static_cast<size_t>(id)].ref_cnt = 1;
    out.push_back(id);
  }
  return out;
}

void BlockPool::touch(std::span<const int32_t> ids) {
  for (int32_t id : ids) {
    Block& b = blocks_[static_cast<size_t>(id)];
    if (b.ref_cnt == 0) unlink(id);
    ++b.ref_cnt;
  }
}

void BlockPool::free(std::span<const int32_t> ids) {
  for (int32_t id : ids) {
    if (id == kNullBlock) continue;
    Block& b = blocks_[static_cast<size_t>(id)];
    CHECK(b.ref_cnt > 0);
    if (--b.ref_cnt == 0) push_tail(id);
  }
}

void BlockPool::cache(int32_t id, BlockHash hash) {
  if (!prefix_caching_) return;
  Block& b = blocks_[static_cast<size_t>(id)];
  if (b.has_hash) return;
  if (cached_.contains(hash)) return;  // another block already holds this content
  b.has_hash = true;
  b.hash = hash;
  cached_.emplace(hash, id);
}

std::optional<int32_t> BlockPool::lookup(BlockHash hash) const {
  if (!prefix_caching_) return std::nullopt;
  auto it = cached_.find(hash);
  if (it == cached_.end()) return std::nullopt;
  return it->second;
}

bool BlockPool::reset_prefix_cache() {
  for (const auto& [h, id] : cached_)
    if (blocks_[static_cast<size_t>(id)].ref_cnt > 0) return false;
  for (auto& b : blocks_) b.has_hash = false, b.hash = 0;
  cached_.clear();
  return true;
}

std::vector<int32_t> BlockPool::free_list() const {
  std::vector<int32_t> out;
  for (int32_t id = head_; id >= 0; id = blocks_[static_cast<size_t>(id)].next) out.push_back(id);
  return out;
}

}  // namespace infera::kv
