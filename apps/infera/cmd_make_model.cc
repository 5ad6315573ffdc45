// infera make-model: write a random-weight model in the real format and shapes.
#include <chrono>
#include <cstdio>
#include <memory>

#include "cli_util.h"
#include "commands.h"
#include "modelgen/make_model.h"

namespace infera::cli {

void add_make_model(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<MakeModelOptions>();
  CLI::App* c = app.add_subcommand("make-model", "Write a random-weight model (GGUF or HF folder) in real shapes");
  c->add_option("--arch", o->arch, "qwen2 | llama")->capture_default_str();
  c->add_option("--preset", o->preset, "tiny | r1-1.5b | r1-7b | r1-14b | r1-32b (qwen2) | r1-8b | r1-70b (llama)")
      ->capture_default_str();
  c->add_option("--dtype", o->dtype, "f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1|q2_k|q3_k|q4_k|q5_k|q6_k|q4_k_m")
      ->capture_default_str();
  c->add_option("--format", o->format, "gguf | hf")->capture_default_str();
  c->add_option("--tokenizer", o->tokenizer, "tokenizer.json (or its folder) whose vocabulary the model gets");
  c->add_option("--seed", o->seed, "random seed (same seed, same weights)")->capture_default_str();
  c->add_option("--threads", o->n_threads, "worker threads (default: the physical cores)");
  c->add_option("--out", o->out, "output .gguf file, or folder for --format hf")->required();
  c->callback([o, exit_code] {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = make_model(*o);
    if (!r) {
      *exit_code = fail(r.error());
      return;
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "infera: wrote %s: %s %s %s, %lld tensors, %.3f B parameters, %llu bytes in %.1f s\n",
                 o->out.c_str(), o->arch.c_str(), o->preset.c_str(), o->dtype.c_str(),
                 static_cast<long long>(r->n_tensors), static_cast<double>(r->n_params) / 1e9,
                 static_cast<unsigned long long>(r->bytes), s);
    *exit_code = 0;
  });
}

}  // namespace infera::cli
