// JSON Schema to a regular expression (engine/regex_dfa.h) whose matches are JSON texts that the
// schema accepts: how response_format json_schema, structured_outputs.json and guided_json
// constrain a request's output.
//
//   Result<std::string> re = json_schema_regex(schema);       // 400 on a schema it cannot honour
//   Result<std::shared_ptr<const ByteDfa>> dfa = compile_regex(*re);
//
// Every output that matches validates against the schema. Supported: type (one or a list),
// properties / required (written in the schema's order; optional ones may be left out; other keys
// are not generated), additionalProperties (for objects without properties), items, prefixItems,
// minItems / maxItems, enum, const, anyOf / oneOf, allOf of one schema, $ref into the same document
// (#/$defs/..., #/definitions/..., #), string minLength / maxLength / pattern / format (date-time,
// date, time, uuid; other formats are annotations), integer minimum / maximum / exclusive bounds,
// number minimum 0, nullable. Annotations (title, description, default, examples, ...) are
// ignored. Validation keywords it cannot guarantee (multipleOf, uniqueItems, not, if/then/else,
// patternProperties, ...) are refused with their name rather than silently not enforced.
// Values whose schema allows anything (`{}`, `true`) nest up to `any_depth` levels.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace infera {

struct JsonSchemaOptions {
  std::string whitespace = "[ ]?";  // between tokens (vLLM's whitespace_pattern)
  int any_depth = 2;                // nesting of objects and arrays inside a value of any type
  int max_ref_depth = 8;            // $ref expansions on one path (recursive schemas)
};

Result<std::string> json_schema_regex(const nlohmann::ordered_json& schema, const JsonSchemaOptions& opt = {});

}  // namespace infera
