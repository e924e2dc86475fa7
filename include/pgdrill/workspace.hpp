// The drill's own temp space: private scratch directories named after their owning process, and
// the sweep that removes those whose owner is gone (a run killed with SIGKILL).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <pgdrill/detail/fd.hpp>
#include <pgdrill/detail/time.hpp>
#include <pgdrill/error.hpp>
#include <pgdrill/process.hpp>

namespace pgdrill {

namespace detail {

// Field 22 of /proc/PID/stat: the process's start time, which tells a live owner from a
// recycled pid; 0 when there is no such process, or only its zombie (it has ended, its parent
// has not reaped it yet). The command name (field 2) may contain spaces: count from its ')'.
inline unsigned long long process_start_time(pid_t pid) {
  std::string text = proc_text("/proc/" + std::to_string(pid) + "/stat");
  auto close = text.rfind(')');
  if (close == std::string::npos || close + 2 > text.size()) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  for (int index = 3; index <= 22 && (fields >> field); ++index) {
    if (index == 3 && field == "Z") return 0;
    if (index == 22) return std::stoull(field);
  }
  return 0;
}

inline std::string random_suffix() {
  static thread_local std::mt19937_64 generator{std::random_device{}()};
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string text;
  for (int index = 0; index < 8; ++index) text += alphabet[generator() % (sizeof alphabet - 1)];
  return text;
}

// A secret only this drill knows (a throwaway server's password, psql's \restrict key), drawn
// from the system's entropy source.
inline std::string random_secret(int length = 40) {
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::random_device source;
  std::string text;
  for (int index = 0; index < length; ++index) text += alphabet[source() % (sizeof alphabet - 1)];
  return text;
}

}  // namespace detail

/// Owner tag of this process: "<pid>-<start time>", embedded in the names of what it creates.
inline std::string owner_tag() {
  return std::to_string(::getpid()) + "-" + std::to_string(detail::process_start_time(::getpid()));
}

/// True when the process named by an owner tag ("<pid>-<start time>") is still running.
inline bool owner_alive(const std::string& tag) {
  auto dash = tag.find('-');
  if (dash == std::string::npos) return false;
  try {
    pid_t pid = static_cast<pid_t>(std::stol(tag.substr(0, dash)));
    return pid > 0 && detail::process_start_time(pid) == std::stoull(tag.substr(dash + 1));
  } catch (const std::exception&) {
    return false;
  }
}

/// Who created a leftover that lives beyond this machine's temp space (a scratch database on a
/// shared server, a container of a remote engine): the run's owner tag and the machine it ran on.
/// A sweep removes only what provably belongs to a run that has ended: one of this host, this
/// boot and this pid namespace that no longer runs, or one of this host before its last reboot.
/// What a run elsewhere created is left to the sweeps of that machine.
struct run_owner {
  std::string tag;  ///< "<pid>-<start time>"
  std::string host, boot, pid_namespace;

  static run_owner of_this_run() {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    std::string boot;
    std::istringstream(detail::proc_text("/proc/sys/kernel/random/boot_id")) >> boot;
    std::error_code ignored;
    return {owner_tag(), host, boot, std::filesystem::read_symlink("/proc/self/ns/pid", ignored).string()};
  }
  /// From text(); a bare owner tag (what older versions wrote) is taken as this machine's.
  static run_owner parse(const std::string& text) {
    std::istringstream words(text);
    run_owner owner;
    words >> owner.tag;
    for (std::string word; words >> word;) {
      auto equals = word.find('=');
      std::string key = word.substr(0, equals), value = equals == std::string::npos ? "" : word.substr(equals + 1);
      if (key == "host") owner.host = value;
      if (key == "boot") owner.boot = value;
      if (key == "pidns") owner.pid_namespace = value;
    }
    return owner;
  }
  std::string text() const { return tag + " host=" + host + " boot=" + boot + " pidns=" + pid_namespace; }

  bool provably_gone() const {
    if (host.empty()) return !owner_alive(tag);
    auto here = of_this_run();
    if (host != here.host) return false;
    if (boot != here.boot) return true;
    return pid_namespace == here.pid_namespace && !owner_alive(tag);
  }
};

/// Where scratch directories go: PGDRILL_TMPDIR, TMPDIR, else /tmp.
inline std::filesystem::path default_temp_root() {
  for (const char* name : {"PGDRILL_TMPDIR", "TMPDIR"})
    if (const char* value = std::getenv(name); value && *value) return value;
  return "/tmp";
}

constexpr const char* scratch_prefix = "pgdrill-";
/// The file in each scratch directory naming the run that made it (run_owner::text()) and, once
/// it is given to another account, that account's uid: what lets a sweep prove it is a drill's.
constexpr const char* scratch_marker = ".pgdrill-run";

/// A private (0700) directory `<root>/pgdrill-<pid>-<start>-<random>`, marked with the run that
/// made it (scratch_marker), removed with everything in it when the handle goes. Move-only.
class scratch_dir {
 public:
  explicit scratch_dir(const std::filesystem::path& root = default_temp_root()) {
    std::error_code failure;
    std::filesystem::create_directories(root, failure);
    for (int attempt = 0; attempt < 20; ++attempt) {
      auto candidate = root / (scratch_prefix + owner_tag() + "-" + detail::random_suffix());
      if (::mkdir(candidate.c_str(), 0700) == 0) {
        path_ = candidate;
        ::chmod(path_.c_str(), 0700);  // whatever the umask
        mark("");
        return;
      }
      if (errno != EEXIST) break;
    }
    throw could_not_verify("cannot create a scratch directory in " + root.string() + ": " +
                           std::strerror(errno));
  }
  scratch_dir(scratch_dir&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  scratch_dir& operator=(scratch_dir&& other) noexcept {
    if (this != &other) {
      remove();
      path_ = std::exchange(other.path_, {});
    }
    return *this;
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  ~scratch_dir() { remove(); }

  const std::filesystem::path& path() const noexcept { return path_; }

  /// Give the directory to another account (a dropped-privilege server writes into it).
  void give_to(const user_identity& user) const {
    if (::chown(path_.c_str(), user.uid, user.gid) != 0)
      throw could_not_verify("cannot hand " + path_.string() + " to user " + user.name + ": " + std::strerror(errno));
    mark(" given=" + std::to_string(user.uid));
  }

  /// Remove now; safe to call twice.
  void remove() noexcept {
    if (path_.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
    path_.clear();
  }

 private:
  // The marker stays the creator's (0644): the account the directory is given to cannot forge one.
  void mark(const std::string& given) const {
    std::ofstream(path_ / scratch_marker, std::ios::trunc) << run_owner::of_this_run().text() << given << "\n";
  }

  std::filesystem::path path_;
};

/// What one sweep removed, for `pgdrill gc` and logs.
struct reaped_item {
  std::string what;  ///< "directory /tmp/pgdrill-..." or "server pid 1234"
};

namespace detail {

// Whether `directory` is provably the scratch directory of a run that has ended: named exactly as
// scratch_dir names them, a real directory of mode 0700, and a marker this uid wrote naming a
// run of this machine that is gone, with the same tag as the name; owned by this uid or by the
// account the marker says it was given to. Anything else is left alone, whatever its name.
inline bool dead_runs_scratch_dir(const std::filesystem::path& directory) {
  static const std::regex name(R"(pgdrill-(\d+-\d+)-[a-z0-9]{8})");
  std::smatch match;
  const std::string file_name = directory.filename().string();
  struct stat info{}, marker_info{};
  if (!std::regex_match(file_name, match, name) || ::lstat(directory.c_str(), &info) != 0 || !S_ISDIR(info.st_mode) ||
      (info.st_mode & 07777) != 0700)
    return false;
  const auto marker = directory / scratch_marker;
  if (::lstat(marker.c_str(), &marker_info) != 0 || !S_ISREG(marker_info.st_mode) || marker_info.st_uid != ::geteuid())
    return false;
  std::string text;
  std::getline(std::ifstream(marker), text);
  auto owner = run_owner::parse(text);
  auto given = text.find(" given=");
  const bool owned = info.st_uid == ::geteuid() ||
                     (given != std::string::npos && std::to_string(info.st_uid) == text.substr(given + 7));
  return owned && owner.tag == match[1].str() && owner.provably_gone();
}

// Host processes whose working directory lies in `directory` (a server left running there, its
// sandbox's processes included: /proc shows them with the path bound at the same place).
inline std::vector<pid_t> processes_working_in(const std::filesystem::path& directory) {
  std::vector<pid_t> found;
  std::error_code ignored;
  const std::string prefix = directory.string() + "/";
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ignored)) {
    const std::string pid = entry.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    auto cwd = std::filesystem::read_symlink(entry.path() / "cwd", ignored).string() + "/";
    if (!ignored && cwd.compare(0, prefix.size(), prefix) == 0) found.push_back(static_cast<pid_t>(std::stol(pid)));
  }
  return found;
}

}  // namespace detail

/// Remove the scratch directories under `root` that provably belong to runs that have ended
/// (detail::dead_runs_scratch_dir), first killing what still runs in one (a server whose runner
/// and its warden were both killed).
inline std::vector<reaped_item> reap_leftovers(const std::filesystem::path& root = default_temp_root()) {
  std::vector<reaped_item> reaped;
  std::error_code failure;
  for (const auto& entry : std::filesystem::directory_iterator(root, failure)) {
    if (!detail::dead_runs_scratch_dir(entry.path())) continue;
    for (pid_t server : detail::processes_working_in(entry.path())) {
      ::kill(server, SIGKILL);
      reaped.push_back({"server pid " + std::to_string(server)});
    }
    std::filesystem::remove_all(entry.path(), failure);
    reaped.push_back({"directory " + entry.path().string()});
  }
  return reaped;
}

/// One drill at a time per scenario: an flock on `<temp root>/pgdrill.lock.<hash of key>`,
/// held for the handle's lifetime (the kernel drops it if the process dies, however it dies).
/// The file names its holder, for the message the second drill prints.
class drill_lock {
 public:
  /// Take the lock or throw lock_error naming who holds it.
  static drill_lock acquire(const std::string& key, const std::filesystem::path& root = default_temp_root()) {
    std::uint64_t hash = 14695981039346656037ULL;
    for (unsigned char c : key) hash = (hash ^ c) * 1099511628211ULL;
    char name[40];
    std::snprintf(name, sizeof name, "pgdrill.lock.%016llx", static_cast<unsigned long long>(hash));
    std::error_code ignored;
    std::filesystem::create_directories(root, ignored);
    auto file = root / name;
    drill_lock lock;
    lock.fd_.reset(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!lock.fd_) throw could_not_verify("cannot open lock file " + file.string() + ": " + std::strerror(errno));
    if (::flock(lock.fd_.get(), LOCK_EX | LOCK_NB) != 0) {
      std::ifstream in(file);
      std::string holder((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      throw lock_error("another drill of " + key + " is running (" + (holder.empty() ? "holder unknown" : holder) +
                       "); lock " + file.string());
    }
    std::string holder = "pid " + std::to_string(::getpid()) + " since " + detail::iso8601_utc(std::time(nullptr));
    [[maybe_unused]] int truncated = ::ftruncate(lock.fd_.get(), 0);
    [[maybe_unused]] auto written = ::pwrite(lock.fd_.get(), holder.data(), holder.size(), 0);
    return lock;
  }

  drill_lock(drill_lock&&) noexcept = default;
  drill_lock& operator=(drill_lock&&) = delete;

 private:
  drill_lock() = default;
  detail::unique_fd fd_;  ///< closing it releases the flock
};

}  // namespace pgdrill
