// The NFC fast path's claim, checked exhaustively against utf8proc's Unicode tables.
#include <gtest/gtest.h>
#include <utf8proc.h>

#include <random>
#include <set>

#include "tokenizer/unicode.h"

namespace infera {
namespace {

std::string utf8(uint32_t cp) {
  utf8proc_uint8_t buf[4];
  const auto n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(cp), buf);
  return std::string(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
}

TEST(Unicode, NfcStableCodePointsAreNeverChangedOrComposed) {
  // Every second element of a canonical decomposition pair (the characters that can compose with
  // a preceding one).
  std::set<uint32_t> seconds;
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    utf8proc_int32_t out[8];
    int last_boundclass = 0;
    const auto n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), out, 8, UTF8PROC_DECOMPOSE,
                                           &last_boundclass);
    for (utf8proc_ssize_t k = 1; k < n && k < 8; ++k) seconds.insert(static_cast<uint32_t>(out[k]));
  }
  // Hangul composes algorithmically: V and T jamo are seconds.
  for (uint32_t cp = 0x1161; cp <= 0x1175; ++cp) seconds.insert(cp);
  for (uint32_t cp = 0x11A8; cp <= 0x11C2; ++cp) seconds.insert(cp);
  int checked = 0;
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    if (!tok::nfc_stable(cp)) continue;
    ++checked;
    const utf8proc_property_t* p = utf8proc_get_property(static_cast<utf8proc_int32_t>(cp));
    ASSERT_EQ(p->combining_class, 0) << std::hex << cp;
    ASSERT_FALSE(seconds.count(cp)) << std::hex << cp;
    utf8proc_uint8_t* nfc = utf8proc_NFC(reinterpret_cast<const utf8proc_uint8_t*>(utf8(cp == 0 ? 1 : cp).c_str()));
    ASSERT_EQ(std::string(reinterpret_cast<char*>(nfc)), utf8(cp == 0 ? 1 : cp)) << std::hex << cp;
    free(nfc);
  }
  EXPECT_GT(checked, 35000);  // Latin, kana, CJK, Hangul, emoji
}

// The piecewise fast path equals whole-text utf8proc NFC on random mixes of stable code points,
// combining marks, Hangul jamo, singletons and Indic vowel signs.
TEST(Unicode, PiecewiseNfcEqualsWholeTextNfc) {
  const std::vector<uint32_t> pool = {'a', 'e', 'A', ' ', 0xE9, 0x301, 0x300, 0x327, 0x323, 0x1100, 0x1161, 0x11A8,
                                      0xAC00, 0x212B, 0x2000, 0x4E2D, 0x3099, 0x304B, 0x0DD9, 0x0DCF, 0x0DCA,
                                      0x1F600, 0x200D, 0xFE0F, 0x0B47, 0x0B3E, 0xF900, 0x2126, 0x0344};
  std::mt19937 rng(7);
  for (int iter = 0; iter < 20000; ++iter) {
    std::string text;
    const int len = static_cast<int>(rng() % 12);
    for (int k = 0; k < len; ++k) text += utf8(pool[rng() % pool.size()]);
    utf8proc_uint8_t* want = utf8proc_NFC(reinterpret_cast<const utf8proc_uint8_t*>(text.c_str()));
    ASSERT_EQ(tok::nfc(text), std::string(reinterpret_cast<char*>(want))) << text;
    free(want);
  }
}

TEST(Unicode, NfcComposesAndSanitizes) {
  EXPECT_EQ(tok::nfc("e\xCC\x81"), "\xC3\xA9");            // e + combining acute -> é
  EXPECT_EQ(tok::nfc("\xE2\x84\xAB"), "\xC3\x85");         // Angstrom sign -> Å (singleton)
  EXPECT_EQ(tok::nfc("\xE1\x84\x80\xE1\x85\xA1"), "\xEA\xB0\x80");  // Hangul L + V -> 가
  EXPECT_EQ(tok::nfc("plain text 中文 \xF0\x9F\x98\x80"), "plain text 中文 \xF0\x9F\x98\x80");
  EXPECT_EQ(tok::sanitize_utf8("a\xC3"), "a\xEF\xBF\xBD");
}

}  // namespace
}  // namespace infera
