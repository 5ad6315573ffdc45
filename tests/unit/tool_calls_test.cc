// Forced tool calls: tool_choice checks with vLLM's messages, the schema "required" builds, whole
// outputs turned into tool_calls, and streamed deltas that add up to the same calls for every way
// the text can arrive (random outputs of the schema's own automaton, cut at every byte).
#include <gtest/gtest.h>

#include <random>

#include "engine/regex_dfa.h"
#include "server/json_schema.h"
#include "server/tool_calls.h"
#include "unit/test_util.h"

namespace infera::server {
namespace {

const OJson kWeather = OJson::parse(R"({"type": "function", "function": {"name": "get_weather", "parameters": {
  "type": "object", "properties": {"city": {"type": "string", "maxLength": 8}, "days": {"type": "integer", "minimum": 1, "maximum": 9},
  "unit": {"$ref": "#/$defs/unit"}}, "required": ["city", "unit"], "additionalProperties": false,
  "$defs": {"unit": {"enum": ["c", "f"]}}}}})");
const OJson kNoop = OJson::parse(R"({"type": "function", "function": {"name": "noop"}})");
const OJson kSearch = OJson::parse(R"({"function": {"name": "search", "description": "d", "parameters": {"type": "object",
  "properties": {"q": {"type": "string", "maxLength": 10}, "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}, "maxItems": 3},
  "exact": {"type": "boolean"}, "score": {"type": "number", "minimum": 0, "maximum": 9}}, "required": ["q"]}}})");

OJson body_with(const OJson& tools, const OJson& choice) {
  OJson b = {{"messages", OJson::array()}, {"tools", tools}};
  if (!choice.is_null()) b["tool_choice"] = choice;
  return b;
}

std::string error_of(const OJson& body) {
  ToolChoice tc;
  OJson schema;
  auto e = parse_tool_choice(body, tc, schema);
  return e ? e->message : "";
}

TEST(ToolCalls, ChoicesAreCheckedWithVllmMessages) {
  const OJson tools = OJson::array({kWeather, kNoop});
  const std::string usage = "Correct usage: `{\"type\": \"function\", \"function\": {\"name\": \"my_function\"}}`";
  EXPECT_EQ(error_of(body_with(tools, nullptr)),
            "\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set");
  EXPECT_EQ(error_of(body_with(tools, "auto")), "\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set");
  EXPECT_EQ(error_of(body_with(tools, "any")),
            "Invalid value for `tool_choice`: any! Only named tools, \"none\", \"auto\" or \"required\" are supported.");
  EXPECT_EQ(error_of(body_with(tools, OJson{{"type", "function"}})), "Invalid value for `function`: `None` in `tool_choice`! " + usage);
  EXPECT_EQ(error_of(body_with(tools, OJson{{"type", "function"}, {"function", OJson::object()}})),
            "Expected field `name` in `function` in `tool_choice`! " + usage);
  EXPECT_EQ(error_of(body_with(tools, OJson{{"type", "function"}, {"function", {{"name", ""}}}})),
            "Invalid `name` in `function`: `` in `tool_choice`! " + usage);
  EXPECT_EQ(error_of(body_with(tools, OJson{{"type", "function"}, {"function", {{"name", "nope"}}}})),
            "The tool specified in `tool_choice` does not match any of the specified `tools`");
  EXPECT_EQ(error_of(OJson{{"messages", OJson::array()}, {"tool_choice", "required"}}), "When using `tool_choice`, `tools` must be set.");
  EXPECT_EQ(error_of(body_with("x", "none")), "'tools' must be a list");
  EXPECT_EQ(error_of(body_with(OJson::array({{{"type", "code"}, {"function", {{"name", "a"}}}}}), "none")),
            "'tools[0].type': Input should be 'function'");
  EXPECT_EQ(error_of(body_with(OJson::array({{{"function", {{"name", "a"}, {"parameters", "x"}}}}}), "none")),
            "'tools[0].function.parameters' must be an object (a JSON schema)");
  EXPECT_EQ(error_of(body_with(OJson::array({{{"function", {{"description", "a"}}}}}), "none")),
            "'tools[0].function.name' is required (a string)");
  // Accepted: none, "required" with no tools (nothing to call: no constraint), tools [] without a choice.
  ToolChoice tc;
  OJson schema;
  EXPECT_FALSE(parse_tool_choice(body_with(tools, "none"), tc, schema));
  EXPECT_EQ(tc.kind, ToolChoice::Kind::kNone);
  EXPECT_FALSE(parse_tool_choice(body_with(OJson::array(), "required"), tc, schema));
  EXPECT_EQ(tc.kind, ToolChoice::Kind::kNone);
  EXPECT_TRUE(schema.is_null());
  EXPECT_FALSE(parse_tool_choice(body_with(OJson::array(), nullptr), tc, schema));
}

TEST(ToolCalls, SchemasFollowTheTools) {
  ToolChoice tc;
  OJson schema;
  ASSERT_FALSE(parse_tool_choice(body_with(OJson::array({kWeather, kNoop}), {{"type", "function"}, {"function", {{"name", "get_weather"}}}}), tc, schema));
  EXPECT_EQ(tc.kind, ToolChoice::Kind::kNamed);
  EXPECT_EQ(tc.name, "get_weather");
  EXPECT_EQ(schema, kWeather["function"]["parameters"]);  // its own $defs stay where its $refs point
  ASSERT_FALSE(parse_tool_choice(body_with(OJson::array({kWeather, kNoop}), {{"type", "function"}, {"function", {{"name", "noop"}}}}), tc, schema));
  EXPECT_EQ(schema, OJson::parse(R"({"type": "object", "properties": {}})"));  // no parameters: {}
  ASSERT_FALSE(parse_tool_choice(body_with(OJson::array({kWeather, kNoop}), "required"), tc, schema));
  EXPECT_EQ(tc.kind, ToolChoice::Kind::kRequired);
  EXPECT_EQ(schema["type"], "array");
  EXPECT_EQ(schema["minItems"], 1);
  EXPECT_EQ(schema["items"]["anyOf"].size(), 2u);
  EXPECT_EQ(schema["items"]["anyOf"][0]["properties"]["name"]["enum"], OJson::array({"get_weather"}));
  // Each tool's own $refs now point where its parameters sit; its $defs stay with it.
  const OJson& weather = schema["items"]["anyOf"][0]["properties"]["parameters"];
  EXPECT_EQ(weather["properties"]["unit"]["$ref"], "#/items/anyOf/0/properties/parameters/$defs/unit");
  EXPECT_TRUE(weather.contains("$defs"));
  // Two tools may define one name differently (their definitions never meet), draft-07
  // "definitions" and refs into "properties" work too, and "#" is the tool's own root.
  OJson other = kWeather;
  other["function"]["name"] = "w2";
  other["function"]["parameters"]["$defs"]["unit"] = {{"enum", OJson::array({"k"})}};
  const OJson zod = OJson::parse(R"({"function": {"name": "z", "parameters": {"type": "object", "definitions": {"a": {"type": "integer"}},
      "properties": {"x": {"$ref": "#/definitions/a"}, "y": {"$ref": "#/properties/x"}, "e": {"enum": [{"$ref": "#/kept"}]}},
      "required": ["x", "y"]}}})");
  ASSERT_FALSE(parse_tool_choice(body_with(OJson::array({kWeather, other, zod}), "required"), tc, schema));
  EXPECT_EQ(schema["items"]["anyOf"][1]["properties"]["parameters"]["properties"]["unit"]["$ref"],
            "#/items/anyOf/1/properties/parameters/$defs/unit");
  const OJson& z = schema["items"]["anyOf"][2]["properties"]["parameters"]["properties"];
  EXPECT_EQ(z["x"]["$ref"], "#/items/anyOf/2/properties/parameters/definitions/a");
  EXPECT_EQ(z["y"]["$ref"], "#/items/anyOf/2/properties/parameters/properties/x");
  EXPECT_EQ(z["e"]["enum"][0]["$ref"], "#/kept");  // data, not a schema
  Result<std::string> re = json_schema_regex(schema);
  ASSERT_TRUE(re.ok()) << re.error();
  Result<std::shared_ptr<const ByteDfa>> dfa = compile_regex(*re);
  ASSERT_TRUE(dfa.ok()) << dfa.error();
  EXPECT_TRUE(regex_full_match(**dfa, R"([{"name":"w2","parameters":{"city":"a","unit":"k"}},{"name":"z","parameters":{"x":1,"y":2}}])"));
  EXPECT_FALSE(regex_full_match(**dfa, R"([{"name":"w2","parameters":{"city":"a","unit":"c"}}])"));
}

TEST(ToolCalls, WholeOutputsBecomeToolCalls) {
  ToolChoice named{ToolChoice::Kind::kNamed, "get_weather"};
  Result<OJson> calls = whole_tool_calls(named, R"({"city": "Oslo", "unit":"c"})");
  ASSERT_TRUE(calls.ok());
  ASSERT_EQ(calls->size(), 1u);
  EXPECT_EQ((*calls)[0]["type"], "function");
  EXPECT_EQ((*calls)[0]["function"]["name"], "get_weather");
  EXPECT_EQ((*calls)[0]["function"]["arguments"], R"({"city": "Oslo", "unit":"c"})");  // the text as generated
  const std::string id = (*calls)[0]["id"].get<std::string>();
  EXPECT_EQ(id.rfind("chatcmpl-tool-", 0), 0u);
  EXPECT_EQ(id.size(), 14u + 32u);
  EXPECT_NE(id, tool_call_id());

  ToolChoice required{ToolChoice::Kind::kRequired, ""};
  calls = whole_tool_calls(required, R"([{"name":"get_weather","parameters":{"city":"Zürich","days":3,"x":1.0,"y":1e2,"z":[true,null]}},
                                        {"name": "noop", "parameters": {}}])");
  ASSERT_TRUE(calls.ok()) << calls.error();
  ASSERT_EQ(calls->size(), 2u);
  // Python's json.dumps(parameters, ensure_ascii=False), as vLLM re-serializes them.
  EXPECT_EQ((*calls)[0]["function"]["arguments"], R"({"city": "Zürich", "days": 3, "x": 1.0, "y": 100.0, "z": [true, null]})");
  EXPECT_EQ((*calls)[1]["function"]["name"], "noop");
  EXPECT_EQ((*calls)[1]["function"]["arguments"], "{}");
  EXPECT_NE((*calls)[0]["id"], (*calls)[1]["id"]);
  EXPECT_FALSE(whole_tool_calls(required, R"([{"name":"noop","parameters":{)").ok());  // cut by max_tokens
  EXPECT_FALSE(whole_tool_calls(required, R"({"name":"noop","parameters":{}})").ok());  // not an array
  EXPECT_FALSE(whole_tool_calls(required, R"([{"name":"noop"}])").ok());
}

// Deltas fed every way the text can be cut add up to the whole output's calls.
void expect_stream_adds_up(const std::string& text, std::mt19937& g) {
  const OJson whole = OJson::parse(text);
  for (int way = 0; way < 3; ++way) {
    RequiredToolCallStream stream;
    std::vector<std::string> names, args;
    size_t fed = 0;
    while (fed < text.size()) {
      fed = way == 0 ? fed + 1 : std::min(text.size(), fed + 1 + g() % (way == 1 ? 4 : 40));
      for (const OJson& d : stream.update(std::string_view(text).substr(0, fed))) {
        const size_t k = d["index"].get<size_t>();
        if (d.contains("id")) {  // a call's first delta: its id, type and name, once, in order
          ASSERT_EQ(k, names.size()) << text;
          EXPECT_EQ(d["type"], "function");
          names.push_back(d["function"]["name"].get<std::string>());
          args.push_back(d["function"]["arguments"].get<std::string>());
        } else {
          ASSERT_LT(k, names.size()) << text;
          EXPECT_FALSE(d["function"].contains("name"));
          args[k] += d["function"]["arguments"].get<std::string>();
        }
      }
    }
    ASSERT_EQ(names.size(), whole.size()) << text;
    for (size_t k = 0; k < whole.size(); ++k) {
      EXPECT_EQ(names[k], whole[k]["name"]) << text;
      EXPECT_EQ(OJson::parse(args[k]), whole[k]["parameters"]) << text << " call " << k << ": " << args[k];
    }
  }
}

TEST(ToolCalls, StreamedDeltasAddUpToTheWholeCalls) {
  ToolChoice tc;
  OJson schema;
  ASSERT_FALSE(parse_tool_choice(body_with(OJson::array({kWeather, kNoop, kSearch}), "required"), tc, schema));
  std::mt19937 g(7);
  for (const char* ws : {"[ ]?", "[ \\n]{0,2}"}) {
    JsonSchemaOptions opt;
    opt.whitespace = ws;
    Result<std::string> re = json_schema_regex(schema, opt);
    ASSERT_TRUE(re.ok()) << re.error();
    Result<std::shared_ptr<const ByteDfa>> dfa = compile_regex(*re);
    ASSERT_TRUE(dfa.ok()) << dfa.error();
    int many = 0;
    for (const std::string& text : test::random_matches(**dfa, 120, 11)) {
      expect_stream_adds_up(text, g);
      many += OJson::parse(text).size() > 1;
    }
    EXPECT_GT(many, 10);  // parallel calls were exercised
  }
  // Hand-written edge cases: strings holding the structure's characters, scalars and nesting.
  for (const char* text : {R"([{"name":"search","parameters":{"q":"}],{\"","tags":["]","{"]}}])",
                           R"( [ { "name" : "noop" , "parameters" : { } } , {"name":"search","parameters":{"q":"a\\","score":1.5e0}} ] )",
                           R"([{"name":"search","parameters":{"q":"x","exact":false}},{"name":"noop","parameters":{}}])"})
    expect_stream_adds_up(text, g);
}

TEST(ToolCalls, DraftsReadUnfinishedText) {
  std::vector<ToolCallDraft> d = read_tool_call_drafts(R"([{"name": "get_wea)");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_FALSE(d[0].name_done);
  d = read_tool_call_drafts(R"([{"name": "get_weather", "parameters": )");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_TRUE(d[0].name_done);
  EXPECT_FALSE(d[0].arguments_started);  // no header until the arguments begin
  d = read_tool_call_drafts(R"([{"name": "get_weather", "parameters": {"city": "O)");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].arguments, R"({"city": "O)");
  d = read_tool_call_drafts(R"([{"name": "a", "parameters": {}}, {"name": "b", "parameters": {"x": 1}}])");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[1].name, "b");
  EXPECT_EQ(d[1].arguments, R"({"x": 1})");
  EXPECT_TRUE(read_tool_call_drafts("not json").empty());
  // Any text at all (the reader never runs past its end; under ASan in CI).
  std::mt19937 g(3);
  const std::string alphabet = R"([]{}",:\ namepartsx1.e-)";
  for (int i = 0; i < 3000; ++i) {
    std::string t = i % 2 ? "[{\"name\":\"a\",\"parameters\":" : "";
    for (size_t n = g() % 40; n-- > 0;) t.push_back(alphabet[g() % alphabet.size()]);
    RequiredToolCallStream stream;
    for (size_t k = 0; k <= t.size(); ++k) stream.update(std::string_view(t).substr(0, k));
    for (const ToolCallDraft& d : read_tool_call_drafts(t)) EXPECT_LE(d.arguments.size(), t.size());
  }
}

}  // namespace
}  // namespace infera::server
