// UTF-8 helpers, GPT-2's byte-level alphabet and NFC normalization for the tokenizer.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace infera::tok {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is invalid or cut short.
size_t utf8_seq_len(std::string_view s, size_t i);

// Replaces every invalid UTF-8 sequence with U+FFFD (as Python's errors="replace").
std::string sanitize_utf8(std::string_view s);

// NFC normalization (utf8proc). Text made only of nfc_stable code points skips utf8proc.
std::string nfc(std::string_view s);

// True for code points NFC never changes in any context (class 0, no canonical decomposition,
// never the second of a composition). Conservative: false does not mean NFC changes it.
bool nfc_stable(uint32_t cp);

// GPT-2 byte-level alphabet: byte -> its printable stand-in (UTF-8), and back.
struct ByteLevel {
  std::array<std::string, 256> encode;  // byte -> "Ġ" etc.
  std::array<int, 0x144> decode_table;  // code point -> byte, -1 if not a stand-in
  // Decodes a token's byte-level text; false if a character is not in the alphabet.
  bool decode(std::string_view text, std::string* out) const;
  static const ByteLevel& get();
};

}  // namespace infera::tok
