// Structured outputs: the JSON-object recognizer against nlohmann's parser on random objects and
// mutations of them; the vocabulary walk's mask against feeding every token one by one; choices.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "engine/structured_output.h"

namespace infera {
namespace {

nlohmann::json random_value(std::mt19937& g, int depth) {
  const int kind = static_cast<int>(g() % (depth > 3 ? 5 : 7));
  switch (kind) {
    case 0: return nullptr;
    case 1: return g() % 2 == 0;
    case 2: return static_cast<int>(g() % 2001) - 1000;
    case 3: return std::ldexp(static_cast<double>(g() % 100000) - 50000, -static_cast<int>(g() % 20));
    case 4: {
      const char* pool[] = {"", "a", "é", "quote\"d", "back\\slash", "tab\t", "日本", "😀", "line\nbreak", "\x01"};
      return std::string(pool[g() % 10]);
    }
    case 5: {
      nlohmann::json a = nlohmann::json::array();
      for (int i = static_cast<int>(g() % 4); i > 0; --i) a.push_back(random_value(g, depth + 1));
      return a;
    }
    default: {
      nlohmann::json o = nlohmann::json::object();
      for (int i = static_cast<int>(g() % 4); i > 0; --i) o[fmt::format("k{}", g() % 10)] = random_value(g, depth + 1);
      return o;
    }
  }
}

nlohmann::json random_object(std::mt19937& g) {
  nlohmann::json o = nlohmann::json::object();
  for (int i = static_cast<int>(g() % 4); i > 0; --i) o[fmt::format("key{}", i)] = random_value(g, 1);
  return o;
}

bool complete_object(std::string_view t) {
  bool complete = false;
  return json_object_prefix(t, &complete) && complete;
}

TEST(StructuredOutput, JsonRecognizerAcceptsObjectsAndEveryPrefix) {
  std::mt19937 g(7);
  for (int n = 0; n < 300; ++n) {
    const nlohmann::json o = random_object(g);
    for (int indent : {-1, 2}) {
      const std::string t = o.dump(indent);
      EXPECT_TRUE(complete_object(t)) << t;
      for (size_t k = 0; k < t.size(); ++k) {
        bool complete = true;
        ASSERT_TRUE(json_object_prefix(t.substr(0, k), &complete)) << t.substr(0, k);
        EXPECT_FALSE(complete) << t.substr(0, k);
      }
    }
  }
  for (const char* ok : {"{}", " {\"a\":[1,-0.5e+3,true,null,{\"b\":\"\\u00e9\"}]}", "{\"x\":0}", "{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}"})
    EXPECT_TRUE(complete_object(ok)) << ok;
  for (const char* bad : {"[]", "1", "\"s\"", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":tru}", "{a:1}", "{\"a\" 1}",
                          "{\"a\":1,}", "{\"a\":1}}", "{\"a\":\"\x01\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12g4\"}",
                          "{\"a\":\"\xC3\x28\"}", "{\"a\":1} ", "{\"a\":[1,]}", "{\"a\":-}"})
    EXPECT_FALSE(complete_object(bad)) << bad;
}

// Random byte edits of valid objects: ours says "one whole object" exactly when nlohmann parses an
// object (no trailing bytes after it, whitespace runs within the limit).
TEST(StructuredOutput, JsonRecognizerAgreesWithAParserOnMutations) {
  std::mt19937 g(11);
  const std::string alphabet = "{}[]\":,-+.0123456789eEtrufalsn \t\n\\u\xC3\xA9x";
  int agreed_valid = 0;
  for (int n = 0; n < 4000; ++n) {
    std::string t = random_object(g).dump(g() % 2 ? -1 : 1);
    for (int e = 1 + static_cast<int>(g() % 2); e > 0; --e) {
      const size_t at = g() % (t.size() + 1);
      const char c = alphabet[g() % alphabet.size()];
      switch (g() % 3) {
        case 0: if (at < t.size()) t[at] = c; break;
        case 1: t.insert(at, 1, c); break;
        default: if (at < t.size()) t.erase(at, 1); break;
      }
    }
    const size_t first = t.find_first_not_of(" \t\n\r");
    bool parses = false;
    try {
      const nlohmann::json parsed = nlohmann::json::parse(t);
      parses = !parsed.is_discarded();
    } catch (const nlohmann::json::out_of_range& e) {
      parses = e.id == 406;  // a number too large for a double: still valid JSON syntax
    } catch (const nlohmann::json::exception&) {
    }
    const bool oracle = parses && first != std::string::npos && t[first] == '{' && t.back() == '}';
    EXPECT_EQ(complete_object(t), oracle) << t;
    agreed_valid += oracle;
  }
  EXPECT_GT(agreed_valid, 100);  // the mutations left enough valid objects to compare
}

// A small vocabulary: the mask allows exactly the tokens that keep the output a JSON prefix (plus
// EOS once it is whole), found by feeding each token alone; a random walk ends in a whole object.
TEST(StructuredOutput, JsonMaskEqualsTokenByTokenCheck) {
  auto vocab = std::make_shared<TokenBytes>();
  for (const char* b : {"{", "}", "[", "]", "\"", "\":", ":", ",", " ", "\n  ", "a", "\"a\"", "\"a\":", "1", "12", "-", ".5",
                        "e", "true", "tr", "ue", "null", "{\"", "\"}", "é", "\xC3", "\xA9", "\\", "n", "<eos>"})
    vocab->bytes.push_back(b);
  vocab->special.assign(vocab->bytes.size(), false);
  const int32_t eos = static_cast<int32_t>(vocab->bytes.size()) - 1;
  vocab->special[static_cast<size_t>(eos)] = true;
  vocab->finalize();
  std::mt19937 g(3);
  int whole = 0;
  for (int walk = 0; walk < 200; ++walk) {
    auto c = json_object_constraint(vocab)();
    std::string out;
    for (int step = 0; step < 60; ++step) {
      std::vector<float> logits(vocab->bytes.size(), 0.0f);
      const int32_t eos_ids[] = {eos};
      c->mask(logits, eos_ids);
      bool complete = false;
      const bool ok = json_object_prefix(out, &complete);
      ASSERT_TRUE(ok) << out;
      std::vector<int32_t> allowed;
      for (int32_t id = 0; id < eos; ++id) {
        const bool want = json_object_prefix(out + vocab->bytes[static_cast<size_t>(id)], nullptr);
        EXPECT_EQ(!std::isinf(logits[static_cast<size_t>(id)]), want) << "after '" << out << "' token '" << vocab->bytes[static_cast<size_t>(id)] << "'";
        if (want) allowed.push_back(id);
      }
      EXPECT_EQ(!std::isinf(logits[static_cast<size_t>(eos)]), complete || allowed.empty()) << out;
      if (complete && g() % 2 == 0) {
        ++whole;
        break;
      }
      if (allowed.empty()) break;
      const int32_t pick = allowed[g() % allowed.size()];
      c->accept(pick);
      out += vocab->bytes[static_cast<size_t>(pick)];
    }
  }
  EXPECT_GT(whole, 5);
}

TEST(StructuredOutput, ChoiceAllowsOnlyPrefixesOfTheChoicesAndEndsOnOne) {
  auto vocab = std::make_shared<TokenBytes>();
  for (const char* b : {"y", "ye", "yes", "s", "n", "no", "o", "may", "be", " later", "maybe", "<eos>"}) vocab->bytes.push_back(b);
  vocab->special.assign(vocab->bytes.size(), false);
  const int32_t eos = 11;
  vocab->special[11] = true;
  vocab->finalize();
  auto c = choice_constraint(vocab, {"yes", "no", "maybe later"})();
  auto allowed = [&] {
    std::vector<float> logits(vocab->bytes.size(), 0.0f);
    const int32_t eos_ids[] = {eos};
    c->mask(logits, eos_ids);
    std::string s;
    for (size_t i = 0; i < logits.size(); ++i)
      if (!std::isinf(logits[i])) s += vocab->bytes[i] + "|";
    return s;
  };
  EXPECT_EQ(allowed(), "y|ye|yes|n|no|may|maybe|");
  c->accept(7);  // "may"
  EXPECT_EQ(allowed(), "be|");
  c->accept(8);
  EXPECT_EQ(allowed(), " later|");
  c->accept(9);
  EXPECT_EQ(allowed(), "<eos>|");
  // Before activation (a reasoning model's </think>) nothing is masked.
  auto r = choice_constraint(vocab, {"no"}, /*activate_after=*/10)();
  std::vector<float> logits(vocab->bytes.size(), 0.0f);
  r->mask(logits, {});
  for (float l : logits) EXPECT_FALSE(std::isinf(l));
  r->accept(10);
  r->mask(logits, {});
  EXPECT_TRUE(std::isinf(logits[0]));
  EXPECT_FALSE(std::isinf(logits[4]));  // "n"
}

}  // namespace
}  // namespace infera
