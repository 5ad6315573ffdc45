// infera: run, serve and deploy open LLMs. This file only wires subcommands together.
#include <malloc.h>

#include <CLI/CLI.hpp>

#include "commands.h"

int main(int argc, char** argv) {
  // Engine steps allocate and free the same activation and logit buffers (megabytes) thousands of
  // times; from the heap they are reused, from fresh mmaps every page would be zeroed again.
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  CLI::App app{"infera: run DeepSeek-R1 and other open LLMs on your own hardware"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "infera 0.1.0");
  int exit_code = 0;
  infera::cli::add_run(app, &exit_code);
  infera::cli::add_eval(app, &exit_code);
  infera::cli::add_make_model(app, &exit_code);
  infera::cli::add_inspect(app, &exit_code);
  infera::cli::add_pull(app, &exit_code);
  infera::cli::add_tokenize(app, &exit_code);
  infera::cli::add_chat_template(app, &exit_code);
  infera::cli::add_serve(app, &exit_code);
  infera::cli::add_platform(app, &exit_code);
  infera::cli::add_platform_client(app, &exit_code);
  infera::cli::add_node(app, &exit_code);
  infera::cli::add_bench(app, &exit_code);
  infera::cli::add_bench_serve(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
