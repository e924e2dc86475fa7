// The line between a backup and the machine drilling it, without a container engine: the local
// provider's server and every tool that talks to it run under bubblewrap (bwrap).
#pragma once

// Why bubblewrap: it is Debian's own, well-kept unprivileged sandbox (Flatpak's), built on the
// kernel's namespaces; a jail written here would repeat its mount and namespace setup without its
// review. Each sandboxed program gets: an identity that owns nothing else on the host (root runs
// it as a dedicated uid, a user as their own uid inside a user namespace), a read-only view of
// the host in which the temp space, the homes and every PostgreSQL cluster's sockets and data
// directories are empty, writable only the places the drill names, a fresh /dev, /proc and /tmp,
// loopback-only networking, its own pid, IPC and UTS namespaces, and no further user namespaces.

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>  // optional outside account
#include <string>
#include <utility>
#include <vector>

#include <pgdrill/error.hpp>
#include <pgdrill/process.hpp>

namespace pgdrill {

/// The switch that runs the local provider without its sandbox: only where the kernel refuses
/// namespaces, and only when the user says so, since a backup's SQL then acts as the server's
/// account on this host.
constexpr const char* unsafe_no_sandbox_variable = "PGDRILL_UNSAFE_NO_SANDBOX";

/// Whether the user asked for unsandboxed local servers (PGDRILL_UNSAFE_NO_SANDBOX=1).
inline bool unsafe_no_sandbox_requested() {
  const char* value = std::getenv(unsafe_no_sandbox_variable);
  return value && std::string(value) == "1";
}

/// The uid a sandbox runs as when pgdrill runs as root: PGDRILL_SANDBOX_UID (say, an account
/// made for pgdrill), else 1996000000, a uid no account may hold (it would then own the drill's
/// files). Nothing when pgdrill does not run as root: the sandbox is the user's own uid.
/// provisioning_error for root's uid or a default that an account holds.
inline std::optional<user_identity> sandbox_account() {
  if (::geteuid() != 0) return std::nullopt;
  constexpr uid_t default_uid = 1996000000;
  const char* chosen = std::getenv("PGDRILL_SANDBOX_UID");
  uid_t uid = chosen && *chosen ? static_cast<uid_t>(std::strtoul(chosen, nullptr, 10)) : default_uid;
  if (uid == 0) throw provisioning_error("PGDRILL_SANDBOX_UID is 0: the sandbox must not run as root");
  std::vector<char> buffer(16384);
  passwd entry{}, *found = nullptr;
  const bool held = getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) == 0 && found;
  if (held && !(chosen && *chosen))
    throw provisioning_error("uid " + std::to_string(uid) + ", which sandboxed drills run as, belongs to the account " +
                             found->pw_name + "; set PGDRILL_SANDBOX_UID to a uid that owns nothing else");
  return user_identity{held ? found->pw_name : "uid " + std::to_string(uid), uid, held ? found->pw_gid : uid};
}

/// A bubblewrap sandbox for one server and the tools that talk to it.
struct sandbox {
  std::filesystem::path bwrap;
  std::optional<user_identity> account;          ///< who runs bwrap on the host (root's case); nothing: pgdrill itself
  std::vector<std::filesystem::path> writable;   ///< bound read-write at their own paths (the server's directory)
  std::vector<std::filesystem::path> hidden;     ///< shown empty, beyond the defaults (the drill's temp root, its cache)

  /// Host directories shown empty inside: temp space, homes, and PostgreSQL's clusters, sockets
  /// and logs (Debian's and the official image's places).
  static std::vector<std::filesystem::path> hidden_by_default() {
    std::vector<std::filesystem::path> places{"/tmp", "/var/tmp", "/run", "/home", "/root", "/srv", "/mnt", "/media",
                                              "/var/backups", "/var/lib/postgresql", "/var/log/postgresql", "/etc/postgresql",
                                              "/var/lib/pgsql"};
    if (const char* home = std::getenv("HOME"); home && *home) places.emplace_back(home);
    return places;
  }

  /// A sandbox of `account` (sandbox_account()) that works on this kernel: bwrap found in
  /// /usr/bin, /usr/local/bin or /bin, and tried once per account. could_not_verify saying what is missing or refused, and how to
  /// go on.
  static sandbox for_account(std::optional<user_identity> account) {
    sandbox made{find_bwrap(), std::move(account), {}, {}};
    made.check_works();
    return made;
  }

  /// `tool` run inside: bwrap's command line around it, as `account`, with the tool's
  /// environment, and the files it reads (command::reads) and its installation shown read-only
  /// where a hidden place covers them. Wrapped on the main thread, the sandbox also dies with its
  /// parent (a death signal, which Linux ties to the thread that started it: child::spawn's rule);
  /// else the warden's kill of its process group takes it down.
  command wrap(const command& tool) const {
    command boxed(bwrap, {"--unshare-all", "--unshare-user", "--disable-userns", "--uid",
                          std::to_string(inside_id), "--gid", std::to_string(inside_id), "--ro-bind", "/", "/", "--dev",
                          "/dev", "--proc", "/proc"});
    auto add = [&](std::vector<std::string> words) { boxed.args.insert(boxed.args.end(), words.begin(), words.end()); };
    if (::getpid() == static_cast<pid_t>(::gettid())) add({"--die-with-parent"});
    std::vector<std::filesystem::path> covered;
    auto under_covered = [&](const std::filesystem::path& path) {
      for (const auto& place : covered)
        if (is_within(path, place)) return true;
      return false;
    };
    for (const auto& place : all_hidden()) {  // by their real paths, each once: a tmpfs cannot go under another
      std::error_code failed;
      auto real = std::filesystem::canonical(place, failed);
      if (!failed && is_real_directory(real) && !under_covered(real)) add({"--tmpfs", real.string()}), covered.push_back(real);
    }
    auto installation = tool.program.parent_path().parent_path();  // bin/'s parent: lib/ and share/ beside it
    if (under_covered(installation)) add({"--ro-bind", installation.string(), installation.string()});
    for (const auto& read : tool.reads) add({"--ro-bind", read.string(), read.string()});
    for (const auto& place : writable) add({"--bind", place.string(), place.string()});
    if (!tool.cwd.empty()) add({"--chdir", tool.cwd.string()});
    add({"--", tool.program.string()});
    boxed.args.insert(boxed.args.end(), tool.args.begin(), tool.args.end());
    boxed.env = tool.env;
    boxed.unset_env = tool.unset_env;
    boxed.inherits = tool.inherits;
    boxed.cwd = tool.cwd;
    boxed.user = account;
    return boxed;
  }

  /// The uid and gid inside (nobody's): no file of the host is its own.
  static constexpr int inside_id = 65534;

 private:
  std::vector<std::filesystem::path> all_hidden() const {
    auto places = hidden_by_default();
    places.insert(places.end(), hidden.begin(), hidden.end());
    return places;
  }

  static bool is_within(const std::filesystem::path& path, const std::filesystem::path& place) {
    auto relative = path.lexically_normal().lexically_relative(place.lexically_normal());
    return !relative.empty() && *relative.begin() != "..";  // "." (the place itself) counts
  }

  static bool is_real_directory(const std::filesystem::path& path) {
    struct stat info{};
    return ::lstat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
  }

  static std::filesystem::path find_bwrap() {
    for (const char* place : {"/usr/bin/bwrap", "/usr/local/bin/bwrap", "/bin/bwrap"})
      if (::access(place, X_OK) == 0) return place;
    throw could_not_verify(std::string("the local provider runs each throwaway server in a sandbox, and bubblewrap is not "
                                       "installed (Debian: apt-get install bubblewrap); or use the container provider; "
                                       "or, knowing that the backup's SQL then acts as the server's account on this host, set ") +
                           unsafe_no_sandbox_variable + "=1");
  }

  // One trial run per bwrap and account (namespaces may be refused by the kernel, a seccomp
  // policy or an AppArmor profile).
  void check_works() const {
    static std::mutex guard;
    static std::map<std::string, std::string> verdicts;  // "" when it works, else bwrap's words
    const std::string key = bwrap.string() + "|" + (account ? std::to_string(account->uid) : "self");
    std::lock_guard<std::mutex> lock(guard);
    auto known = verdicts.find(key);
    if (known == verdicts.end()) {
      auto trial = pgdrill::run(wrap(command("/bin/true")), run_options::within(std::chrono::seconds(30)));
      known = verdicts.emplace(key, trial.ok() ? "" : trial.describe() + ": " + trial.err_tail.substr(0, trial.err_tail.find_last_not_of("\n") + 1)).first;
    }
    if (!known->second.empty())
      throw could_not_verify("the sandbox for the local provider does not start here (" + bwrap.string() + " " + known->second +
                             "). Where the kernel or a security policy refuses unprivileged namespaces (sysctl "
                             "kernel.unprivileged_userns_clone, user.max_user_namespaces, AppArmor's "
                             "apparmor_restrict_unprivileged_userns), allow them; or use the container provider; or, knowing "
                             "that the backup's SQL then acts as the server's account on this host, set " +
                             std::string(unsafe_no_sandbox_variable) + "=1");
  }
};

}  // namespace pgdrill
