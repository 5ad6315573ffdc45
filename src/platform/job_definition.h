// Job definition v0.1 (docs: spec platform.md §9): validation with path-named errors (§9.4), the
// market-compatibility requirements (§9.3), the native vLLM image rule (§10) and the canonical form
// hashed into a revision's `ipfs_definition_hash` (§3.2).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace infera::platform {

// Every problem found, each "path: reason" with dot/index paths rooted at `root`, e.g.
// "job_definition.ops[0].args.image: expected string". Empty = valid. Reasons are fixed phrases:
// "required", "unknown field", "expected string|integer|number|boolean|array|object", and value
// rules ("expected one of \"a\", \"b\"", "expected integer 1..65535", "duplicate op id \"x\"",
// ...). Unknown keys are allowed only inside `meta` and inside the free maps (env, headers,
// variables, results keys, IAM).
std::vector<std::string> validate_job_definition(const nlohmann::json& jd,
                                                 std::string_view root = "job_definition");

// The problems of validate_job_definition joined with "; " (the 400 message); empty if valid.
std::string job_definition_error(const nlohmann::json& jd,
                                 std::string_view root = "job_definition");

// Required VRAM in MB (§9.3), the first found of: meta.system_requirements.vram_total_mb;
// meta.system_requirements.required_vram (GB × 1024); meta.required_vram (GB × 1024); the max over
// ops of args.required_vram (GB × 1024). GB values are rounded up to whole MB. 0 when none. Fields
// of the wrong type are skipped, so this is safe on unvalidated input.
int64_t required_vram_mb(const nlohmann::json& jd);

// True iff `global.gpu` or any op's `args.gpu` is true.
bool needs_gpu(const nlohmann::json& jd);

// True iff `image` matches ^(docker\.io/)?vllm/vllm-openai(:[A-Za-z0-9._-]+)?$ (§10).
bool is_native_vllm_image(std::string_view image);

// Sorted keys at every level, no whitespace; invalid UTF-8 in strings is replaced by U+FFFD.
std::string canonical_json(const nlohmann::json& j);

// "sha256:<64 lowercase hex>" of canonical_json(jd): a revision's ipfs_definition_hash.
std::string definition_hash(const nlohmann::json& jd);

}  // namespace infera::platform
