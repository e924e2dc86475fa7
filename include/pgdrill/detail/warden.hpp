// The warden: a process forked once, before the first child, that outlives this one just long
// enough to clean up after it, whatever ends it (SIGKILL, the OOM killer). A child's own death
// signal does not reach what the child forks (pg_restore's parallel workers ran on until their
// COPY ended), and a container runs on without anyone. The warden learns, on a pipe, the process
// groups of the children and the commands that undo what lives outside them (a container's
// removal); at end of file, which comes when this process is gone, it kills the groups still
// listed and runs the commands still listed. It sits in a group of its own (a kill of this
// process's group does not take it), is named `pgdrill-warden`, ignores the terminal's signals,
// keeps no other descriptor, and between fork and exit makes only async-signal-safe calls.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include <pgdrill/detail/fd.hpp>

namespace pgdrill::detail::warden {

// One message: a header, then `length` bytes (a command: argv entries, an empty entry, then the
// environment, each NUL-terminated). A message is written whole in one write() of at most
// PIPE_BUF bytes, so messages of several threads never interleave.
enum kind : std::int32_t { group_started = 1, group_ended = 2, command_added = 3, command_dropped = 4 };
struct header {
  std::int32_t kind, value, length;
};
constexpr std::size_t max_message = 4096;  // PIPE_BUF on Linux

inline std::atomic<int> pipe_out{-1};
inline std::atomic<std::int32_t> last_command_id{0};

// Reads exactly `size` bytes; false at end of file.
inline bool read_whole(void* into, std::size_t size) noexcept {
  auto* at = static_cast<char*>(into);
  while (size > 0) {
    ssize_t got = retry_on_eintr([&] { return ::read(0, at, size); });
    if (got <= 0) return false;
    at += got;
    size -= static_cast<std::size_t>(got);
  }
  return true;
}

// Runs one registered command (argv, empty entry, environment) and waits for it.
inline void run_command(char* text, std::size_t length) noexcept {
  static char* argv[64];
  static char* envp[256];
  std::size_t argc = 0, envc = 0;
  bool in_env = false;
  for (std::size_t at = 0; at < length;) {
    char* entry = text + at;
    std::size_t size = ::strnlen(entry, length - at);
    if (size == 0 && !in_env) in_env = true;
    else if (!in_env && argc + 1 < 64) argv[argc++] = entry;
    else if (in_env && envc + 1 < 256) envp[envc++] = entry;
    at += size + 1;
  }
  argv[argc] = nullptr;
  envp[envc] = nullptr;
  if (argc == 0) return;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execve(argv[0], argv, envp);
    ::_exit(127);
  }
  int status = 0;
  if (pid > 0) retry_on_eintr([&] { return ::waitpid(pid, &status, 0); });
}

[[noreturn]] inline void watch(int pipe_in) noexcept {
  ::setpgid(0, 0);
  ::prctl(PR_SET_NAME, "pgdrill-warden");
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  for (int number : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) ::sigaction(number, &ignore, nullptr);
  ::dup2(pipe_in, 0);
#ifdef SYS_close_range
  ::syscall(SYS_close_range, 1U, ~0U, 0U);
#else
  for (int fd = 1; fd < 4096; ++fd) ::close(fd);
#endif
  static pid_t groups[4096];
  static struct {
    std::int32_t id;
    std::size_t offset, length;
  } commands[256];
  static char text[1 << 16];
  std::size_t group_count = 0, command_count = 0, text_used = 0;
  for (header message{}; read_whole(&message, sizeof message);) {
    std::size_t length = message.length > 0 ? static_cast<std::size_t>(message.length) : 0;
    if (length > max_message || length > sizeof text - text_used) break;  // not a message of ours
    if (!read_whole(text + text_used, length)) break;
    if (message.kind == group_started && group_count < 4096) groups[group_count++] = message.value;
    for (std::size_t index = 0; message.kind == group_ended && index < group_count; ++index)
      if (groups[index] == message.value) groups[index] = groups[--group_count];
    if (message.kind == command_added && command_count < 256) {
      commands[command_count++] = {message.value, text_used, length};
      text_used += length;
    }
    for (std::size_t index = 0; message.kind == command_dropped && index < command_count; ++index)
      if (commands[index].id == message.value) commands[index].id = 0;
  }
  for (std::size_t index = 0; index < group_count; ++index) ::kill(-groups[index], SIGKILL);
  for (std::size_t index = 0; index < command_count; ++index)
    if (commands[index].id != 0) run_command(text + commands[index].offset, commands[index].length);
  ::_exit(0);
}

/// Fork the warden, once per process; without one (fork failed) nothing is cleaned up for a
/// process that dies, as before.
inline void start_once() noexcept {
  static std::once_flag started;
  std::call_once(started, [] {
    auto ends = pipe_ends::open();
    if (!ends.read) return;
    pid_t pid = ::fork();
    if (pid == 0) watch(ends.read.get());
    if (pid > 0) pipe_out.store(ends.write.release());
  });
}

inline bool tell(std::int32_t kind, std::int32_t value, const std::string& payload = {}) noexcept {
  int fd = pipe_out.load();
  if (fd < 0 || sizeof(header) + payload.size() > max_message) return false;
  char message[max_message];
  header head{kind, value, static_cast<std::int32_t>(payload.size())};
  std::memcpy(message, &head, sizeof head);
  std::memcpy(message + sizeof head, payload.data(), payload.size());
  return retry_on_eintr([&] { return ::write(fd, message, sizeof head + payload.size()); }) > 0;
}

/// Have the warden run `argv` with exactly `environment` if this process dies before
/// forget(id); 0 when there is no warden (or the command is too long to send).
inline std::int32_t remember(const std::vector<std::string>& argv, const std::vector<std::string>& environment) {
  std::string payload;
  for (const auto& entry : argv) payload.append(entry).push_back('\0');
  payload.push_back('\0');
  for (const auto& entry : environment) payload.append(entry).push_back('\0');
  std::int32_t id = ++last_command_id;
  return tell(command_added, id, payload) ? id : 0;
}

inline void forget(std::int32_t id) noexcept {
  if (id != 0) tell(command_dropped, id);
}

}  // namespace pgdrill::detail::warden
