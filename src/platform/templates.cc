#include "platform/templates.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "base/check.h"
#include "platform/job_definition.h"

namespace infera::platform {
namespace {

using OJson = nlohmann::ordered_json;

constexpr size_t kMaxTemplateIdLength = 16;
constexpr std::string_view kInfoFile = "info.json";
constexpr std::string_view kReadmeFile = "README.md";

// The files of one catalogue folder: file name → bytes.
using Folder = std::map<std::string, std::string, std::less<>>;

Status file_error(std::string_view folder, std::string_view file, std::string_view reason) {
  return error("templates/{}/{}: {}", folder, file, reason);
}

bool is_job_definition_file(std::string_view name) {
  return name.starts_with("job-definition") && name.ends_with(".json");
}

Result<OJson> parse_json(std::string_view folder, std::string_view file, const std::string& text) {
  try {
    return OJson::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return file_error(folder, file, fmt::format("invalid JSON: {}", e.what()));
  }
}

// Checks that `obj[key]` is a string (when `required` or present) and returns it ("" when absent).
Result<std::string> string_member(const OJson& obj, std::string_view key, bool required,
                                  std::string_view folder, std::string_view file,
                                  std::string_view where) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    if (required) return file_error(folder, file, fmt::format("{}{}: required", where, key));
    return std::string();
  }
  if (!it->is_string())
    return file_error(folder, file, fmt::format("{}{}: expected string", where, key));
  return it->get<std::string>();
}

Status only_keys(const OJson& obj, std::initializer_list<std::string_view> allowed,
                 std::string_view folder, std::string_view file, std::string_view where) {
  for (const auto& [key, value] : obj.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return file_error(folder, file, fmt::format("{}{}: unknown field", where, key));
    }
  }
  return Status::ok();
}

// Parses and validates one job-definition file into `t`.
Status load_job_definition(std::string_view folder, const Folder& files, std::string_view file,
                           Template& t) {
  auto it = files.find(file);
  if (it == files.end()) return file_error(folder, file, "missing (named by info.json)");
  INFERA_ASSIGN_OR_RETURN(t.job_definition, parse_json(folder, file, it->second));
  t.job_definition_text = it->second;
  std::string problems = job_definition_error(nlohmann::json(t.job_definition));
  if (!problems.empty()) return file_error(folder, file, problems);
  return Status::ok();
}

// A variant as listed in info.json.
struct VariantInfo {
  std::string id, name, description, file;
  bool listed = true;
};

// Parses one folder into its group and templates (appended to `out`, in info.json order).
Status load_folder(const std::string& folder, const Folder& files, TemplateGroup& group,
                   std::vector<Template>& out) {
  auto info_it = files.find(kInfoFile);
  if (info_it == files.end()) return file_error(folder, kInfoFile, "missing");
  auto readme_it = files.find(kReadmeFile);
  if (readme_it == files.end()) return file_error(folder, kReadmeFile, "missing");
  INFERA_ASSIGN_OR_RETURN(OJson info, parse_json(folder, kInfoFile, info_it->second));
  if (!info.is_object()) return file_error(folder, kInfoFile, "expected object");
  INFERA_RETURN_IF_ERROR(only_keys(
      info, {"id", "name", "category", "icon", "description", "variants"}, folder, kInfoFile, ""));
  INFERA_ASSIGN_OR_RETURN(group.id, string_member(info, "id", true, folder, kInfoFile, ""));
  if (group.id != folder) {
    return file_error(folder, kInfoFile,
                      fmt::format("id \"{}\" differs from its folder name", group.id));
  }
  if (group.id.empty() || group.id.size() > kMaxTemplateIdLength ||
      group.id.find('.') != std::string::npos) {
    return file_error(folder, kInfoFile,
                      fmt::format("id \"{}\": expected 1..16 characters without dots", group.id));
  }
  INFERA_ASSIGN_OR_RETURN(group.name, string_member(info, "name", true, folder, kInfoFile, ""));
  INFERA_ASSIGN_OR_RETURN(group.icon, string_member(info, "icon", true, folder, kInfoFile, ""));
  INFERA_ASSIGN_OR_RETURN(group.description,
                          string_member(info, "description", false, folder, kInfoFile, ""));
  group.readme = readme_it->second;
  auto cat = info.find("category");
  if (cat == info.end()) return file_error(folder, kInfoFile, "category: required");
  if (!cat->is_array()) return file_error(folder, kInfoFile, "category: expected array");
  for (const OJson& c : *cat) {
    if (!c.is_string()) return file_error(folder, kInfoFile, "category: expected array of strings");
    group.category.push_back(c.get<std::string>());
  }

  std::vector<VariantInfo> variants;
  if (auto vs = info.find("variants"); vs != info.end()) {
    if (!vs->is_array() || vs->empty())
      return file_error(folder, kInfoFile, "variants: expected non-empty array");
    for (size_t i = 0; i < vs->size(); ++i) {
      const OJson& v = (*vs)[i];
      std::string where = fmt::format("variants[{}].", i);
      if (!v.is_object())
        return file_error(folder, kInfoFile, fmt::format("variants[{}]: expected object", i));
      INFERA_RETURN_IF_ERROR(
          only_keys(v, {"id", "name", "description", "job_definition"}, folder, kInfoFile, where));
      VariantInfo vi;
      INFERA_ASSIGN_OR_RETURN(vi.id, string_member(v, "id", true, folder, kInfoFile, where));
      INFERA_ASSIGN_OR_RETURN(vi.name, string_member(v, "name", true, folder, kInfoFile, where));
      INFERA_ASSIGN_OR_RETURN(vi.description,
                              string_member(v, "description", false, folder, kInfoFile, where));
      INFERA_ASSIGN_OR_RETURN(vi.file,
                              string_member(v, "job_definition", true, folder, kInfoFile, where));
      bool id_ok = !vi.id.empty() && std::all_of(vi.id.begin(), vi.id.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '.';
      });
      if (!id_ok) {
        return file_error(folder, kInfoFile,
                          fmt::format("{}id \"{}\": expected [A-Za-z0-9.-]+", where, vi.id));
      }
      variants.push_back(std::move(vi));
    }
  } else {
    std::vector<std::string> found;
    for (const auto& [name, bytes] : files) {
      if (is_job_definition_file(name)) found.push_back(name);
    }
    if (found.size() != 1) {
      return file_error(
          folder, kInfoFile,
          fmt::format(
              "without variants the folder needs exactly one job-definition*.json, found {}",
              found.size()));
    }
    variants.push_back({"", "", "", found[0]});
  }

  // Every shipped job-definition file must be valid, referenced or not.
  for (const auto& [name, bytes] : files) {
    if (!is_job_definition_file(name)) continue;
    Template scratch;
    INFERA_RETURN_IF_ERROR(load_job_definition(folder, files, name, scratch));
  }

  // Files no variant names ("file only", e.g. job-definition-8b.json) are templates too, unlisted
  // in the grouped catalogue: parent + "-" + the file's suffix.
  std::vector<VariantInfo> all = variants;
  const bool has_variants = !variants.empty() && !variants[0].id.empty();
  for (const auto& [name, bytes] : files) {
    if (!has_variants || !is_job_definition_file(name)) continue;
    bool named = false;
    for (const VariantInfo& vi : variants) named = named || vi.file == name;
    if (named) continue;
    std::string suffix = name.substr(std::string("job-definition").size());
    suffix = suffix.substr(0, suffix.size() - 5);  // ".json"
    if (!suffix.empty() && (suffix[0] == '-' || suffix[0] == '_')) suffix.erase(0, 1);
    if (suffix.empty()) continue;
    std::string title = suffix;
    try {
      const auto jd = nlohmann::json::parse(bytes);
      const auto& cmd = jd.at("ops").at(0).at("args").at("cmd");
      for (size_t i = 0; i + 1 < cmd.size(); ++i)
        if (cmd[i] == "--served-model-name") title = cmd[i + 1].get<std::string>();
    } catch (const std::exception&) {
    }
    all.push_back({suffix, title, "", name});
    all.back().listed = false;
  }
  for (const VariantInfo& vi : all) {
    Template t;
    t.listed = vi.listed;
    t.parent = group.id;
    t.variant = vi.id;
    std::replace(t.variant.begin(), t.variant.end(), '.', '-');
    t.id = t.variant.empty() ? t.parent : t.parent + "-" + t.variant;
    t.name = group.name;
    t.variant_name = vi.name;
    t.description = vi.description.empty() ? group.description : vi.description;
    t.icon = group.icon;
    t.readme = group.readme;
    t.category = group.category;
    INFERA_RETURN_IF_ERROR(load_job_definition(folder, files, vi.file, t));
    out.push_back(std::move(t));
  }
  return Status::ok();
}

}  // namespace

Result<TemplateCatalog> TemplateCatalog::from_files(
    const std::vector<std::pair<std::string, std::string>>& files) {
  std::map<std::string, Folder> folders;
  for (const auto& [path, bytes] : files) {
    size_t slash = path.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == path.size()) {
      return error("templates/{}: expected <template>/<file>", path);
    }
    std::string file = path.substr(slash + 1);
    if (file.find('/') != std::string::npos) continue;  // nested files are not part of the format
    folders[path.substr(0, slash)][file] = bytes;
  }

  TemplateCatalog catalog;
  std::vector<size_t> first;  // index of each group's first template in catalog.templates_
  for (const auto& [name, folder] : folders) {
    TemplateGroup group;
    first.push_back(catalog.templates_.size());
    INFERA_RETURN_IF_ERROR(load_folder(name, folder, group, catalog.templates_));
    catalog.groups_.push_back(std::move(group));
  }
  first.push_back(catalog.templates_.size());

  std::set<std::string_view> ids;
  for (size_t g = 0; g < catalog.groups_.size(); ++g) {
    for (size_t i = first[g]; i < first[g + 1]; ++i) {
      const Template& t = catalog.templates_[i];
      if (!ids.insert(t.id).second) {
        return error("templates/{}/{}: duplicate template id \"{}\"", t.parent, kInfoFile, t.id);
      }
      if (t.listed) catalog.groups_[g].variants.push_back(&t);
    }
  }
  return catalog;
}

const TemplateCatalog& TemplateCatalog::builtin() {
  static const TemplateCatalog catalog = [] {
    std::vector<std::pair<std::string, std::string>> files;
    for (const auto& [path, bytes] : embedded_template_files()) files.emplace_back(path, bytes);
    Result<TemplateCatalog> r = from_files(files);
    if (!r) std::fprintf(stderr, "infera: built-in templates: %s\n", r.error().c_str());
    CHECK(r.ok());
    return std::move(r).value();
  }();
  return catalog;
}

const Template* TemplateCatalog::find(std::string_view id) const {
  for (const Template& t : templates_) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

}  // namespace infera::platform
