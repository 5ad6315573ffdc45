// JSON schemas compiled to automata: every text a random walk through the automaton produces is
// JSON that a small validator (below) accepts against the schema; hand-written valid documents
// match; integer and number bounds exactly; refused keywords name themselves.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>

#include "engine/regex_dfa.h"
#include "server/json_schema.h"
#include "unit/test_util.h"

namespace infera {
namespace {

using OJson = nlohmann::ordered_json;

std::shared_ptr<const ByteDfa> compile_schema(const OJson& schema, JsonSchemaOptions opt = {}) {
  Result<std::string> re = json_schema_regex(schema, opt);
  EXPECT_TRUE(re.ok()) << schema.dump() << ": " << re.error();
  if (!re) return nullptr;
  Result<std::shared_ptr<const ByteDfa>> d = compile_regex(*re);
  EXPECT_TRUE(d.ok()) << schema.dump() << ": " << d.error();
  return d.ok() ? *d : nullptr;
}

size_t code_points(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// A validator for the keywords these tests use (the oracle; independent of the compiler).
bool valid(const OJson& v, const OJson& s, const OJson& root, std::string* why) {
  auto no = [&](const std::string& m) {
    *why = m + " at " + v.dump();
    return false;
  };
  if (s.is_boolean()) return s.get<bool>() || no("false schema");
  if (s.contains("$ref")) {
    const std::string ref = s["$ref"].get<std::string>();
    return valid(v, ref == "#" ? root : root[OJson::json_pointer(ref.substr(1))], root, why);
  }
  if (s.contains("const") && v != s["const"]) return no("const");
  if (s.contains("enum") && std::find(s["enum"].begin(), s["enum"].end(), v) == s["enum"].end()) return no("enum");
  if (s.contains("anyOf")) {
    for (const OJson& sub : s["anyOf"])
      if (std::string w; valid(v, sub, root, &w)) return true;
    return no("anyOf");
  }
  if (s.contains("type")) {
    std::vector<std::string> types;
    if (s["type"].is_string()) types.push_back(s["type"]);
    else for (const OJson& t : s["type"]) types.push_back(t);
    auto is = [&](const std::string& t) {
      if (t == "integer") return v.is_number_integer() || (v.is_number_float() && v.get<double>() == std::floor(v.get<double>()));
      if (t == "number") return v.is_number();
      if (t == "string") return v.is_string();
      if (t == "boolean") return v.is_boolean();
      if (t == "null") return v.is_null();
      if (t == "array") return v.is_array();
      return v.is_object();
    };
    if (std::none_of(types.begin(), types.end(), is)) return no("type");
  }
  if (v.is_number()) {
    const double x = v.get<double>();
    if (s.contains("minimum") && x < s["minimum"].get<double>()) return no("minimum");
    if (s.contains("maximum") && x > s["maximum"].get<double>()) return no("maximum");
    if (s.contains("exclusiveMinimum") && x <= s["exclusiveMinimum"].get<double>()) return no("exclusiveMinimum");
    if (s.contains("exclusiveMaximum") && x >= s["exclusiveMaximum"].get<double>()) return no("exclusiveMaximum");
  }
  if (v.is_string()) {
    const std::string str = v.get<std::string>();
    if (s.contains("minLength") && code_points(str) < s["minLength"].get<size_t>()) return no("minLength");
    if (s.contains("maxLength") && code_points(str) > s["maxLength"].get<size_t>()) return no("maxLength");
    if (s.contains("pattern") && !std::regex_search(str, std::regex(s["pattern"].get<std::string>()))) return no("pattern");
  }
  if (v.is_array()) {
    if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) return no("minItems");
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>()) return no("maxItems");
    size_t k = 0;
    if (s.contains("prefixItems"))
      for (; k < s["prefixItems"].size() && k < v.size(); ++k)
        if (!valid(v[k], s["prefixItems"][k], root, why)) return false;
    if (s.contains("items"))
      for (; k < v.size(); ++k)
        if (!valid(v[k], s["items"], root, why)) return false;
  }
  if (v.is_object()) {
    if (s.contains("required"))
      for (const OJson& r : s["required"])
        if (!v.contains(r.get<std::string>())) return no("required " + r.get<std::string>());
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (s.contains("properties") && s["properties"].contains(it.key())) {
        if (!valid(it.value(), s["properties"][it.key()], root, why)) return false;
      } else if (s.contains("additionalProperties")) {
        if (!valid(it.value(), s["additionalProperties"], root, why)) return false;
      }
    }
  }
  return true;
}

void expect_outputs_validate(const OJson& schema, int count = 150) {
  auto d = compile_schema(schema);
  ASSERT_TRUE(d) << schema.dump();
  for (const std::string& text : test::random_matches(*d, count, 17)) {
    OJson v;
    try {
      v = OJson::parse(text);
    } catch (const nlohmann::json::out_of_range& e) {
      ASSERT_EQ(e.id, 406) << text;  // a number beyond a double (9e473): valid JSON, nothing to validate
      continue;
    } catch (const nlohmann::json::exception& e) {
      FAIL() << schema.dump() << " produced invalid JSON: " << text << " (" << e.what() << ")";
    }
    std::string why;
    EXPECT_TRUE(valid(v, schema, schema, &why)) << schema.dump() << " produced " << text << ": " << why;
  }
}

TEST(JsonSchema, RandomOutputsValidateAgainstTheirSchema) {
  const char* schemas[] = {
      R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0,"maximum":150},
          "email":{"type":"string","format":"email"},"tags":{"type":"array","items":{"type":"string","maxLength":5},"maxItems":3}},
          "required":["name","age"],"additionalProperties":false})",
      R"({"type":"object","properties":{"a":{"type":"boolean"},"b":{"type":"null"},"c":{"enum":["x",1,true,null,{"k":[1]}]}}})",
      R"({"anyOf":[{"type":"integer","exclusiveMinimum":-3,"exclusiveMaximum":12},{"type":"string","pattern":"^[A-Z]{2}\\d{2}$"}]})",
      R"({"type":["number","null"],"minimum":-2,"maximum":3})",
      R"({"type":"array","prefixItems":[{"const":"head"},{"type":"integer"}],"items":{"type":"boolean"},"minItems":1,"maxItems":4})",
      R"({"$defs":{"pt":{"type":"object","properties":{"x":{"type":"number"},"y":{"type":"number"}},"required":["x","y"]}},
          "type":"object","properties":{"from":{"$ref":"#/$defs/pt"},"to":{"$ref":"#/$defs/pt"}},"required":["from","to"]})",
      R"({"type":"object","additionalProperties":{"type":"integer","minimum":10}})",
      R"({"type":"string","minLength":2,"maxLength":4})",
      R"({"type":"object","properties":{"when":{"type":"string","format":"date-time"},"id":{"type":"string","format":"uuid"}},"required":["when","id"]})",
      R"({})",
      R"({"type":"object","properties":{"o1":{"type":"integer"},"o2":{"type":"integer"},"r":{"type":"string"},"o3":{"type":"integer"}},"required":["r"]})",
      // Patterns with characters a JSON string escapes: matched through their escapes.
      R"({"type":"string","pattern":"^a\"b$"})", R"({"type":"string","pattern":"^[\\\\\"]x\n$"})",
      R"({"type":"string","pattern":"^[\\x00-\\x1f]{2}$"})",
      R"({"type":"object","additionalProperties":{"type":"integer"},"propertyNames":{"type":"string"}})",
      R"({"type":"string","format":"uuid","pattern":"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"})",
  };
  for (const char* s : schemas) expect_outputs_validate(OJson::parse(s));
}

TEST(JsonSchema, HandWrittenDocumentsMatch) {
  const OJson schema = OJson::parse(R"({"type":"object","properties":{"name":{"type":"string"},"n":{"type":"integer"},
      "xs":{"type":"array","items":{"type":"number"}},"opt":{"type":"boolean"}},"required":["name","n","xs"]})");
  auto d = compile_schema(schema);
  ASSERT_TRUE(d);
  for (const char* ok : {R"({"name":"Ada","n":-3,"xs":[]})", R"({ "name": "A\"da\u00e9", "n": 0, "xs": [1.5, -2e10, 3], "opt": true })",
                         R"({"name":"日本","n":12,"xs":[0]})"})
    EXPECT_TRUE(regex_full_match(*d, ok)) << ok;
  for (const char* bad : {R"({"n":1,"name":"A","xs":[]})",  // out of the schema's order
                          R"({"name":"A","n":1})", R"({"name":"A","n":1.5,"xs":[]})", R"({"name":"A","n":01,"xs":[]})",
                          R"({"name":"A","n":1,"xs":[],"extra":1})", R"({"name":"A","n":1,"xs":[],})",
                          R"({"name":"A	","n":1,"xs":[]})"})
    EXPECT_FALSE(regex_full_match(*d, bad)) << bad;
}

TEST(JsonSchema, IntegerBoundsAreExact) {
  struct Bounds {
    const char* schema;
    int64_t lo, hi;  // inclusive
  };
  const Bounds cases[] = {
      {R"({"type":"integer","minimum":-123,"maximum":4567})", -123, 4567},
      {R"({"type":"integer","minimum":7})", 7, INT64_MAX},
      {R"({"type":"integer","maximum":-5})", INT64_MIN, -5},
      {R"({"type":"integer","exclusiveMinimum":-1,"exclusiveMaximum":100})", 0, 99},
      {R"({"type":"integer","minimum":5,"exclusiveMinimum":true,"maximum":10})", 6, 10},
      {R"({"type":"integer","minimum":0.5,"maximum":9.5})", 1, 9},
      {R"({"type":"integer","minimum":-1000,"maximum":-990})", -1000, -990},
      {R"({"type":"integer","minimum":0,"maximum":0})", 0, 0},
  };
  for (const Bounds& c : cases) {
    auto d = compile_schema(OJson::parse(c.schema));
    ASSERT_TRUE(d) << c.schema;
    for (int64_t x = -12000; x <= 12000; ++x)
      ASSERT_EQ(regex_full_match(*d, std::to_string(x)), x >= c.lo && x <= c.hi) << c.schema << " " << x;
    EXPECT_EQ(regex_full_match(*d, "123456789012"), c.hi == INT64_MAX) << c.schema;
    EXPECT_FALSE(regex_full_match(*d, "-0")) << c.schema;
    EXPECT_FALSE(regex_full_match(*d, "007")) << c.schema;
  }
  Result<std::string> none = json_schema_regex(OJson::parse(R"({"type":"integer","minimum":3,"maximum":2})"));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().find("no integer"), std::string::npos) << none.error();
}

TEST(JsonSchema, NumberBoundsHoldForEveryDecimal) {
  const char* schemas[] = {R"({"type":"number","minimum":-2,"exclusiveMaximum":3})", R"({"type":"number","exclusiveMinimum":0})",
                           R"({"type":"number","minimum":0})", R"({"type":"number","maximum":-1})"};
  for (const char* text : schemas) {
    const OJson s = OJson::parse(text);
    auto d = compile_schema(s);
    ASSERT_TRUE(d) << text;
    for (int k = -500; k <= 500; ++k)
      for (const std::string& x : {fmt::format("{}", k / 100), fmt::format("{:.2f}", k / 100.0), fmt::format("{:.1f}", k / 10.0)}) {
        const double v = std::stod(x);
        std::string why;
        const bool want = valid(OJson(v), s, s, &why) && x != "-0.00" && x != "-0.0";
        EXPECT_EQ(regex_full_match(*d, x), want) << text << " " << x;
      }
  }
  Result<std::string> frac = json_schema_regex(OJson::parse(R"({"type":"number","minimum":0.5})"));
  ASSERT_FALSE(frac.ok());
  EXPECT_NE(frac.error().find("whole numbers"), std::string::npos) << frac.error();
}

TEST(JsonSchema, RefusesWhatItCannotGuaranteeByName) {
  const std::vector<std::pair<const char*, const char*>> bad = {
      {R"({"type":"integer","multipleOf":3})", "'multipleOf'"},
      {R"({"type":"array","items":{"type":"integer"},"uniqueItems":true})", "'uniqueItems'"},
      {R"({"not":{"type":"string"}})", "'not'"},
      {R"({"type":"object","patternProperties":{"^a":{"type":"integer"}}})", "'patternProperties'"},
      {R"({"$ref":"#/$defs/missing"})", "points to nothing"},
      {R"({"$ref":"https://example.com/s.json"})", "not a reference into this schema"},
      {R"({"$defs":{"n":{"type":"object","properties":{"next":{"$ref":"#/$defs/n"}},"required":["next"]}},"$ref":"#/$defs/n"})", "recursive"},
      {R"({"type":"string","pattern":"(a)\\1"})", "backreferences"},
      {R"({"type":"bogus"})", "unknown type 'bogus'"},
      {R"({"allOf":[{"type":"string"},{"maxLength":3}]})", "'allOf'"},
      {R"(false)", "allows no value"},
      {R"({"type":"string","format":"ipv6"})", "'format' 'ipv6' is not supported"},
      // Checks beside const / enum / anyOf / oneOf / allOf / $ref are refused, not dropped.
      {R"({"type":"integer","anyOf":[{"minimum":0}]})", "'anyOf' together with 'type'"},
      {R"({"enum":["a","b"],"maxLength":1})", "'enum' together with 'maxLength'"},
      {R"({"$defs":{"a":{"type":"string"}},"$ref":"#/$defs/a","maxLength":3})", "'$ref' together with 'maxLength'"},
      {R"({"type":"string","enum":[1,2]})", "no value of 'enum' has the 'type'"},
      {R"({"oneOf":[{"type":"number"},{"type":"integer"}]})", "'oneOf' is supported where no value can match two"},
      {R"({"oneOf":[{"type":"object"},{"type":"object","required":["a"]}]})", "'oneOf' is supported where"},
      {R"({"type":"string","pattern":"^a+$","maxLength":2})", "'pattern' together with 'minLength' or 'maxLength'"},
      {R"({"type":"string","format":"email","maxLength":12})", "'format' 'email' together with 'minLength' or 'maxLength'"},
      {R"({"type":"string","format":"uuid","pattern":"^[a-z]+$"})", "supported where one implies the other"},
      {R"({"type":"object","propertyNames":{"maxLength":3}})", "'propertyNames' is not supported"},
      {R"({"type":"object","required":["id"],"additionalProperties":false})", "'id' is required, but not in 'properties'"},
      {R"({"prefixItems":[],"$ref":"#/prefixItems/99999999999999999999"})", "'$ref' together with 'prefixItems'"},
      {R"({"$ref":"#/$defs/99999999999999999999","$defs":[]})", "points to nothing"},
  };
  for (const auto& [text, message] : bad) {
    Result<std::string> r = json_schema_regex(OJson::parse(text));
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.error().find(message), std::string::npos) << text << ": " << r.error();
  }
  // uniqueItems false and annotations are fine.
  EXPECT_TRUE(json_schema_regex(OJson::parse(R"({"title":"T","description":"d","$schema":"x","type":"array","uniqueItems":false,
      "items":{"type":"string","default":"a","examples":["b"]}})")).ok());
}

// A pattern doubles with each level of nested arrays: refused once it passes the size limit, fast
// and in little memory, not after building it.
TEST(JsonSchema, ExplosiveSchemasAreRefusedEarly) {
  OJson s = OJson::parse(R"({"type":"integer"})");
  for (int depth = 0; depth < 50; ++depth) s = OJson{{"type", "array"}, {"items", s}, {"minItems", 1}, {"maxItems", 2}};
  Result<std::string> r = json_schema_regex(s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("expands to a pattern of more than"), std::string::npos) << r.error();
  OJson many = OJson::parse(R"({"type":"object","properties":{}})");
  for (int k = 0; k < 1000; ++k) many["properties"][fmt::format("p{}", k)] = OJson::parse(R"({"type":"integer"})");
  Result<std::string> m = json_schema_regex(many);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().find("optional properties"), std::string::npos) << m.error();
  // All of them required: linear, and fine.
  for (int k = 0; k < 1000; ++k) many["required"].push_back(fmt::format("p{}", k));
  EXPECT_TRUE(json_schema_regex(many).ok());
}

TEST(JsonSchema, AcceptedCombinationsKeepTheirMeaning) {
  // A "type" beside enum filters its values; oneOf over different types or a discriminator; a
  // required key outside 'properties' takes additionalProperties' schema.
  expect_outputs_validate(OJson::parse(R"({"type":"string","enum":["a",1,"b",null]})"), 40);
  auto filtered = compile_schema(OJson::parse(R"({"type":"string","enum":["a",1]})"));
  EXPECT_TRUE(regex_full_match(*filtered, "\"a\""));
  EXPECT_FALSE(regex_full_match(*filtered, "1"));
  expect_outputs_validate(OJson::parse(R"({"oneOf":[{"type":"string","maxLength":3},{"type":"integer"},{"type":"null"}]})"), 40);
  const OJson tagged = OJson::parse(R"({"$defs":{"cat":{"type":"object","properties":{"kind":{"const":"cat"},"lives":{"type":"integer"}},"required":["kind"]},
      "dog":{"type":"object","properties":{"kind":{"const":"dog"},"good":{"type":"boolean"}},"required":["kind","good"]}},
      "oneOf":[{"$ref":"#/$defs/cat"},{"$ref":"#/$defs/dog"}],"discriminator":{"propertyName":"kind"}})");
  EXPECT_TRUE(json_schema_regex(tagged).ok()) << json_schema_regex(tagged).error();
  // Listed properties and nothing else, also when the list is empty (a function without
  // parameters); with no list at all, any object.
  auto none = compile_schema(OJson::parse(R"({"type":"object","properties":{}})"));
  EXPECT_TRUE(regex_full_match(*none, "{}"));
  EXPECT_FALSE(regex_full_match(*none, R"({"a":1})"));
  auto any = compile_schema(OJson::parse(R"({"type":"object"})"));
  EXPECT_TRUE(regex_full_match(*any, R"({"a":1})"));
  auto ids = compile_schema(OJson::parse(R"({"type":"object","required":["id"],"additionalProperties":{"type":"integer"}})"));
  EXPECT_TRUE(regex_full_match(*ids, R"({"id":7})"));
  EXPECT_FALSE(regex_full_match(*ids, R"({"id":"x"})"));
}

TEST(JsonSchema, NestingAndSizeAreBounded) {
  OJson deep = OJson::parse(R"({"type":"integer"})");
  for (int k = 0; k < 100; ++k) deep = OJson{{"type", "object"}, {"properties", {{"a", deep}}}, {"required", {"a"}}};
  Result<std::string> d = json_schema_regex(deep);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().find("nests more than 64 levels"), std::string::npos) << d.error();
  OJson tuple = OJson::parse(R"({"type":"array","prefixItems":[]})");
  for (int k = 0; k < 100000; ++k) tuple["prefixItems"].push_back(OJson::parse(R"({"type":"null"})"));
  Result<std::string> t = json_schema_regex(tuple);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().find("KB"), std::string::npos) << t.error();
  OJson wide = OJson::parse(R"({"anyOf":[]})");
  for (int k = 0; k < 100000; ++k) wide["anyOf"].push_back(true);
  Result<std::string> w = json_schema_regex(wide);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().find("KB in all"), std::string::npos) << w.error();
}

TEST(JsonSchema, StringFormatsMatchTheirRfcShapes) {
  const std::vector<std::tuple<const char*, std::vector<std::string>, std::vector<std::string>>> cases = {
      {"email", {"\"a.b+c@example.com\"", "\"x@mail.co.uk\""}, {"\"a@b\"", "\"@example.com\"", "\"a b@example.com\""}},
      {"ipv4", {"\"0.0.0.0\"", "\"255.255.255.255\"", "\"10.1.20.199\""}, {"\"256.1.1.1\"", "\"01.2.3.4\"", "\"1.2.3\""}},
      {"hostname", {"\"localhost\"", "\"api-2.example.com\""}, {"\"-a.com\"", "\"a..b\"", "\"a_b.com\""}},
      {"uri", {"\"https://example.com\"", "\"http://a.b:8080/x/y?q=1&r=2\""}, {"\"example.com\"", "\"https://\"", "\"http://a b\""}},
      {"date-time", {"\"2024-02-28T23:59:59Z\"", "\"1999-12-31T00:00:00.123+05:30\""},
       {"\"2024-13-01T00:00:00Z\"", "\"2024-01-01 00:00:00Z\"", "\"2023-02-31T00:00:00Z\"", "\"2024-04-31T00:00:00Z\""}},
      {"date", {"\"2024-01-31\"", "\"2024-04-30\""}, {"\"2024-02-30\"", "\"2024-06-31\"", "\"2024-00-10\""}},
      {"time", {"\"12:00:00Z\"", "\"23:59:59.5-08:00\""}, {"\"12:00:00\"", "\"24:00:00Z\""}},
      {"uuid", {"\"123e4567-e89b-12d3-a456-426614174000\""}, {"\"123e4567e89b12d3a456426614174000\""}}};
  for (const auto& [format, yes, no] : cases) {
    auto d = compile_schema(OJson{{"type", "string"}, {"format", format}});
    ASSERT_TRUE(d) << format;
    for (const std::string& t : yes) EXPECT_TRUE(regex_full_match(*d, t)) << format << " " << t;
    for (const std::string& t : no) EXPECT_FALSE(regex_full_match(*d, t)) << format << " " << t;
  }
}

TEST(JsonSchema, WhitespacePatternIsUsedBetweenTokens) {
  JsonSchemaOptions opt;
  opt.whitespace = R"([\n ]{0,4})";
  auto d = compile_schema(OJson::parse(R"({"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]})"), opt);
  ASSERT_TRUE(d);
  EXPECT_TRUE(regex_full_match(*d, "{\n  \"a\": 1\n}"));
  EXPECT_FALSE(regex_full_match(*d, "{\t\"a\":1}"));
  auto compact = compile_schema(OJson::parse(R"({"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]})"));
  EXPECT_FALSE(regex_full_match(*compact, "{\n\"a\":1}"));
}

}  // namespace
}  // namespace infera
