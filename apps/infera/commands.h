// Subcommands of the `infera` binary. Each registers itself on the app and sets *exit_code when run.
#pragma once

#include <CLI/CLI.hpp>

namespace infera::cli {

void add_run(CLI::App& app, int* exit_code);
void add_eval(CLI::App& app, int* exit_code);
void add_make_model(CLI::App& app, int* exit_code);
void add_inspect(CLI::App& app, int* exit_code);
void add_pull(CLI::App& app, int* exit_code);  // Hugging Face Hub download
void add_tokenize(CLI::App& app, int* exit_code);
void add_chat_template(CLI::App& app, int* exit_code);
void add_serve(CLI::App& app, int* exit_code);
void add_platform(CLI::App& app, int* exit_code);
void add_platform_client(CLI::App& app, int* exit_code);  // deploy, job, market, template, credits, apikey, login
void add_node(CLI::App& app, int* exit_code);             // node run|list|get|drain|join-token, model import|list
void add_bench(CLI::App& app, int* exit_code);
void add_bench_serve(CLI::App& app, int* exit_code);  // load generator for OpenAI-compatible servers

}  // namespace infera::cli
