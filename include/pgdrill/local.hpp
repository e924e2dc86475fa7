// The embedded default provider: a throwaway PostgreSQL in a private temp dir, as a direct child.
#pragma once

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>  // optional minimum major, optional account
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <pgdrill/binaries.hpp>
#include <pgdrill/error.hpp>
#include <pgdrill/process.hpp>
#include <pgdrill/provider.hpp>
#include <pgdrill/sandbox.hpp>
#include <pgdrill/scenario.hpp>
#include <pgdrill/workspace.hpp>

namespace pgdrill {

/// Server settings for a throwaway restore: durability off (the data is disposable), WAL kept
/// minimal, large maintenance memory for index builds, no autovacuum competing with the load.
inline setting_list restore_settings() {
  return {{"fsync", "off"},
          {"synchronous_commit", "off"},
          {"full_page_writes", "off"},
          {"wal_level", "minimal"},
          {"max_wal_senders", "0"},
          {"max_wal_size", "4GB"},
          {"checkpoint_timeout", "30min"},
          {"maintenance_work_mem", "512MB"},
          {"max_parallel_maintenance_workers", "2"},
          {"shared_buffers", "256MB"},
          {"autovacuum", "off"},
          {"logging_collector", "off"}};
}

/// Where freshly initdb'd data directories are cached: PGDRILL_CACHE_DIR, else
/// $XDG_CACHE_HOME/pgdrill, else ~/.cache/pgdrill.
inline std::filesystem::path default_cache_dir() {
  if (const char* dir = std::getenv("PGDRILL_CACHE_DIR"); dir && *dir) return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::filesystem::path(xdg) / "pgdrill";
  if (const char* home = std::getenv("HOME"); home && *home) return std::filesystem::path(home) / ".cache" / "pgdrill";
  return default_temp_root() / "pgdrill-cache";
}

/// Options of the local provider; the defaults suit a drill.
struct local_options {
  binary_search binaries = binary_search::from_environment();
  std::optional<int> min_major;  ///< the backup's source major: use a server at least this new
  std::filesystem::path temp_root = default_temp_root();
  bool use_cache = true;
  std::filesystem::path cache_dir = default_cache_dir();
  wait_strategy readiness;
  setting_list settings;  ///< applied over restore_settings()
  std::string superuser = "postgres";
  /// Run the server and its tools without their sandbox (sandbox.hpp), as the host's
  /// unprivileged account: a backup's SQL then acts as that account on this host. Only by request
  /// (PGDRILL_UNSAFE_NO_SANDBOX=1, `--unsafe-no-sandbox`).
  bool unsafe_no_sandbox = unsafe_no_sandbox_requested();
};

/// The host account a local server started with `options` runs as, and its tools: the sandbox's
/// (sandbox_account), or unsandboxed the unprivileged one (unprivileged_account); nothing when
/// pgdrill's own. Directories its servers work in must let it pass.
inline std::optional<user_identity> local_server_account(const local_options& options) {
  return options.unsafe_no_sandbox ? unprivileged_account() : sandbox_account();
}

namespace detail {

// FNV-1a: a cache key that stays the same across builds and compilers.
inline std::string stable_hash(const std::string& text) {
  std::uint64_t hash = 14695981039346656037ULL;
  for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ULL;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return hex;
}

inline void chown_tree(const std::filesystem::path& root, const user_identity& user) {
  auto give = [&](const std::filesystem::path& path) {
    if (::lchown(path.c_str(), user.uid, user.gid) != 0)
      throw provisioning_error("cannot hand " + path.string() + " to user " + user.name + ": " + std::strerror(errno));
  };
  give(root);
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) give(entry.path());
}

// A copy of the cached data directory at `to`, private (0700) and the server account's. Throws
// filesystem_error or provisioning_error.
inline void copy_data_dir(const std::filesystem::path& cached, const std::filesystem::path& to,
                          const std::optional<user_identity>& account) {
  std::filesystem::copy(cached, to, std::filesystem::copy_options::recursive);
  std::filesystem::permissions(to, std::filesystem::perms::owner_all, std::filesystem::perm_options::replace);
  if (account) chown_tree(to, *account);
}

// Remove what killed runs left half copied: entries of `directory` named `<prefix><owner>-<random>`
// whose owner is gone.
inline void remove_dead_staging(const std::filesystem::path& directory, const std::string& prefix) {
  std::error_code ignored;
  for (const auto& entry : std::filesystem::directory_iterator(directory, ignored)) {
    std::string name = entry.path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0 || name.rfind('-') <= prefix.size()) continue;
    if (!owner_alive(name.substr(prefix.size(), name.rfind('-') - prefix.size()))) std::filesystem::remove_all(entry.path(), ignored);
  }
}

// Spare copies of a cached data directory, made ahead in the temp root while a server runs: the
// next cached start renames one into place (one filesystem) instead of creating its ~1,000 files
// while the user waits. Named `.pgdrill-spare-<cache entry>-<random>` (hidden: no run's scratch
// directory), copied under a staging name first, so a spare is whole or absent and a copy a killed
// run left is swept. A spare is taken only when it is a 0700 directory of the server's account.
class spare_data_dirs {
 public:
  spare_data_dirs(std::filesystem::path temp_root, const std::string& cache_entry, std::optional<user_identity> account)
      : temp_root_(std::move(temp_root)), prefix_(".pgdrill-spare-" + cache_entry + "-"), account_(std::move(account)) {}

  /// Rename a spare to `data`; false when there is none to take.
  bool take(const std::filesystem::path& data) const {
    for (const auto& spare : usable())
      if (::rename(spare.c_str(), data.c_str()) == 0) return true;  // else another run took it first
    return false;
  }

  /// Copy `cached` into a new spare unless one is there. A spare that cannot be made only costs speed.
  void make(const std::filesystem::path& cached) const {
    remove_dead_staging(temp_root_, staging_prefix);
    if (!usable().empty()) return;
    auto staging = temp_root_ / (staging_prefix + owner_tag() + "-" + random_suffix());
    std::error_code failure;
    try {
      copy_data_dir(cached, staging, account_);
      std::filesystem::rename(staging, temp_root_ / (prefix_ + random_suffix()), failure);
    } catch (const std::exception&) {  // filesystem_error, provisioning_error
      failure = std::make_error_code(std::errc::io_error);
    }
    if (failure) std::filesystem::remove_all(staging, failure);
  }

  static constexpr const char* staging_prefix = ".pgdrill-spare-staging-";

 private:
  // The spares of this cache entry that are private directories of the server's account.
  std::vector<std::filesystem::path> usable() const {
    const uid_t owner = account_ ? account_->uid : ::geteuid();
    std::vector<std::filesystem::path> found;
    std::error_code ignored;
    for (const auto& entry : std::filesystem::directory_iterator(temp_root_, ignored)) {
      struct stat info{};
      if (entry.path().filename().string().compare(0, prefix_.size(), prefix_) == 0 && ::lstat(entry.path().c_str(), &info) == 0 &&
          S_ISDIR(info.st_mode) && info.st_uid == owner && (info.st_mode & 07777) == 0700)
        found.push_back(entry.path());
    }
    return found;
  }

  std::filesystem::path temp_root_;
  std::string prefix_;
  std::optional<user_identity> account_;
};

inline std::string read_tail(const std::filesystem::path& file, std::size_t bytes) {
  std::ifstream in(file, std::ios::binary | std::ios::ate);
  if (!in) return {};
  std::streamoff size = in.tellg();
  std::streamoff start = size > static_cast<std::streamoff>(bytes) ? size - static_cast<std::streamoff>(bytes) : 0;
  in.seekg(start);
  std::string text(static_cast<std::size_t>(size - start), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  return text;
}

}  // namespace detail

/// A PostgreSQL server in a private scratch directory, listening only on a unix socket in that
/// directory (no ports, so any number run side by side). Stopped and deleted with its handle.
class local_server final : public server {
 public:
  /// Start a ready server or throw provisioning_error / could_not_verify; whatever a failed start
  /// created is removed before the exception leaves.
  static std::unique_ptr<local_server> start(const local_options& options = {}) {
    pg_binaries binaries = find_binaries(options.binaries, options.min_major);
    // The tools' account too (pg_binaries::as_client): they reach the socket in this private directory.
    const std::optional<user_identity> account = local_server_account(options);
    std::optional<pgdrill::sandbox> confinement;
    if (!options.unsafe_no_sandbox) confinement = sandbox::for_account(account);
    scratch_dir dir(options.temp_root);
    if (account) dir.give_to(*account);
    // A unix socket's path holds at most 107 bytes: under a long temp root, a short directory of its own.
    std::optional<scratch_dir> socket_dir;
    if ((dir.path() / ".s.PGSQL.5432").string().size() > 107) {
      socket_dir.emplace("/tmp");
      if (account) socket_dir->give_to(*account);
    }
    const auto sockets = socket_dir ? socket_dir->path() : dir.path();
    if (confinement) {
      confinement->writable = {dir.path()};
      if (socket_dir) confinement->writable.push_back(sockets);
      confinement->hidden = {options.temp_root, options.cache_dir};
      binaries.sandbox = confinement;
    }
    auto confined = [&](command program) {
      program.in_dir(dir.path());
      return confinement ? confinement->wrap(program) : program.as_user(account);
    };
    auto data = dir.path() / "data";
    auto log = dir.path() / "server.log";

    const std::vector<std::string> initdb_args{"-U", options.superuser, "-A", "trust", "-E", "UTF8", "--locale=C", "-N"};
    std::string key_text = binaries.version + "|" + binaries.bin_dir.string() + "|";
    for (const auto& arg : initdb_args) key_text += arg + " ";
    auto cached = options.cache_dir / ("initdb-" + std::to_string(binaries.major) + "-" + detail::stable_hash(key_text));

    if (options.use_cache) detail::remove_dead_staging(options.cache_dir, ".staging-");
    bool from_cache = options.use_cache && std::filesystem::exists(cached / "PG_VERSION");
    detail::spare_data_dirs spares(options.temp_root, cached.filename().string(), account);
    const bool from_spare = from_cache && spares.take(data);
    if (from_cache && !from_spare) {
      detail::copy_data_dir(cached, data, account);
    } else if (!from_cache) {
      command initdb(binaries.tool("initdb"), {"-D", data.string()});
      initdb.args.insert(initdb.args.end(), initdb_args.begin(), initdb_args.end());
      auto result = run(confined(initdb), run_options::within(std::chrono::minutes(5)));
      if (!result.ok())
        throw provisioning_error("initdb " + result.describe() + " (" + initdb.display() + "):\n" + result.err_tail);
      if (options.use_cache) store_in_cache(data, cached);
    }

    command postgres(binaries.tool("postgres"),
                     {"-D", data.string(), "-k", sockets.string(), "-p", "5432", "-c", "listen_addresses="});
    setting_list settings = restore_settings();
    settings.insert(settings.end(), options.settings.begin(), options.settings.end());
    for (const auto& [name, value] : settings) postgres.args.insert(postgres.args.end(), {"-c", name + "=" + value});
    child process = child::spawn(confined(postgres), {stream_target::null(), stream_target::to_file(log), stream_target::to_file(log)});

    auto admin = endpoint::of_started_server(sockets.string(), 5432, options.superuser, "");
    wait_until_ready(
        admin, options.readiness, [&] { return !process.poll_exit(); },
        [&] {
          auto status = process.poll_exit();
          return (status ? "postgres " + status->describe() + "; " : std::string()) + "server log (" + log.string() +
                 "):\n" + detail::read_tail(log, 4096);
        });
    std::unique_ptr<local_server> server(new local_server(std::move(binaries), std::move(dir), std::move(socket_dir),
                                                          std::move(process), std::move(admin), from_cache, from_spare));
    if (options.use_cache) server->spare_maker_ = std::thread([spares, cached] { spares.make(cached); });
    return server;
  }

  local_server(const local_server&) = delete;
  local_server& operator=(const local_server&) = delete;
  ~local_server() override {
    try {
      stop();
    } catch (...) {  // the destructor must not throw; stop() already did all it could
    }
    if (spare_maker_.joinable()) spare_maker_.join();
  }

  const endpoint& admin() const override { return admin_; }
  int major_version() const override { return binaries_.major; }
  std::string version() const override { return binaries_.version; }
  std::string provider() const override { return "local"; }
  std::string describe() const override {
    return "local PostgreSQL " + binaries_.version + " in " + directory().string() +
           (binaries_.sandbox ? "" : " (unsandboxed, PGDRILL_UNSAFE_NO_SANDBOX)") +
           (from_spare_ ? " (data dir from cache, copied ahead)" : from_cache_ ? " (data dir from cache)" : " (fresh initdb)");
  }

  const pg_binaries& binaries() const noexcept { return binaries_; }
  /// The server's own installation restores into it, whatever else is installed.
  pg_binaries client_tools(binary_search, std::optional<int>) const override { return binaries_; }
  const std::filesystem::path& directory() const noexcept { return directory_; }
  /// The process pgdrill started: the sandbox's (bwrap), or unsandboxed the postmaster itself.
  pid_t pid() const noexcept { return process_.pid(); }
  /// Whether the server and its tools run in a sandbox (sandbox.hpp).
  bool sandboxed() const noexcept { return binaries_.sandbox.has_value(); }
  pid_t host_pid_of(pid_t server_pid) const override { return detail::host_pid_in_tree(process_.pid(), server_pid); }
  bool started_from_cache() const noexcept { return from_cache_; }
  /// Its data directory was a spare copy of the cache made ahead by an earlier server (renamed
  /// into place, not copied while this one started).
  bool started_from_spare() const noexcept { return from_spare_; }
  /// The last bytes of the server's log.
  std::string log_tail(std::size_t bytes = 4096) const { return detail::read_tail(directory_ / "server.log", bytes); }

  /// Fast shutdown (SIGINT), escalating to immediate (SIGQUIT) and SIGKILL; then delete the
  /// directory. Safe to call twice; throws provisioning_error if something had to be forced.
  void stop() override {
    std::string trouble;
    if (process_.pid() > 0 && !process_.poll_exit()) {
      ::kill(postmaster(), SIGINT);  // a sandbox ends when the server does
      if (!process_.wait_for(std::chrono::seconds(20))) {
        trouble = "server ignored fast shutdown; ";
        ::kill(postmaster(), SIGQUIT);
        if (!process_.wait_for(std::chrono::seconds(5))) trouble += "killed it; ";
      }
    }
    process_.kill_and_reap();
    if (spare_maker_.joinable()) spare_maker_.join();
    dir_.remove();
    if (socket_dir_) socket_dir_->remove();
    std::error_code ignored;
    if (std::filesystem::exists(directory_, ignored)) trouble += "could not remove " + directory_.string();
    if (!trouble.empty()) throw provisioning_error("stopping local server: " + trouble);
  }

 private:
  local_server(pg_binaries binaries, scratch_dir dir, std::optional<scratch_dir> socket_dir, child process, endpoint admin,
               bool from_cache, bool from_spare)
      : binaries_(std::move(binaries)),
        directory_(dir.path()),
        dir_(std::move(dir)),
        socket_dir_(std::move(socket_dir)),
        process_(std::move(process)),
        admin_(std::move(admin)),
        from_cache_(from_cache),
        from_spare_(from_spare) {}

  // The postmaster's host pid (inside the sandbox it has another), from its postmaster.pid.
  pid_t postmaster() const {
    std::ifstream in(directory_ / "data" / "postmaster.pid");
    long inner = 0;
    pid_t found = in >> inner && inner > 0 ? host_pid_of(static_cast<pid_t>(inner)) : 0;
    return found > 0 ? found : process_.pid();
  }

  // Copy to a staging name, then rename: a cache entry is complete or absent, even with drills
  // starting side by side. A cache that cannot be written only costs speed.
  static void store_in_cache(const std::filesystem::path& data, const std::filesystem::path& cached) {
    std::error_code failure;
    std::filesystem::create_directories(cached.parent_path(), failure);
    auto staging = cached.parent_path() / (".staging-" + owner_tag() + "-" + detail::random_suffix());
    std::filesystem::copy(data, staging, std::filesystem::copy_options::recursive, failure);
    if (!failure) std::filesystem::rename(staging, cached, failure);
    if (failure) std::filesystem::remove_all(staging, failure);
  }

  pg_binaries binaries_;
  std::filesystem::path directory_;
  scratch_dir dir_;   // declared before the process: removed only after it is gone
  std::optional<scratch_dir> socket_dir_;  ///< under a long temp root: where the socket is
  child process_;
  endpoint admin_;
  bool from_cache_, from_spare_;
  std::thread spare_maker_;  ///< copies the next start's spare data directory meanwhile
};

}  // namespace pgdrill
