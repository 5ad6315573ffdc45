// The template catalogue (spec platform.md §3.7, §8.4): one folder per template under templates/
// with info.json, job-definition*.json and README.md, embedded into the binary at build time
// (cmake/embed_files.cmake), so nothing is read from disk at run time.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace infera::platform {

// Every file under templates/: path relative to that folder ("deepseek-r1-qwen/info.json") → bytes,
// sorted by path. Defined by the source that cmake/embed_files.cmake generates.
const std::vector<std::pair<std::string_view, std::string_view>>& embedded_template_files();

// One deployable template: one per variant, or one for a template without variants.
struct Template {
  std::string id;            // "deepseek-r1-qwen-1-5b": parent + "-" + variant, or parent alone
  std::string parent;        // "deepseek-r1-qwen"
  std::string variant;       // "1-5b" (the info.json variant id with '.' → '-'), or ""
  bool listed = true;        // false: a job-definition file no info.json variant names ("file only")
  std::string name;          // the parent's name
  std::string variant_name;  // "1.5B Model", or ""
  std::string description;   // the variant's description, else the parent's, else ""
  std::string icon, readme;
  std::vector<std::string> category;
  nlohmann::ordered_json job_definition;  // parsed preserving key order
  std::string job_definition_text;        // file bytes as shipped
};

// One catalogue folder; `variants` lists its templates in info.json order (a template without
// variants has one entry, whose `variant` is empty).
struct TemplateGroup {
  std::string id, name, icon, description, readme;
  std::vector<std::string> category;
  std::vector<const Template*> variants;
};

// Move-only: groups point into the catalogue's own template list.
class TemplateCatalog {
 public:
  TemplateCatalog(TemplateCatalog&&) = default;
  TemplateCatalog& operator=(TemplateCatalog&&) = default;
  TemplateCatalog(const TemplateCatalog&) = delete;
  TemplateCatalog& operator=(const TemplateCatalog&) = delete;

  // Parses a catalogue from (path relative to templates/, bytes) pairs. Groups are sorted by folder
  // name. Fails, naming the file ("templates/<folder>/<file>: <reason>"), on: a path not of the
  // form <folder>/<file>; a missing or malformed info.json or README.md; an info.json id that is
  // not the folder name, longer than 16 chars or with a dot; a variant file that is missing; a
  // job-definition*.json that is not valid JSON or fails validate_job_definition (every such file
  // is checked, referenced or not); a folder without variants that has not exactly one
  // job-definition*.json; duplicate template ids. Other files are ignored.
  static Result<TemplateCatalog> from_files(
      const std::vector<std::pair<std::string, std::string>>& files);

  // The embedded catalogue, parsed once on first use; CHECK-fails (after printing the error) if the
  // embedded files are invalid, which the unit tests rule out.
  static const TemplateCatalog& builtin();

  const std::vector<Template>& templates() const { return templates_; }
  const std::vector<TemplateGroup>& groups() const { return groups_; }
  // The template with this id ("deepseek-r1-qwen-1-5b"), or nullptr.
  const Template* find(std::string_view id) const;

 private:
  TemplateCatalog() = default;

  std::vector<Template> templates_;
  std::vector<TemplateGroup> groups_;
};

}  // namespace infera::platform
