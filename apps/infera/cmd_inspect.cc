// infera inspect: metadata and tensor table of a GGUF file or an HF model folder.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli_util.h"
#include "commands.h"
#include "formats/gguf.h"
#include "formats/json_util.h"
#include "formats/safetensors.h"

namespace infera::cli {

namespace {

int inspect_gguf(const std::string& path, bool full) {
  auto f = GgufFile::open(path);
  if (!f) return fail(f.error());
  std::printf("file: %s (GGUF v%u, %d part%s, alignment %u)\n", path.c_str(), f->version(), f->n_files(),
              f->n_files() == 1 ? "" : "s", f->alignment());
  std::printf("metadata: %zu keys\n", f->metadata().size());
  for (const auto& [key, value] : f->metadata())
    std::printf("  %-44s %s\n", key.c_str(), value.to_display(full ? SIZE_MAX : 8).c_str());
  int64_t n_params = 0;
  uint64_t n_bytes = 0;
  std::printf("tensors: %zu\n", f->tensors().size());
  std::printf("  %-36s %-6s %-22s %12s %12s\n", "name", "type", "shape", "offset", "bytes");
  for (const GgufTensor& t : f->tensors()) {
    std::printf("  %-36s %-6s %-22s %12llu %12llu\n", t.name.c_str(), ggml_type_name(t.ggml_type).c_str(),
                shape_string(t.view).c_str(), static_cast<unsigned long long>(t.offset),
                static_cast<unsigned long long>(t.view.nbytes));
    n_params += t.view.n_elements();
    n_bytes += t.view.nbytes;
  }
  std::printf("total: %lld parameters (%.3f B), %llu tensor bytes\n", static_cast<long long>(n_params),
              static_cast<double>(n_params) / 1e9, static_cast<unsigned long long>(n_bytes));
  return 0;
}

int inspect_hf(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  if (fs::exists(cfg_path)) {
    auto cfg = read_json_file(cfg_path);
    if (!cfg) return fail(cfg.error());
    std::printf("config.json:\n");
    for (auto it = cfg->begin(); it != cfg->end(); ++it)
      std::printf("  %-44s %s\n", it.key().c_str(), it.value().dump().c_str());
  }
  auto st = SafetensorsModel::open(dir);
  if (!st) return fail(st.error());
  int64_t n_params = 0;
  std::printf("tensors: %zu in %zu file(s)\n", st->tensors().size(), st->file_paths().size());
  std::printf("  %-52s %-5s %-16s\n", "name", "dtype", "shape");
  for (const SafetensorsTensor& t : st->tensors()) {
    std::string shape = "[";
    int64_t n = 1;
    for (size_t i = 0; i < t.shape.size(); ++i) {
      shape += (i ? ", " : "") + std::to_string(t.shape[i]);
      n *= t.shape[i];
    }
    std::printf("  %-52s %-5s %-16s\n", t.name.c_str(), t.dtype.c_str(), (shape + "]").c_str());
    n_params += n;
  }
  std::printf("total: %lld parameters (%.3f B)\n", static_cast<long long>(n_params), static_cast<double>(n_params) / 1e9);
  return 0;
}

}  // namespace

void add_inspect(CLI::App& app, int* exit_code) {
  auto path = std::make_shared<std::string>();
  auto full = std::make_shared<bool>(false);
  CLI::App* c = app.add_subcommand("inspect", "Show the metadata and tensor table of a GGUF file or HF folder");
  c->add_option("path", *path, "GGUF file or Hugging Face model folder")->required();
  c->add_flag("--full", *full, "print whole arrays and strings");
  c->callback([path, full, exit_code] {
    *exit_code = std::filesystem::is_directory(*path) ? inspect_hf(*path) : inspect_gguf(*path, *full);
  });
}

}  // namespace infera::cli
