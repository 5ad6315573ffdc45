// Child processes of the node agent: spawned in their own process group, killed with the platform
// (PR_SET_PDEATHSIG), stdout and stderr on pipes.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace infera::platform {

struct Child {
  pid_t pid = -1;
  int out_fd = -1;  // the child's stdout, read end
  int err_fd = -1;  // the child's stderr, read end
};

// Starts argv[0] (searched in PATH) with the parent's environment plus `env`.
Result<Child> spawn_process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                            const std::string& work_dir);
// Signals the child's whole process group.
void signal_group(pid_t pid, int sig);
// Non-blocking reap: the exit code (128 + signal when killed), or nullopt while it runs.
std::optional<int> try_reap(pid_t pid);
// A TCP port on 127.0.0.1 that was free a moment ago.
Result<int> free_local_port();
// True when something accepts TCP connections on host:port within `timeout_ms`.
bool tcp_accepts(const std::string& host, int port, int timeout_ms);
// Absolute path of an executable found in PATH, or "".
std::string find_in_path(const std::string& name);

}  // namespace infera::platform
