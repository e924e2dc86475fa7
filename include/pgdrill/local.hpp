// The embedded default provider: a throwaway PostgreSQL in a private temp dir, as a direct child.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>  // optional minimum major, optional account
#include <string>
#include <utility>
#include <vector>

#include <pgdrill/binaries.hpp>
#include <pgdrill/error.hpp>
#include <pgdrill/process.hpp>
#include <pgdrill/provider.hpp>
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
};

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
    std::optional<user_identity> account = unprivileged_account();
    scratch_dir dir(options.temp_root);
    if (account) dir.give_to(*account);
    auto data = dir.path() / "data";
    auto log = dir.path() / "server.log";

    const std::vector<std::string> initdb_args{"-U", options.superuser, "-A", "trust", "-E", "UTF8", "--locale=C", "-N"};
    std::string key_text = binaries.version + "|" + binaries.bin_dir.string() + "|";
    for (const auto& arg : initdb_args) key_text += arg + " ";
    auto cached = options.cache_dir / ("initdb-" + std::to_string(binaries.major) + "-" + detail::stable_hash(key_text));

    if (options.use_cache) remove_dead_staging(options.cache_dir);
    bool from_cache = options.use_cache && std::filesystem::exists(cached / "PG_VERSION");
    if (from_cache) {
      std::filesystem::copy(cached, data, std::filesystem::copy_options::recursive);
      std::filesystem::permissions(data, std::filesystem::perms::owner_all, std::filesystem::perm_options::replace);
      if (account) detail::chown_tree(data, *account);
    } else {
      command initdb(binaries.tool("initdb"), {"-D", data.string()});
      initdb.args.insert(initdb.args.end(), initdb_args.begin(), initdb_args.end());
      initdb.in_dir(dir.path()).as_user(account);
      auto result = run(initdb, run_options::within(std::chrono::minutes(5)));
      if (!result.ok())
        throw provisioning_error("initdb " + result.describe() + " (" + initdb.display() + "):\n" + result.err_tail);
      if (options.use_cache) store_in_cache(data, cached);
    }

    command postgres(binaries.tool("postgres"),
                     {"-D", data.string(), "-k", dir.path().string(), "-p", "5432", "-c", "listen_addresses="});
    postgres.in_dir(dir.path()).as_user(account);
    setting_list settings = restore_settings();
    settings.insert(settings.end(), options.settings.begin(), options.settings.end());
    for (const auto& [name, value] : settings) postgres.args.insert(postgres.args.end(), {"-c", name + "=" + value});
    child process = child::spawn(postgres, {stream_target::null(), stream_target::to_file(log), stream_target::to_file(log)});

    auto admin = endpoint::of_started_server(dir.path().string(), 5432, options.superuser, "");
    wait_until_ready(
        admin, options.readiness, [&] { return !process.poll_exit(); },
        [&] {
          auto status = process.poll_exit();
          return (status ? "postgres " + status->describe() + "; " : std::string()) + "server log (" + log.string() +
                 "):\n" + detail::read_tail(log, 4096);
        });
    return std::unique_ptr<local_server>(
        new local_server(std::move(binaries), std::move(dir), std::move(process), std::move(admin), from_cache));
  }

  local_server(const local_server&) = delete;
  local_server& operator=(const local_server&) = delete;
  ~local_server() override {
    try {
      stop();
    } catch (...) {  // the destructor must not throw; stop() already did all it could
    }
  }

  const endpoint& admin() const override { return admin_; }
  int major_version() const override { return binaries_.major; }
  std::string version() const override { return binaries_.version; }
  std::string provider() const override { return "local"; }
  std::string describe() const override {
    return "local PostgreSQL " + binaries_.version + " in " + directory().string() +
           (from_cache_ ? " (data dir from cache)" : " (fresh initdb)");
  }

  const pg_binaries& binaries() const noexcept { return binaries_; }
  /// The server's own installation restores into it, whatever else is installed.
  pg_binaries client_tools(binary_search, std::optional<int>) const override { return binaries_; }
  const std::filesystem::path& directory() const noexcept { return directory_; }
  pid_t pid() const noexcept { return process_.pid(); }
  bool started_from_cache() const noexcept { return from_cache_; }
  /// The last bytes of the server's log.
  std::string log_tail(std::size_t bytes = 4096) const { return detail::read_tail(directory_ / "server.log", bytes); }

  /// Fast shutdown (SIGINT), escalating to immediate (SIGQUIT) and SIGKILL; then delete the
  /// directory. Safe to call twice; throws provisioning_error if something had to be forced.
  void stop() override {
    std::string trouble;
    if (process_.pid() > 0 && !process_.poll_exit()) {
      ::kill(process_.pid(), SIGINT);
      if (!process_.wait_for(std::chrono::seconds(20))) {
        trouble = "server ignored fast shutdown; ";
        ::kill(process_.pid(), SIGQUIT);
        if (!process_.wait_for(std::chrono::seconds(5))) trouble += "killed it; ";
      }
    }
    process_.kill_and_reap();
    dir_.remove();
    std::error_code ignored;
    if (std::filesystem::exists(directory_, ignored)) trouble += "could not remove " + directory_.string();
    if (!trouble.empty()) throw provisioning_error("stopping local server: " + trouble);
  }

 private:
  local_server(pg_binaries binaries, scratch_dir dir, child process, endpoint admin, bool from_cache)
      : binaries_(std::move(binaries)),
        directory_(dir.path()),
        dir_(std::move(dir)),
        process_(std::move(process)),
        admin_(std::move(admin)),
        from_cache_(from_cache) {}

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

  // A copy into the cache that a killed drill left half done (its owner is gone).
  static void remove_dead_staging(const std::filesystem::path& cache_dir) {
    const std::string prefix = ".staging-";
    std::error_code ignored;
    for (const auto& entry : std::filesystem::directory_iterator(cache_dir, ignored)) {
      std::string name = entry.path().filename().string();
      if (name.compare(0, prefix.size(), prefix) != 0 || name.rfind('-') <= prefix.size()) continue;
      if (!owner_alive(name.substr(prefix.size(), name.rfind('-') - prefix.size()))) std::filesystem::remove_all(entry.path(), ignored);
    }
  }

  pg_binaries binaries_;
  std::filesystem::path directory_;
  scratch_dir dir_;   // declared before the process: removed only after it is gone
  child process_;
  endpoint admin_;
  bool from_cache_;
};

}  // namespace pgdrill
