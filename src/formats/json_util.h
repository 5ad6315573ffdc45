// Small helpers for reading JSON files (config.json, generation_config.json, tokenizer.json)
// with errors that name the file and the key.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace infera {

using Json = nlohmann::json;

Result<Json> read_json_file(const std::string& path);

// A JSON object with its file name, for precise errors.
class JsonObject {
 public:
  JsonObject(const Json& j, std::string path) : j_(j), path_(std::move(path)) {}
  const Json& json() const { return j_; }
  bool has(const std::string& key) const { return j_.contains(key) && !j_.at(key).is_null(); }
  Result<int64_t> get_int(const std::string& key) const;
  Result<int64_t> get_int_or(const std::string& key, int64_t dflt) const;
  Result<double> get_float(const std::string& key) const;
  Result<double> get_float_or(const std::string& key, double dflt) const;
  Result<bool> get_bool_or(const std::string& key, bool dflt) const;
  Result<std::string> get_string(const std::string& key) const;
  Result<std::string> get_string_or(const std::string& key, std::string dflt) const;

 private:
  const Json& j_;
  std::string path_;
};

}  // namespace infera
