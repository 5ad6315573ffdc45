#include "formats/json_util.h"

#include "base/mapped_file.h"

namespace infera {

Result<Json> read_json_file(const std::string& path) {
  INFERA_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded()) return error("{}: not valid JSON", path);
  return j;
}

Result<int64_t> JsonObject::get_int(const std::string& key) const {
  if (!has(key)) return error("{}: required key '{}' is missing", path_, key);
  const Json& v = j_.at(key);
  if (!v.is_number_integer()) return error("{}: key '{}' is {}, expected an integer", path_, key, v.dump());
  return v.get<int64_t>();
}
Result<int64_t> JsonObject::get_int_or(const std::string& key, int64_t dflt) const {
  return has(key) ? get_int(key) : Result<int64_t>(dflt);
}
Result<double> JsonObject::get_float(const std::string& key) const {
  if (!has(key)) return error("{}: required key '{}' is missing", path_, key);
  const Json& v = j_.at(key);
  if (!v.is_number()) return error("{}: key '{}' is {}, expected a number", path_, key, v.dump());
  return v.get<double>();
}
Result<double> JsonObject::get_float_or(const std::string& key, double dflt) const {
  return has(key) ? get_float(key) : Result<double>(dflt);
}
Result<bool> JsonObject::get_bool_or(const std::string& key, bool dflt) const {
  if (!has(key)) return dflt;
  const Json& v = j_.at(key);
  if (!v.is_boolean()) return error("{}: key '{}' is {}, expected true or false", path_, key, v.dump());
  return v.get<bool>();
}
Result<std::string> JsonObject::get_string(const std::string& key) const {
  if (!has(key)) return error("{}: required key '{}' is missing", path_, key);
  const Json& v = j_.at(key);
  if (!v.is_string()) return error("{}: key '{}' is {}, expected a string", path_, key, v.dump());
  return v.get<std::string>();
}
Result<std::string> JsonObject::get_string_or(const std::string& key, std::string dflt) const {
  return has(key) ? get_string(key) : Result<std::string>(std::move(dflt));
}

}  // namespace infera
