// Loads a model from a GGUF file (or the first part of a split set) or a Hugging Face folder
// (config.json + safetensors), checks every tensor's presence, shape and type against the
// architecture's tensor list, and builds the Model over the memory-mapped weights.
#pragma once

#include <memory>
#include <string>

#include "backend/backend.h"
#include "base/status.h"
#include "formats/gguf.h"
#include "formats/json_util.h"
#include "formats/safetensors.h"
#include "model/model.h"

namespace infera {

struct LoadedModel {
  std::unique_ptr<Model> model;
  WeightFormat format = WeightFormat::kGguf;
  std::string path;
  // Exactly one of these holds the mapped weights (and, for GGUF, the tokenizer metadata).
  std::shared_ptr<GgufFile> gguf;
  std::shared_ptr<SafetensorsModel> safetensors;
  Json generation_config;  // HF generation_config.json, or null
};

Result<LoadedModel> load_model(const std::string& path, Backend& backend);

// True when `path` is a folder (an HF model or tokenizer folder), false for a file.
bool is_hf_folder(const std::string& path);

}  // namespace infera
