// The regex automaton: whole-match answers against std::regex (ECMAScript, which agrees with
// Python's re on the shared syntax) on random patterns and strings; UTF-8 classes; refused syntax;
// the JSON-string rewrite; the constraint's vocabulary walk against feeding every token alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <regex>

#include "engine/regex_dfa.h"
#include "engine/structured_output.h"

namespace infera {
namespace {

std::shared_ptr<const ByteDfa> dfa_of(std::string_view pattern) {
  Result<std::shared_ptr<const ByteDfa>> d = compile_regex(pattern);
  EXPECT_TRUE(d.ok()) << pattern << ": " << d.error();
  return d.ok() ? *d : nullptr;
}

TEST(RegexDfa, WholeMatchesOfHandPickedPatterns) {
  struct Case {
    const char* pattern;
    std::vector<std::string> yes, no;
  };
  const std::vector<Case> cases = {
      {R"(\d{3}-[a-z]+)", {"123-abc", "000-z"}, {"12-abc", "1234-a", "123-", "123-ABC", "123-abc "}},
      {"(?:yes|no)", {"yes", "no"}, {"", "ye", "yesno"}},
      {"^a*b?$", {"", "a", "aaab", "b"}, {"ba", "bb"}},
      {"x{2,4}", {"xx", "xxx", "xxxx"}, {"x", "xxxxx"}},
      {"x{2,}", {"xx", "xxxxxxxx"}, {"x"}},
      {"x{0}y", {"y"}, {"xy"}},
      {"a{,2}", {"", "a", "aa"}, {"aaa"}},
      {"a{b", {"a{b"}, {"ab"}},
      {R"([\]a-]+)", {"]", "a-]"}, {"b"}},
      {R"([^abc])", {"d", "\xC3\xA9", "\xE6\x97\xA5"}, {"a", "", "dd"}},
      {".", {"a", "\xC3\xA9", "\xF0\x9F\x98\x80"}, {"\n", "", "\xC3", "\xED\xA0\x80", "\xFF"}},
      {R"(\w+@\w+\.com)", {"a_1@b.com"}, {"a@b.org", "@b.com"}},
      {R"(\s\S)", {" a", "\tb"}, {"  ", "ab"}},
      {R"(\u00e9\x41\U0001F600)", {"\xC3\xA9" "A" "\xF0\x9F\x98\x80"}, {"eA"}},
      {R"([\u0100-\U0010FFFF])", {"\xC4\x80", "\xEF\xBF\xBF", "\xF4\x8F\xBF\xBF"}, {"\xC3\xBF", "\xED\xBF\xBF"}},
      {R"((?P<year>\d{4})-(?<m>\d\d))", {"2024-05"}, {"2024-5"}},
      {R"(a|b|)", {"a", "b", ""}, {"ab"}},
      {R"(\.\*\+\?\(\)\[\]\{\}\|\\\^\$)", {".*+?()[]{}|\\^$"}, {""}},
      {"a+?b*?c??", {"a", "aab", "abc", "ac"}, {"b", ""}},
      {R"(\101\1010)", {"AA0"}, {"A"}},
      {R"(\012[\01]\0)", {std::string("\n\x01") + '\0'}, {std::string("\x00") + "12" + '1' + '\0'}},  // octal codes, as Python
      // \d \w \s count ASCII; their negations leave out every Unicode digit, letter and space (so
      // an output matches under Python's Unicode classes and JavaScript's alike).
      {R"(\D\W\S)", {"a!b", "-.x"}, {"\xD9\xA3!b", "a\xC3\xA9" "b", "a!\xE2\x80\x83", "a!\xC2\xA0", "a!\xEF\xBB\xBF", "a!\xE3\x80\x80"}},
      {R"([^\d][^\w][^\s])", {"a!b"}, {"\xD9\xA3!b", "a\xC3\xA9" "b", "a!\xE3\x80\x80"}},
      {R"(\d\w\s)", {"5a ", "0_\t"}, {"\xD9\xA3" "a ", "5\xC3\xA9 ", "5a\xE3\x80\x80"}},
  };
  for (const Case& c : cases) {
    auto d = dfa_of(c.pattern);
    ASSERT_TRUE(d) << c.pattern;
    for (const std::string& s : c.yes) EXPECT_TRUE(regex_full_match(*d, s)) << c.pattern << " should match '" << s << "'";
    for (const std::string& s : c.no) EXPECT_FALSE(regex_full_match(*d, s)) << c.pattern << " should not match '" << s << "'";
  }
}

TEST(RegexDfa, InclusionOfOnePatternInAnother) {
  auto uuid = dfa_of("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");
  auto v4 = dfa_of("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  EXPECT_EQ(regex_includes(*uuid, *v4), std::optional<bool>(true));
  EXPECT_EQ(regex_includes(*v4, *uuid), std::optional<bool>(false));
  EXPECT_EQ(regex_includes(*dfa_of("a*"), *dfa_of("(?:aa)+")), std::optional<bool>(true));
  EXPECT_EQ(regex_includes(*dfa_of("(?:aa)+"), *dfa_of("a*")), std::optional<bool>(false));  // "" and "a"
  EXPECT_EQ(regex_includes(*dfa_of("[a-z]{1,3}"), *dfa_of("[a-c]{2}")), std::optional<bool>(true));
  EXPECT_EQ(regex_includes(*dfa_of("(a|b)*a(a|b){8}"), *dfa_of("(a|b)*a(a|b){8}"), 10), std::nullopt);  // past the pair budget
}

TEST(RegexDfa, LongPatternsAndHugeClassesAreRefused) {
  std::string w;
  for (int k = 0; k < 5000; ++k) w += "\\W";
  Result<std::shared_ptr<const ByteDfa>> classes = compile_regex(w);
  ASSERT_FALSE(classes.ok());
  EXPECT_NE(classes.error().find("character classes are too large"), std::string::npos) << classes.error();
  Result<std::shared_ptr<const ByteDfa>> longer = compile_regex(std::string(600 * 1024, 'a'));
  ASSERT_FALSE(longer.ok());
  EXPECT_NE(longer.error().find("longer than 512 KB"), std::string::npos) << longer.error();
  // Closures that walk long chains of empty steps count as work: refused, not a stall.
  Result<std::shared_ptr<const ByteDfa>> chains = compile_regex("(?:[ab](?:(?:){150}){1000})*a[ab]{12}");
  ASSERT_FALSE(chains.ok());
  EXPECT_NE(chains.error().find("too"), std::string::npos) << chains.error();
}

TEST(RegexDfa, RefusesWhatNoAutomatonDoesWithAMessage) {
  const std::vector<std::pair<const char*, const char*>> bad = {
      {R"((a)\1)", "backreferences"}, {"a(?=b)", "lookaround"}, {"(?<!a)b", "lookaround"}, {"(?i)a", "not supported"},
      {R"(\bword)", "word boundaries"}, {"(ab", "missing ')'"}, {"ab)", "unbalanced"}, {"[z-a]", "bad character range"},
      {"*a", "nothing to repeat"}, {"a**", "multiple repeat"}, {"a{3,2}", "min repeat greater"}, {"[abc", "unterminated"},
      {"a{1001}", "above 1000"}, {"a^b", "'^'"}, {"a$b", "'$'"}, {R"(\q)", "bad escape"}, {"a*+", "possessive"},
      {"[^\\x00-\\U0010FFFF]", "matches no text"}, {"\xC3", "UTF-8"}, {"(?P<1>a)", "group name"}, {"(?<>a)", "group name"}};
  for (const auto& [pattern, message] : bad) {
    Result<std::shared_ptr<const ByteDfa>> d = compile_regex(pattern);
    ASSERT_FALSE(d.ok()) << pattern;
    EXPECT_NE(d.error().find(message), std::string::npos) << pattern << ": " << d.error();
  }
  // Size limits are errors, not hangs: (a|b)*a(a|b){12} needs 2^13 DFA states.
  RegexLimits small;
  small.max_dfa_states = 1000;
  Result<std::shared_ptr<const ByteDfa>> big = compile_regex("(a|b)*a(a|b){12}", small);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().find("automaton states"), std::string::npos) << big.error();
  EXPECT_TRUE(compile_regex("(a|b)*a(a|b){12}").ok());
}

// Random patterns over {a, b, c} from the syntax both dialects share, random strings: the same
// whole-match answer as std::regex_match.
std::string random_pattern(std::mt19937& g, int depth) {
  const int kind = static_cast<int>(g() % (depth > 2 ? 3 : 7));
  auto atom = [&]() -> std::string {
    switch (g() % 5) {
      case 0: return "[ab]";
      case 1: return "[^a]";
      case 2: return ".";
      default: return std::string(1, "abc"[g() % 3]);
    }
  };
  switch (kind) {
    case 0:
    case 1:
    case 2: return atom();
    case 3: return random_pattern(g, depth + 1) + random_pattern(g, depth + 1);
    case 4: return "(?:" + random_pattern(g, depth + 1) + "|" + random_pattern(g, depth + 1) + ")";
    case 5: {
      const char* q[] = {"*", "+", "?", "{2}", "{1,3}", "{0,2}", "{2,}"};
      return "(?:" + random_pattern(g, depth + 1) + ")" + q[g() % 7];
    }
    default: return random_pattern(g, depth + 1) + atom() + random_pattern(g, depth + 1);
  }
}

TEST(RegexDfa, AgreesWithStdRegexOnRandomPatterns) {
  std::mt19937 g(5);
  int matched = 0;
  for (int n = 0; n < 400; ++n) {
    const std::string p = random_pattern(g, 0);
    auto d = dfa_of(p);
    ASSERT_TRUE(d) << p;
    const std::regex oracle(p, std::regex::ECMAScript);
    for (int k = 0; k < 40; ++k) {
      std::string s;
      for (int len = static_cast<int>(g() % 7); len > 0; --len) s.push_back("abcd"[g() % 4]);
      const bool want = std::regex_match(s, oracle);
      ASSERT_EQ(regex_full_match(*d, s), want) << "pattern " << p << " text '" << s << "'";
      matched += want;
    }
  }
  EXPECT_GT(matched, 1000);  // both answers were exercised
}

// Every state of the automaton can still reach a match: a walk that takes any allowed byte always
// ends in a whole match (a constrained request never paints itself into a corner).
TEST(RegexDfa, EveryReachableStateCanStillMatch) {
  auto d = dfa_of(R"((?:ab|a[^b]c)*x{1,3}(?:\d+|z))");
  ASSERT_TRUE(d);
  std::mt19937 g(9);
  for (int walk = 0; walk < 200; ++walk) {
    int32_t s = d->start;
    std::string out;
    for (int step = 0; step < 200 && !(d->accept[static_cast<size_t>(s)] && (g() % 4 == 0 || !d->live[static_cast<size_t>(s)])); ++step) {
      std::vector<int> ok;
      for (int b = 0; b < 256; ++b)
        if (d->step(s, static_cast<uint8_t>(b)) >= 0) ok.push_back(b);
      ASSERT_FALSE(ok.empty()) << "dead end after '" << out << "'";
      const int b = ok[g() % ok.size()];
      out.push_back(static_cast<char>(b));
      s = d->step(s, static_cast<uint8_t>(b));
    }
    if (d->accept[static_cast<size_t>(s)]) {
      EXPECT_TRUE(regex_full_match(*d, out)) << out;
    }
  }
}

TEST(RegexDfa, JsonStringRewriteMatchesQuotesBackslashesAndControlsThroughTheirEscapes) {
  Result<std::string> r = regex_for_json_string(R"(^[^x]+\.?.*$)");
  ASSERT_TRUE(r.ok()) << r.error();
  auto d = dfa_of(*r);
  ASSERT_TRUE(d);
  EXPECT_TRUE(regex_full_match(*d, "ab.c"));
  EXPECT_TRUE(regex_full_match(*d, "\xC3\xA9t\xC3\xA9"));
  for (const char* raw : {"a\"b", "a\\qb", "a\nb", "a\x01", "\""}) EXPECT_FALSE(regex_full_match(*d, raw)) << raw;
  for (const char* escaped : {R"(a\"b)", R"(a\\b)", R"(a\tb)", R"(a\u0001)", R"(\")"}) EXPECT_TRUE(regex_full_match(*d, escaped)) << escaped;
  Result<std::string> dot = regex_for_json_string("^a.b$");
  ASSERT_TRUE(dot.ok());
  auto dd = dfa_of(*dot);
  EXPECT_TRUE(regex_full_match(*dd, R"(a\tb)"));
  EXPECT_FALSE(regex_full_match(*dd, R"(a\nb)")) << "'.' is not a line break";
  EXPECT_FALSE(regex_full_match(*dd, "a\xE2\x80\xA8" "b")) << "nor U+2028 (ECMA-262)";
  EXPECT_FALSE(regex_for_json_string("(a").ok());
  // What it prints reads back the same: a pattern with every kind of node.
  Result<std::string> again = regex_for_json_string(R"((?:ab|c)+d{2,3}e?[f-h]*)");
  ASSERT_TRUE(again.ok());
  auto d2 = dfa_of(*again);
  for (const char* s : {"abdd", "cabddde", "cddfgh"}) EXPECT_TRUE(regex_full_match(*d2, s)) << s;
  for (const char* s : {"abd", "dd", "abddddd"}) EXPECT_FALSE(regex_full_match(*d2, s)) << s;
}

TEST(RegexDfa, EscapedTextMatchesItselfOnly) {
  for (const char* t : {"a.b*c", "(x)[y]{z}|^$\\", "tab\there", "plain", "#&~- "}) {
    auto d = dfa_of(regex_escape(t));
    ASSERT_TRUE(d) << t;
    EXPECT_TRUE(regex_full_match(*d, t)) << t;
    EXPECT_FALSE(regex_full_match(*d, std::string(t) + "x")) << t;
  }
}

// The constraint's mask equals feeding each token alone; EOS only on a whole match; a random walk
// through the masks ends in a whole match.
// (The second pattern is a JSON string: inside it, text tokens are allowed without being walked.)
TEST(RegexDfa, ConstraintMaskEqualsTokenByTokenCheck) {
  auto vocab = std::make_shared<TokenBytes>();
  for (const char* b : {"1", "12", "123", "-", "-1", "a", "ab", "b", " ", "\xC3", "\xA9", "\xC3\xA9", "\"", "a\"", "\\",
                        "\\n", "\n", "\xED\xA0\x80", "\xE0\x80\x80", "\xF4\x90\x80\x80", "\xE6\x97\xA5\xE6", "x y", "<eos>"})
    vocab->bytes.push_back(b);
  vocab->special.assign(vocab->bytes.size(), false);
  const int32_t eos = static_cast<int32_t>(vocab->bytes.size()) - 1;
  vocab->special[static_cast<size_t>(eos)] = true;
  vocab->finalize();
  for (const char* pattern : {R"(\d{1,4}-(?:ab|\u00e9)+)", R"("(?:[^"\\\x00-\x1F]|\\n)*"1?)"}) {
  auto d = dfa_of(pattern);
  ASSERT_TRUE(d);
  EXPECT_EQ(std::count(d->loops_on_text.begin(), d->loops_on_text.end(), 1), pattern[0] == '"' ? 1 : 0) << pattern;
  std::mt19937 g(4);
  int whole = 0;
  for (int walk = 0; walk < 100; ++walk) {
    auto c = regex_constraint(vocab, d)();
    std::string out;
    for (int step = 0; step < 30; ++step) {
      std::vector<float> logits(vocab->bytes.size(), 0.0f);
      const int32_t eos_ids[] = {eos};
      c->mask(logits, eos_ids);
      std::vector<int32_t> allowed;
      for (int32_t t = 0; t < static_cast<int32_t>(logits.size()); ++t) {
        bool fits = true;
        int32_t s = d->start;
        const std::string next = t == eos ? out : out + vocab->bytes[static_cast<size_t>(t)];
        for (char ch : next)
          if (s >= 0) s = d->step(s, static_cast<uint8_t>(ch));
        fits = s >= 0 && (t != eos || d->accept[static_cast<size_t>(s)]);
        if (t == eos && allowed.empty()) fits = true;  // no text token fits (the vocabulary cannot go on): EOS ends it
        EXPECT_EQ(std::isfinite(logits[static_cast<size_t>(t)]), fits) << "after '" << out << "' token " << t;
        if (fits) allowed.push_back(t);
      }
      ASSERT_FALSE(allowed.empty()) << out;
      const int32_t t = allowed[g() % allowed.size()];
      if (t == eos) {
        if (allowed.size() > 1 || regex_full_match(*d, out)) {
          EXPECT_TRUE(regex_full_match(*d, out)) << out;
          ++whole;
        }
        break;
      }
      c->accept(t);
      out += vocab->bytes[static_cast<size_t>(t)];
    }
  }
  EXPECT_GT(whole, 50) << pattern;
  }
}

TEST(RegexDfa, LoopsOnTextOnlyInsideUnboundedStrings) {
  auto count = [](const char* p) {
    auto d = dfa_of(p);
    return d ? std::count(d->loops_on_text.begin(), d->loops_on_text.end(), 1) : -1;
  };
  EXPECT_EQ(count(R"("[^"\\\x00-\x1F]*")"), 1);
  EXPECT_EQ(count(R"([^"]*")"), 1);                     // more than text may loop: still every text character does
  EXPECT_EQ(count(R"("[^"\\\x00-\x1F]{0,5}")"), 0);  // a counted string: each character moves on
  EXPECT_EQ(count(R"("[a-z ]*")"), 0);                  // not every character fits
  EXPECT_EQ(count(R"("[^"\\\x00-\x1F\u00e9]*")"), 0);
}

}  // namespace
}  // namespace infera

namespace infera {
namespace {

TEST(RegexCache, CompilesOnceKeepsFailuresAndDropsTheLeastRecentlyUsed) {
  RegexCache cache(1000);  // bytes: room for a few small automata
  Result<std::shared_ptr<const ByteDfa>> a = cache.get("[a-z]+");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(cache.get("[a-z]+").value().get(), a.value().get());  // the same automaton, not compiled again
  ASSERT_TRUE(cache.find("[a-z]+").has_value());
  EXPECT_FALSE(cache.find("[0-9]+").has_value());
  Result<std::shared_ptr<const ByteDfa>> bad = cache.get("(a");
  ASSERT_FALSE(bad.ok());
  std::optional<Result<std::shared_ptr<const ByteDfa>>> again = cache.find("(a");
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(again->ok());
  EXPECT_EQ(again->error(), bad.error());
  // Fill past the budget: the least recently used goes first; "[a-z]+", used last, stays.
  for (int k = 0; k < 40; ++k) {
    ASSERT_TRUE(cache.get(fmt::format("x{}y", k)).ok());
    ASSERT_TRUE(cache.find("[a-z]+").has_value());
  }
  EXPECT_FALSE(cache.find("x0y").has_value());
  EXPECT_TRUE(cache.find("x39y").has_value());
  EXPECT_LT(cache.size(), 42u);
}

}  // namespace
}  // namespace infera
