// Child programs without a shell: argv, environment, pipes, a timeout that kills the whole group.
#pragma once

// Why a small fork/exec wrapper rather than a library: Debian 12's Boost (1.74) predates
// Boost.Process v2, and posix_spawn can neither drop privileges (initdb refuses root) nor set a
// parent-death signal. The child side runs only async-signal-safe calls, so forking from a
// multi-threaded program stays safe.

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>  // optional user, optional exit status
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <pgdrill/detail/fd.hpp>
#include <pgdrill/detail/text.hpp>
#include <pgdrill/detail/ticker.hpp>
#include <pgdrill/detail/warden.hpp>
#include <pgdrill/error.hpp>

extern char** environ;

namespace pgdrill {

/// A system account a child runs as (used when pgdrill runs as root).
struct user_identity {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};

/// The account called `name`, or nothing when it does not exist.
inline std::optional<user_identity> lookup_user(const std::string& name) {
  passwd entry{};
  passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 || !found)
    return std::nullopt;
  return user_identity{found->pw_name, found->pw_uid, found->pw_gid};
}

/// The unprivileged account children run as when pgdrill runs as root (initdb refuses root, and
/// no backup should meet a root process), the same for the server and its tools: PGDRILL_RUN_AS,
/// else "postgres", else "nobody". Nothing when pgdrill does not run as root; provisioning_error
/// when none exists.
inline std::optional<user_identity> unprivileged_account() {
  if (::geteuid() != 0) return std::nullopt;
  std::vector<std::string> names;
  if (const char* env = std::getenv("PGDRILL_RUN_AS"); env && *env) names.push_back(env);
  else names = {"postgres", "nobody"};
  for (const auto& name : names)
    if (auto user = lookup_user(name); user && user->uid != 0) return user;
  std::string tried;
  for (const auto& name : names) tried += (tried.empty() ? "" : ", ") + name;
  throw provisioning_error("running as root, and no unprivileged account to run PostgreSQL and its tools as (tried " + tried +
                           "); create one or set PGDRILL_RUN_AS");
}

namespace detail {

// What a tool opening `paths` opens: each path, and each entry of a directory among them (a
// directory archive's files).
inline std::vector<std::filesystem::path> with_directory_entries(const std::vector<std::filesystem::path>& paths) {
  std::vector<std::filesystem::path> opened;
  for (const auto& path : paths) {
    opened.push_back(path);
    std::error_code ignored;
    if (std::filesystem::is_directory(path, ignored))
      for (const auto& entry : std::filesystem::directory_iterator(path, ignored)) opened.push_back(entry.path());
  }
  return opened;
}

// Whether `account` can open each of `paths` for reading (a directory: each file in it), tried
// for real in a forked child with the account's identity, so modes, ACLs and every parent
// directory count as they will for the tool. Opened non-blocking: a FIFO cannot hang the probe.
inline bool readable_as(const user_identity& account, const std::vector<std::filesystem::path>& paths) {
  std::vector<std::string> files;  // prepared before the fork: the child only opens
  for (const auto& path : with_directory_entries(paths)) files.push_back(path.string());
  if (files.empty()) return true;
  pid_t probe = ::fork();
  if (probe < 0) return false;
  if (probe == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(account.gid) != 0 || ::setuid(account.uid) != 0) ::_exit(2);
    for (const auto& file : files)
      if (!unique_fd(::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC))) ::_exit(1);
    ::_exit(0);
  }
  int raw = 0;
  retry_on_eintr([&] { return ::waitpid(probe, &raw, 0); });
  return WIFEXITED(raw) && WEXITSTATUS(raw) == 0;
}

}  // namespace detail

/// A program to start: absolute path, arguments (without argv[0]) and environment changes.
struct command {
  std::filesystem::path program;
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;  ///< set over the inherited environment
  std::vector<std::string> unset_env;                   ///< removed from the inherited environment
  /// What it inherits: by default only what programs need to run (detail::inherited_by_default),
  /// never the user's connection or secrets. A tool connecting to the user's own server also gets
  /// their libpq settings (PG*); a program the user runs gets all but those (and DATABASE_URL).
  enum class inheritance { tools, tools_and_libpq, all_but_libpq } inherits = inheritance::tools;
  std::filesystem::path cwd;                            ///< empty: inherit
  std::optional<user_identity> user;                    ///< run as this account (needs root)
  /// Files it opens by path (a backup, the user's SSL key). Run as `user`, it keeps the right to
  /// read any file, and no other (CAP_DAC_READ_SEARCH), only when that account cannot read them.
  std::vector<std::filesystem::path> reads;
  bool reads_any_file = false;  ///< set by as_user_reading

  command(std::filesystem::path program_path, std::vector<std::string> arguments = {})
      : program(std::move(program_path)), args(std::move(arguments)) {}

  command& with_env(std::vector<std::pair<std::string, std::string>> variables) {
    env.insert(env.end(), variables.begin(), variables.end());
    return *this;
  }
  command& without_env(std::vector<std::string> names) {
    unset_env.insert(unset_env.end(), names.begin(), names.end());
    return *this;
  }
  command& in_dir(std::filesystem::path dir) {
    cwd = std::move(dir);
    return *this;
  }
  command& as_user(std::optional<user_identity> account) {
    user = std::move(account);
    return *this;
  }
  /// Run as `account` (nothing: as pgdrill), opening `reads` and the program with the least right
  /// that can.
  command& as_user_reading(std::optional<user_identity> account) {
    auto opened = reads;
    opened.push_back(program);  // a tool in a directory of root's (a test's, a build's) too
    reads_any_file = account && !detail::readable_as(*account, opened);
    return as_user(std::move(account));
  }
  command& inheriting(inheritance what) {
    inherits = what;
    return *this;
  }

  /// The command line for messages. Secrets never go into argv, so this is safe to print.
  std::string display() const {
    std::string text = program.string();
    for (const auto& arg : args) text += ' ' + arg;
    return text;
  }
};

/// How a child ended.
struct exit_status {
  int code = -1;   ///< exit code when it exited
  int signal = 0;  ///< signal number when it was killed

  bool success() const noexcept { return signal == 0 && code == 0; }
  std::string describe() const {
    if (signal != 0) return "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
    return "exited with status " + std::to_string(code);
  }
  static exit_status from_wait(int raw) {
    if (WIFSIGNALED(raw)) return {-1, WTERMSIG(raw)};
    return {WEXITSTATUS(raw), 0};
  }
};

/// Where one of a child's standard streams goes.
struct stream_target {
  enum class kind { null, inherit, pipe, file } mode = kind::null;
  std::filesystem::path file;  ///< for `file`: opened for appending (stdout/stderr) or reading (stdin)

  static stream_target null() { return {}; }
  static stream_target inherit() { return {kind::inherit, {}}; }
  static stream_target pipe() { return {kind::pipe, {}}; }
  static stream_target to_file(std::filesystem::path path) { return {kind::file, std::move(path)}; }
};

namespace detail {

// The text of a /proc file, empty when it cannot be read (the process may exit at any moment).
inline std::string proc_text(const std::filesystem::path& file) {
  std::string text;
  unique_fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return text;
  char buffer[4096];
  for (ssize_t got; (got = ::read(fd.get(), buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<std::size_t>(got));
  return text;
}

// `root` and its descendants, from /proc/PID/task/TID/children: the drill's own processes only.
inline std::vector<std::string> process_tree(pid_t root) {
  std::vector<std::string> pids{std::to_string(root)};
  std::error_code ignored;
  for (std::size_t index = 0; index < pids.size() && pids.size() < 1024; ++index)
    for (const auto& task : std::filesystem::directory_iterator("/proc/" + pids[index] + "/task", ignored)) {
      std::istringstream children(proc_text(task.path() / "children"));
      for (std::string child; children >> child;) pids.push_back(child);
    }
  return pids;
}

// The host pid of the process in `root`'s tree that its own pid namespace knows as `inner` (the
// last field of NSpid: a sandboxed server's postmaster.pid and pg_backend_pid() give those); 0
// when there is none.
inline pid_t host_pid_in_tree(pid_t root, pid_t inner) {
  for (const auto& pid : process_tree(root)) {
    std::string status = proc_text("/proc/" + pid + "/status");
    auto line = status.find("\nNSpid:");
    if (line == std::string::npos) continue;
    auto end = status.find('\n', line + 1);
    auto fields = status.substr(line + 8, end - line - 8);
    auto last = fields.find_last_not_of(" \t");
    auto first = fields.find_last_of(" \t", last);
    if (last != std::string::npos && std::atol(fields.substr(first + 1, last - first).c_str()) == inner)
      return static_cast<pid_t>(std::atol(pid.c_str()));
  }
  return 0;
}

// Process groups of live children, so a signal handler can stop them with async-signal-safe calls.
inline std::array<std::atomic<pid_t>, 256> tracked_groups{};
inline std::atomic<int> received_signal{0};
inline std::atomic<int> finishing_depth{0};

inline void track_group(pid_t group) noexcept {
  warden::tell(warden::group_started, group);
  for (auto& slot : tracked_groups) {
    pid_t empty = 0;
    if (slot.compare_exchange_strong(empty, group)) return;
  }
}

inline void untrack_group(pid_t group) noexcept {
  warden::tell(warden::group_ended, group);
  for (auto& slot : tracked_groups) {
    pid_t expected = group;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

inline std::string errno_text(int number) { return std::strerror(number); }

// Linux marks every inherited descriptor close-on-exec in one call; earlier kernels keep what
// the program opened with O_CLOEXEC only (all of pgdrill's own descriptors are).
inline void cloexec_inherited_fds() noexcept {
#ifdef SYS_close_range
  constexpr unsigned close_range_cloexec = 1U << 2;
  ::syscall(SYS_close_range, 3U, ~0U, close_range_cloexec);
#endif
}

inline int open_pidfd(pid_t pid) noexcept {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

// Variables every child inherits: what programs need to run, find their files and talk to a
// container engine. Not PG* or DATABASE_URL (a password, or a redirection of the drill), nor
// anything else of the user's.
inline bool inherited_by_default(std::string_view name) {
  static const std::set<std::string_view> names{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR",
                                                "TERM", "LD_LIBRARY_PATH", "SSL_CERT_FILE", "SSL_CERT_DIR", "DBUS_SESSION_BUS_ADDRESS",
                                                "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
                                                "REGISTRY_AUTH_FILE", "NO_COLOR"};
  static const std::string_view prefixes[] = {"LC_", "PGDRILL_", "XDG_", "DOCKER_", "CONTAINER"};
  if (names.count(name)) return true;
  for (auto prefix : prefixes)
    if (name.substr(0, prefix.size()) == prefix) return true;
  return false;
}

inline bool inherited(const command& cmd, std::string_view name) {
  bool libpq = name.substr(0, 2) == "PG";
  switch (cmd.inherits) {
    case command::inheritance::all_but_libpq: return !(libpq || name == "DATABASE_URL") || inherited_by_default(name);
    case command::inheritance::tools_and_libpq: return libpq || inherited_by_default(name);
    case command::inheritance::tools: break;
  }
  return inherited_by_default(name);
}

inline std::vector<std::string> child_environment(const command& cmd) {
  std::vector<std::string> result;
  auto overridden = [&](std::string_view entry) {
    auto name = entry.substr(0, entry.find('='));
    for (const auto& removed : cmd.unset_env)
      if (name == removed) return true;
    for (const auto& [key, value] : cmd.env)
      if (name == key) return true;
    return false;
  };
  for (char** entry = environ; entry && *entry; ++entry) {
    std::string_view text(*entry);
    if (!overridden(text) && inherited(cmd, text.substr(0, text.find('=')))) result.emplace_back(text);
  }
  for (const auto& [key, value] : cmd.env) result.push_back(key + "=" + value);
  return result;
}

}  // namespace detail

/// Have `cmd` run, with the environment spawn would give it, if this process dies (even by
/// SIGKILL) before forget_on_death(id): what undoes something that outlives the process, such as
/// a container. 0 when that cannot be arranged; the next run's sweep is then the only cleanup.
inline std::int32_t run_on_death(const command& cmd) {
  detail::warden::start_once();
  std::vector<std::string> argv{cmd.program.string()};
  argv.insert(argv.end(), cmd.args.begin(), cmd.args.end());
  return detail::warden::remember(argv, detail::child_environment(cmd));
}

inline void forget_on_death(std::int32_t id) noexcept { detail::warden::forget(id); }

/// Signals that stop a run. The handlers only record the signal and forward SIGTERM to every
/// child group; the stage that is waiting sees it, throws `interrupted`, and RAII cleans up.
namespace signals {

inline void forward_to_children(int number) {
  detail::received_signal.store(number);
  for (auto& slot : detail::tracked_groups) {
    pid_t group = slot.load();
    if (group > 0) ::kill(-group, SIGTERM);
  }
}

/// Install handlers for SIGINT, SIGTERM and SIGHUP (the runner does this; a library user may).
inline void install_handlers() {
  struct sigaction action{};
  action.sa_handler = forward_to_children;
  sigemptyset(&action.sa_mask);
  for (int number : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(number, &action, nullptr);
}

/// The signal received so far, 0 when none.
inline int received() noexcept { return detail::received_signal.load(); }

/// While one lives, commands run despite a signal received: a teardown runs to completion (the
/// container removed, the server stopped) before the runner exits.
class finishing {
 public:
  finishing() { ++detail::finishing_depth; }
  ~finishing() { --detail::finishing_depth; }
  finishing(const finishing&) = delete;
  finishing& operator=(const finishing&) = delete;
};

/// The signal that stops what runs now: 0 when none was received, or while finishing.
inline int stopping() noexcept { return detail::finishing_depth.load() > 0 ? 0 : received(); }

inline void throw_if_interrupted() {
  if (int number = stopping()) throw interrupted(number);
}

/// While the returned watch lives, `cancel` is called (on the watch's thread, every 100 ms)
/// once SIGINT or SIGTERM arrived: it cancels the queries that run, so a long one cannot hold
/// the drill.
inline detail::ticker cancel_on_signal(std::function<void()> cancel) {
  return detail::ticker(
      [cancel = std::move(cancel)] {
        if (stopping()) cancel();
      },
      std::chrono::milliseconds(100));
}

}  // namespace signals

/// A running child in its own process group. Move-only; the destructor kills the group and
/// reaps the child if it is still running, so no process outlives its handle.
class child {
 public:
  struct streams {
    stream_target in, out, err;
  };

  /// Start `cmd`. Throws process_error when it cannot be started (the exec failure included).
  /// With `die_with_parent`, the kernel kills the child when this thread's process dies — only
  /// honoured from the main thread, since Linux ties it to the thread that forked.
  static child spawn(const command& cmd, const streams& io, bool die_with_parent = true) {
    std::vector<std::string> argv_text{cmd.program.string()};
    argv_text.insert(argv_text.end(), cmd.args.begin(), cmd.args.end());
    std::vector<std::string> env_text = detail::child_environment(cmd);
    std::vector<char*> argv, envp;
    for (auto& text : argv_text) argv.push_back(text.data());
    argv.push_back(nullptr);
    for (auto& text : env_text) envp.push_back(text.data());
    envp.push_back(nullptr);

    child result;
    auto child_ends = result.open_streams(cmd, io);
    auto exec_report = detail::pipe_ends::open();
    if (!exec_report.read) throw process_error("pipe: " + detail::errno_text(errno));
    detail::warden::start_once();
    const bool set_death_signal = die_with_parent && ::getpid() == static_cast<pid_t>(::gettid());
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid == 0) become(cmd, child_ends, argv.data(), envp.data(), exec_report.write.get(), set_death_signal, parent);
    int fork_errno = errno;
    exec_report.write.reset();
    for (auto& end : child_ends) end.reset();
    if (pid < 0) {
      throw process_error("cannot fork for " + cmd.program.string() + ": " + detail::errno_text(fork_errno));
    }
    ::setpgid(pid, pid);  // also in the parent, so the group exists before anyone signals it
    result.pid_ = pid;
    detail::track_group(pid);

    int exec_errno = 0;
    ssize_t got = detail::retry_on_eintr([&] { return ::read(exec_report.read.get(), &exec_errno, sizeof exec_errno); });
    if (got > 0) {
      result.wait();
      throw process_error("cannot run " + cmd.program.string() + (cmd.user ? " as user " + cmd.user->name : std::string()) +
                          ": " + detail::errno_text(exec_errno));
    }
    result.pidfd_.reset(detail::open_pidfd(pid));
    return result;
  }

  child() = default;
  child(child&& other) noexcept { *this = std::move(other); }
  child& operator=(child&& other) noexcept {
    if (this != &other) {
      kill_and_reap();
      pid_ = std::exchange(other.pid_, -1);
      status_ = std::exchange(other.status_, std::nullopt);
      pidfd_ = std::move(other.pidfd_);
      stdin_ = std::move(other.stdin_);
      stdout_ = std::move(other.stdout_);
      stderr_ = std::move(other.stderr_);
    }
    return *this;
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;
  ~child() { kill_and_reap(); }

  pid_t pid() const noexcept { return pid_; }
  int stdin_fd() const noexcept { return stdin_.get(); }
  int stdout_fd() const noexcept { return stdout_.get(); }
  int stderr_fd() const noexcept { return stderr_.get(); }
  /// Readable once the child has exited (-1 on kernels without pidfd).
  int exit_fd() const noexcept { return pidfd_.get(); }
  void close_stdin() noexcept { stdin_.reset(); }
  void close_stdout() noexcept { stdout_.reset(); }
  void close_stderr() noexcept { stderr_.reset(); }

  /// The exit status if the child has ended, without blocking. The child stays unreaped (a
  /// zombie) until kill_and_reap, so its process group id cannot be reused before the sweep.
  std::optional<exit_status> poll_exit() { return check_exit(WNOHANG); }

  /// Block until the child ends.
  exit_status wait() { return check_exit(0).value_or(exit_status{}); }

  /// Wait up to `limit`; nothing when still running.
  std::optional<exit_status> wait_for(std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!poll_exit()) {
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      if (pidfd_) {
        pollfd entry{pidfd_.get(), POLLIN, 0};
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        ::poll(&entry, 1, static_cast<int>(std::max<long long>(1, left.count())));
      } else {
        ::usleep(10000);
      }
    }
    return status_;
  }

  /// Signal the whole process group (the child and whatever it started).
  void signal_group(int number) noexcept {
    if (pid_ > 0) ::kill(-pid_, number);
  }

  /// SIGKILL the group and reap the child; safe to call twice.
  void kill_and_reap() noexcept {
    if (pid_ > 0) {
      signal_group(SIGKILL);  // the group may outlive its leader: always sweep it
      detail::untrack_group(pid_);  // before the reap frees the id for reuse
      int raw = 0;
      pid_t done = detail::retry_on_eintr([&] { return ::waitpid(pid_, &raw, 0); });
      if (!status_ && done == pid_) status_ = exit_status::from_wait(raw);
    }
    pid_ = -1;
    for (auto* fd : {&pidfd_, &stdin_, &stdout_, &stderr_}) fd->reset();
  }

 private:
  // The child's ends of its three standard streams (the parent's pipe ends go into *this).
  std::array<detail::unique_fd, 3> open_streams(const command& cmd, const streams& io) {
    std::array<detail::unique_fd, 3> child_ends;
    std::array<detail::unique_fd*, 3> parent_ends{&stdin_, &stdout_, &stderr_};
    const stream_target* targets[3] = {&io.in, &io.out, &io.err};
    for (int index = 0; index < 3; ++index) {
      const auto& target = *targets[index];
      switch (target.mode) {
        case stream_target::kind::inherit:
          child_ends[index].reset(::fcntl(index, F_DUPFD_CLOEXEC, 3));
          break;
        case stream_target::kind::null:
          child_ends[index].reset(::open("/dev/null", (index == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC));
          break;
        case stream_target::kind::file:
          child_ends[index].reset(index == 0 ? ::open(target.file.c_str(), O_RDONLY | O_CLOEXEC)
                                             : ::open(target.file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
          break;
        case stream_target::kind::pipe: {
          auto ends = detail::pipe_ends::open();
          child_ends[index] = std::move(index == 0 ? ends.read : ends.write);
          *parent_ends[index] = std::move(index == 0 ? ends.write : ends.read);
          break;
        }
      }
      if (!child_ends[index]) {
        int saved = errno;
        throw process_error("cannot set up standard stream " + std::to_string(index) + " for " + cmd.program.string() +
                            ": " + detail::errno_text(saved));
      }
    }
    return child_ends;
  }

  // In the forked child: async-signal-safe calls only until execve. A failure is written to
  // `report_fd` as errno for the parent to raise.
  [[noreturn]] static void become(const command& cmd, const std::array<detail::unique_fd, 3>& ends, char* const* argv, char* const* envp,
                                  int report_fd, bool set_death_signal, pid_t parent) noexcept {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction default_action{};
    default_action.sa_handler = SIG_DFL;
    for (int number : {SIGPIPE, SIGINT, SIGTERM, SIGHUP}) ::sigaction(number, &default_action, nullptr);
    ::setpgid(0, 0);
    bool ready = true;
    for (int index = 0; index < 3 && ready; ++index) ready = ::dup2(ends[index].get(), index) >= 0;
    if (ready) detail::cloexec_inherited_fds();
    if (ready && !cmd.cwd.empty()) ready = ::chdir(cmd.cwd.c_str()) == 0;
    if (ready && cmd.user) ready = take_identity(*cmd.user, cmd.reads_any_file);
    // After the uid change: changing credentials clears the death signal.
    if (ready && set_death_signal) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
    }
    if (ready) ::execve(argv[0], argv, envp);
    int number = errno;
    [[maybe_unused]] auto written = ::write(report_fd, &number, sizeof number);
    ::_exit(127);
  }

  // Async-signal-safe: become `user`, keeping only CAP_DAC_READ_SEARCH across execve when asked
  // (an ambient capability, which a program of a non-root account keeps).
  static bool take_identity(const user_identity& user, bool keep_file_reading) noexcept {
    if (keep_file_reading && ::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return false;
    if (::setgroups(0, nullptr) != 0 || ::setgid(user.gid) != 0 || ::setuid(user.uid) != 0) return false;
    if (!keep_file_reading) return true;
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct sets[2]{};
    sets[0].effective = sets[0].permitted = sets[0].inheritable = 1U << CAP_DAC_READ_SEARCH;  // bit 2: in the first word
    return ::syscall(SYS_capset, &header, sets) == 0 && ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_DAC_READ_SEARCH, 0, 0) == 0;
  }

  std::optional<exit_status> check_exit(int flags) {
    while (!status_ && pid_ > 0) {
      siginfo_t info{};
      if (detail::retry_on_eintr([&] { return ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT | flags); }) != 0)
        break;
      if (info.si_pid == 0) break;  // still running (WNOHANG)
      status_ = info.si_code == CLD_EXITED ? exit_status{info.si_status, 0} : exit_status{-1, info.si_status};
    }
    return status_;
  }

  pid_t pid_ = -1;
  std::optional<exit_status> status_;
  detail::unique_fd pidfd_, stdin_, stdout_, stderr_;
};

/// Options for `run`: what feeds stdin, where stdout goes, how long it may take.
struct run_options {
  std::chrono::milliseconds timeout{0};  ///< 0: no limit
  /// Fills the buffer with the next chunk of stdin, returns its size; 0 ends stdin. Unset: /dev/null.
  std::function<std::size_t(char* buffer, std::size_t capacity)> stdin_source;
  /// Receives stdout as it arrives. Unset: stdout is captured into run_result::out.
  std::function<void(std::string_view)> stdout_sink;
  /// Sees every chunk of stderr (for live classification); the tail is kept either way.
  std::function<void(std::string_view)> stderr_sink;
  std::size_t capture_limit = 16U << 20;  ///< bytes of stdout kept when captured
  std::size_t stderr_tail = 64U << 10;    ///< bytes of stderr kept for messages
  std::size_t stdin_chunk = 256U << 10;
  /// Called about every tick_interval while the child runs, with its pid (progress displays).
  std::function<void(pid_t)> on_tick;
  std::chrono::milliseconds tick_interval{250};

  /// Defaults with a time limit.
  static run_options within(std::chrono::milliseconds limit) {
    run_options options;
    options.timeout = limit;
    return options;
  }
};

/// What a finished `run` reports.
struct run_result {
  exit_status status;
  bool timed_out = false;
  std::string out;       ///< captured stdout (when no sink was given)
  std::string err_tail;  ///< the last run_options::stderr_tail bytes of stderr
  std::chrono::duration<double> elapsed{};

  bool ok() const noexcept { return !timed_out && status.success(); }
  /// "exited with status 1" or "timed out after 5.00s", for messages.
  std::string describe() const {
    if (timed_out) return "timed out after " + detail::seconds_text(elapsed.count());
    return status.describe();
  }
};

namespace detail {

inline void append_bounded(std::string& kept, std::string_view chunk, std::size_t limit, bool keep_tail) {
  if (keep_tail) {
    kept.append(chunk);
    if (kept.size() > limit) kept.erase(0, kept.size() - limit);
  } else if (kept.size() < limit) {
    kept.append(chunk.substr(0, limit - kept.size()));
  }
}

// Blocks SIGPIPE for this thread while feeding a child, so a child that quits early shows up as
// EPIPE; a pending SIGPIPE is consumed before the mask is restored (as libpq does).
class sigpipe_guard {
 public:
  sigpipe_guard() {
    sigemptyset(&pipe_only_);
    sigaddset(&pipe_only_, SIGPIPE);
    ::pthread_sigmask(SIG_BLOCK, &pipe_only_, &previous_);
  }
  ~sigpipe_guard() {
    timespec zero{0, 0};
    while (::sigtimedwait(&pipe_only_, nullptr, &zero) > 0) {
    }
    ::pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }

 private:
  sigset_t pipe_only_{}, previous_{};
};

}  // namespace detail

/// Run a command to completion: feed stdin, drain stdout and stderr, kill the whole process group
/// at the timeout or on an interrupting signal (then throws `interrupted`). Throws process_error
namespace detail {

// One read from the child's stdout or stderr into its sink (or the kept text); end of file
// closes that stream.
inline void read_output(child& proc, bool is_stdout, std::vector<char>& buffer, const run_options& options, run_result& result) {
  ssize_t got = ::read(is_stdout ? proc.stdout_fd() : proc.stderr_fd(), buffer.data(), buffer.size());
  if (got <= 0) {
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) return;
    is_stdout ? proc.close_stdout() : proc.close_stderr();
    return;
  }
  std::string_view chunk(buffer.data(), static_cast<std::size_t>(got));
  if (is_stdout) {
    if (options.stdout_sink) options.stdout_sink(chunk);
    else append_bounded(result.out, chunk, options.capture_limit, false);
  } else {
    if (options.stderr_sink) options.stderr_sink(chunk);
    append_bounded(result.err_tail, chunk, options.stderr_tail, true);
  }
}

}  // namespace detail

/// when the program cannot be started; a non-zero exit is a result, not an exception.
inline run_result run(const command& cmd, const run_options& options = {}) {
  using clock = std::chrono::steady_clock;
  detail::sigpipe_guard pipe_guard;
  const auto started = clock::now();
  child proc = child::spawn(cmd, {options.stdin_source ? stream_target::pipe() : stream_target::null(),
                                  stream_target::pipe(), stream_target::pipe()});
  if (proc.stdin_fd() >= 0) ::fcntl(proc.stdin_fd(), F_SETFL, O_NONBLOCK);

  run_result result;
  std::vector<char> input(options.stdin_chunk), output(64U << 10);
  std::size_t input_offset = 0, input_size = 0;
  std::optional<clock::time_point> exited_at;
  clock::time_point last_tick = started;

  auto read_into = [&](bool is_stdout) { detail::read_output(proc, is_stdout, output, options, result); };
  auto feed_stdin = [&] {
    if (input_offset == input_size) {
      input_offset = 0;
      input_size = options.stdin_source(input.data(), input.size());
      if (input_size == 0) return proc.close_stdin();
    }
    ssize_t put = ::write(proc.stdin_fd(), input.data() + input_offset, input_size - input_offset);
    if (put > 0) input_offset += static_cast<std::size_t>(put);
    else if (put < 0 && errno != EAGAIN && errno != EINTR) proc.close_stdin();  // the child stopped reading
  };

  while (true) {
    if (int number = signals::stopping()) {
      proc.kill_and_reap();
      throw interrupted(number);
    }
    if (!exited_at && proc.poll_exit()) exited_at = clock::now();
    bool streams_open = proc.stdout_fd() >= 0 || proc.stderr_fd() >= 0;
    // A grandchild may keep the pipes open after the child ended: give them a moment, no more.
    if (exited_at && (!streams_open || clock::now() - *exited_at > std::chrono::seconds(2))) break;
    if (options.timeout.count() > 0 && !exited_at && clock::now() - started >= options.timeout) {
      result.timed_out = true;
      proc.kill_and_reap();
      break;
    }
    std::vector<pollfd> waits;
    if (proc.stdout_fd() >= 0) waits.push_back({proc.stdout_fd(), POLLIN, 0});
    if (proc.stderr_fd() >= 0) waits.push_back({proc.stderr_fd(), POLLIN, 0});
    if (proc.stdin_fd() >= 0) waits.push_back({proc.stdin_fd(), POLLOUT, 0});
    if (proc.exit_fd() >= 0 && !exited_at) waits.push_back({proc.exit_fd(), POLLIN, 0});
    if (options.on_tick && clock::now() - last_tick >= options.tick_interval) {
      last_tick = clock::now();
      options.on_tick(proc.pid());
    }
    int wait_ms = (proc.exit_fd() < 0 || exited_at) ? 50 : options.on_tick ? static_cast<int>(options.tick_interval.count()) : 1000;
    if (::poll(waits.data(), waits.size(), wait_ms) < 0) continue;  // EINTR: loop checks signals
    for (const auto& entry : waits) {
      if (!(entry.revents & (POLLIN | POLLOUT | POLLHUP | POLLERR))) continue;
      if (entry.fd == proc.stdout_fd()) read_into(true);
      else if (entry.fd == proc.stderr_fd()) read_into(false);
      else if (entry.fd == proc.stdin_fd()) {
        if (entry.revents & POLLERR) proc.close_stdin();
        else feed_stdin();
      }
    }
  }
  proc.close_stdin();
  result.status = proc.wait();
  proc.kill_and_reap();  // leftovers of the group, if any
  result.elapsed = clock::now() - started;
  return result;
}

}  // namespace pgdrill
