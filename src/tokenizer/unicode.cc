#include "tokenizer/unicode.h"

#include <utf8proc.h>

#include <cstdlib>

#include "formats/tokenizer_json.h"

namespace infera::tok {

size_t utf8_seq_len(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t c = b(i);
  size_t n;
  uint32_t min;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) n = 2, min = 0x80;
  else if ((c & 0xF0) == 0xE0) n = 3, min = 0x800;
  else if ((c & 0xF8) == 0xF0) n = 4, min = 0x10000;
  else return 0;
  if (i + n > s.size()) return 0;
  uint32_t cp = c & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_seq_len(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.data() + i, n);
      i += n;
    }
  }
  return out;
}

// Code points that NFC leaves alone whatever surrounds them: canonical combining class 0, no
// canonical decomposition, and never the second half of a canonical composition. A conservative
// subset (Latin before the combining marks, kana without the voicing marks, CJK ideographs,
// Hangul syllables, emoji and their joiners); anything else takes the full utf8proc path.
bool nfc_stable(uint32_t cp) {
  return cp < 0x300 || (cp >= 0x3040 && cp <= 0x3098) || (cp >= 0x309B && cp <= 0x30FF) ||
         (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0x1F300 && cp <= 0x1FAFF) ||
         cp == 0x200D || cp == 0xFE0F;
}

namespace {

std::string full_nfc(std::string_view s) {
  utf8proc_uint8_t* dst = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                          static_cast<utf8proc_ssize_t>(s.size()), &dst,
                                          static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) return std::string(s);  // invalid input cannot reach here (sanitized first)
  std::string out(reinterpret_cast<char*>(dst), static_cast<size_t>(n));
  std::free(dst);
  return out;
}

}  // namespace

// NFC never reorders or composes across a stable code point (class 0, never a second), so the
// text is cut before each one and only the pieces holding other code points go through utf8proc.
std::string nfc(std::string_view s) {
  std::string out;
  size_t chunk = 0;      // start of the current piece (at a stable code point)
  bool dirty = false;    // the piece holds a code point that NFC may change
  bool changed = false;  // some piece went through utf8proc
  for (size_t i = 0; i < s.size();) {
    const uint8_t c = static_cast<uint8_t>(s[i]);
    size_t n = 1;
    bool stable = c < 0x80;
    if (!stable) {
      n = utf8_seq_len(s, i);
      if (n == 0) return full_nfc(s);  // not valid UTF-8: leave it to utf8proc
      uint32_t cp = c & (0x7F >> n);
      for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
      stable = nfc_stable(cp);
    }
    if (stable && i > chunk) {
      if (dirty) {
        if (!changed) out.assign(s.substr(0, chunk));
        out += full_nfc(s.substr(chunk, i - chunk));
        changed = true;
      } else if (changed) {
        out.append(s.substr(chunk, i - chunk));
      }
      chunk = i;
      dirty = false;
    }
    dirty |= !stable;
    i += n;
  }
  if (!dirty && !changed) return std::string(s);
  if (!changed) out.assign(s.substr(0, chunk));
  out += dirty ? full_nfc(s.substr(chunk)) : std::string(s.substr(chunk));
  return out;
}

const ByteLevel& ByteLevel::get() {
  static const ByteLevel bl = [] {
    ByteLevel b;
    b.decode_table.fill(-1);
    for (int i = 0; i < 256; ++i) {
      const std::string e = byte_level_char(static_cast<uint8_t>(i));
      b.encode[i] = e;
      const uint32_t cp = e.size() == 1 ? static_cast<uint8_t>(e[0])
                                        : ((static_cast<uint8_t>(e[0]) & 0x1Fu) << 6) | (static_cast<uint8_t>(e[1]) & 0x3Fu);
      b.decode_table[cp] = i;
    }
    return b;
  }();
  return bl;
}

bool ByteLevel::decode(std::string_view text, std::string* out) const {
  // Stand-ins are code points below U+0144: one or two UTF-8 bytes each.
  for (size_t i = 0; i < text.size();) {
    const uint8_t c = static_cast<uint8_t>(text[i]);
    uint32_t cp;
    if (c < 0x80) {
      cp = c, i += 1;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < text.size()) {
      cp = ((c & 0x1Fu) << 6) | (static_cast<uint8_t>(text[i + 1]) & 0x3Fu), i += 2;
    } else {
      return false;
    }
    if (cp >= decode_table.size() || decode_table[cp] < 0) return false;
    out->push_back(static_cast<char>(decode_table[cp]));
  }
  return true;
}

}  // namespace infera::tok
