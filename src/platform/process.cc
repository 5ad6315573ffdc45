#include "platform/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

extern char** environ;

namespace infera::platform {

Result<Child> spawn_process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                            const std::string& work_dir) {
  if (argv.empty()) return error("empty command");
  // Everything the child needs is prepared before fork: only async-signal-safe calls after it.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    std::string key = kv.substr(0, kv.find('='));
    // Credentials of the platform and its clients are not the replica's (INFERA_API_KEY would make
    // `infera serve` demand a key): an op that wants a key sets it in its own env.
    if (key == "INFERA_API_KEY" || key == "INFERA_ADMIN_KEY" || key == "VLLM_API_KEY" || key == "INFERA_PLATFORM_URL")
      continue;
    if (!env.count(key)) env_strings.push_back(kv);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);
  std::string exe = argv[0].find('/') != std::string::npos ? argv[0] : find_in_path(argv[0]);
  if (exe.empty()) return error("{}: not found in PATH", argv[0]);

  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return error("pipe: {}", std::strerror(errno));
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return error("pipe: {}", std::strerror(errno));
  }
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {out[0], out[1], err[0], err[1]}) close(fd);
    return error("fork: {}", std::strerror(errno));
  }
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // no orphan replicas when the platform dies
    if (getppid() != parent) _exit(127);
    dup2(out[1], 1);
    dup2(err[1], 2);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    syscall(SYS_close_range, 3, ~0U, 0);
    if (!work_dir.empty() && chdir(work_dir.c_str()) != 0) {
      const char msg[] = "cannot change to the work_dir\n";
      (void)!write(2, msg, sizeof(msg) - 1);
      _exit(127);
    }
    signal(SIGPIPE, SIG_DFL);
    execve(exe.c_str(), args.data(), envp.data());
    const char msg[] = "exec failed\n";
    (void)!write(2, msg, sizeof(msg) - 1);
    _exit(127);
  }
  setpgid(pid, pid);
  close(out[1]);
  close(err[1]);
  return Child{pid, out[0], err[0]};
}

void signal_group(pid_t pid, int sig) {
  if (pid > 0) kill(-pid, sig);
}

std::optional<int> try_reap(pid_t pid) {
  int st = 0;
  pid_t r = waitpid(pid, &st, WNOHANG);
  if (r == 0) return std::nullopt;
  if (r < 0) return 255;  // already reaped or not ours
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 255;
}

Result<int> free_local_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return error("socket: {}", std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    return error("no free port: {}", std::strerror(errno));
  }
  close(fd);
  return static_cast<int>(ntohs(a.sin_port));
}

bool tcp_accepts(const std::string& host, int port, int timeout_ms) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host.c_str(), &a.sin_addr) != 1) {
    close(fd);
    return false;
  }
  int r = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  bool ok = r == 0;
  if (!ok && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, timeout_ms) == 1) {
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      ok = err == 0;
    }
  }
  close(fd);
  return ok;
}

std::string find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (!path) return "";
  std::string p = path;
  size_t pos = 0;
  while (pos <= p.size()) {
    size_t end = p.find(':', pos);
    if (end == std::string::npos) end = p.size();
    std::string dir = p.substr(pos, end - pos);
    if (!dir.empty()) {
      std::string full = dir + "/" + name;
      if (access(full.c_str(), X_OK) == 0 && !std::filesystem::is_directory(full)) return full;
    }
    pos = end + 1;
  }
  return "";
}

}  // namespace infera::platform
