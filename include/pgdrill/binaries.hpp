// Finding installed PostgreSQL binaries (initdb, postgres, pg_restore, psql) and their version.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <optional>  // optional explicit directory and minimum major
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include <pgdrill/error.hpp>
#include <pgdrill/process.hpp>
#include <pgdrill/sandbox.hpp>

namespace pgdrill {

namespace detail {

// Whether any account may read each of `paths` (a directory: list it and read each file in it),
// by their modes alone: what a container's own account can open through a bind mount, which keeps
// the host's owner and mode.
inline bool readable_by_anyone(const std::vector<std::filesystem::path>& paths) {
  using std::filesystem::perms;
  for (const auto& path : with_directory_entries(paths)) {
    std::error_code failed;
    auto status = std::filesystem::status(path, failed);
    auto needed = status.type() == std::filesystem::file_type::directory ? perms::others_read | perms::others_exec : perms::others_read;
    if (failed || !std::filesystem::exists(status) || (status.permissions() & needed) != needed) return false;
  }
  return true;
}

}  // namespace detail

/// A running container whose own PostgreSQL tools a drill uses (the host then needs none):
/// tools run through the engine's `exec`, host files reach them through read-only mounts.
struct tools_container {
  std::filesystem::path engine;  ///< the docker or podman client
  std::string name;              ///< the container
  /// Host paths and where the container sees them (a tool argument equal to a host path is
  /// rewritten to its mount point).
  std::vector<std::pair<std::string, std::string>> mounts;
  /// libpq settings as seen from inside (the container's own server at 127.0.0.1:5432), over
  /// the host's view of the same server.
  std::vector<std::pair<std::string, std::string>> endpoint_env;
};

/// One PostgreSQL installation's tools and their version: a bin directory on this host, or the
/// tools on a container's PATH.
struct pg_binaries {
  std::filesystem::path bin_dir;  ///< empty in a container: the image's PATH finds them
  int major = 0;
  std::string version;  ///< e.g. "15.18"
  std::optional<tools_container> container;
  /// Set by a sandboxed local server (local_server::client_tools): its tools run in its sandbox.
  std::optional<pgdrill::sandbox> sandbox;

  std::filesystem::path tool(const std::string& name) const { return bin_dir / name; }

  /// Where the tools run, for reports and messages.
  std::string where() const {
    return container ? container->engine.filename().string() + " container " + container->name : bin_dir.string();
  }

  /// `tool` as a drill's client runs it on this host: in the server's sandbox when it has one;
  /// else, when pgdrill runs as root, as the unprivileged account (unprivileged_account), opening
  /// the files it reads by path with the least right that can (command::as_user_reading).
  /// Unchanged when its account is set or in a container (runnable chooses the container's account).
  command as_client(command tool) const {
    if (sandbox) return tool.program == sandbox->bwrap ? tool : sandbox->wrap(tool);  // wrapped once only
    if (!container && !tool.user) tool.as_user_reading(unprivileged_account());
    return tool;
  }

  /// The host account the tools run as, which must be able to read what they open by path:
  /// nothing when it is pgdrill's own (or the tools are in a container).
  std::optional<user_identity> account() const {
    if (sandbox) return sandbox->account;
    return container ? std::nullopt : unprivileged_account();
  }

  /// `tool` as it really runs. On this host: as_client. In a container: `ENGINE exec -i`, as the
  /// image's postgres account (unless the tool opens a backup that only its owner may read: then
  /// as the container's root, confined to the container), each variable of its environment passed
  /// by name only (the engine copies the value from its own environment, so passwords never reach
  /// argv), libpq pointed at the container's own server, and host paths rewritten to their mount
  /// points.
  command runnable(command tool) const {
    if (!container) return as_client(std::move(tool));
    command exec(container->engine, {"exec", "-i"});
    if (detail::readable_by_anyone(tool.reads)) exec.args.insert(exec.args.end(), {"--user", "postgres"});
    auto env = tool.env;
    for (const auto& endpoint : container->endpoint_env) {
      auto same = [&](const auto& item) { return item.first == endpoint.first; };
      std::replace_if(env.begin(), env.end(), same, endpoint);
    }
    for (const auto& item : env) exec.args.insert(exec.args.end(), {"-e", item.first});
    if (!tool.cwd.empty()) exec.args.insert(exec.args.end(), {"-w", tool.cwd.string()});
    exec.args.insert(exec.args.end(), {container->name, tool.program.string()});
    for (auto arg : tool.args) {
      for (const auto& [host, inside] : container->mounts)
        if (arg == host) arg = inside;
      exec.args.push_back(arg);
    }
    exec.env = std::move(env);
    exec.unset_env = tool.unset_env;
    return exec;
  }

  /// Whether a run of `runnable` ended in the engine's own failure to run the tool (exit 125:
  /// the engine failed, 126: not executable, 127: not found), which is no verdict of the tool's.
  bool exec_failed(const run_result& finished) const {
    return container && !finished.timed_out && finished.status.signal == 0 && finished.status.code >= 125 &&
           finished.status.code <= 127;
  }

  /// Run `tool` where the tools are (runnable); could_not_verify when the engine could not run
  /// it at all (exec_failed).
  run_result run(const command& tool, run_options options) const {
    auto finished = pgdrill::run(runnable(tool), std::move(options));
    if (exec_failed(finished))
      throw could_not_verify(tool.program.filename().string() + " could not run in " + where() + " (" + finished.describe() +
                             "): " + finished.err_tail);
    return finished;
  }
};

/// Where to look for binaries, in order; the defaults follow Debian, source builds and PATH.
struct binary_search {
  std::optional<std::filesystem::path> explicit_dir;  ///< only this directory when set
  std::vector<std::filesystem::path> roots{"/usr/lib/postgresql", "/usr/local/pgsql", "/opt/postgresql"};
  bool use_pg_config = true;  ///< ask `pg_config --bindir` (found on PATH)
  bool use_path = true;       ///< directories on PATH
  std::vector<std::string> required{"initdb", "postgres", "pg_restore", "psql", "pg_dump"};

  /// Defaults, with PGDRILL_PG_BIN as the explicit directory when set.
  static binary_search from_environment() {
    binary_search search;
    if (const char* dir = std::getenv("PGDRILL_PG_BIN"); dir && *dir) search.explicit_dir = dir;
    return search;
  }
};

namespace detail {

inline bool is_executable(const std::filesystem::path& file) {
  return ::access(file.c_str(), X_OK) == 0 && std::filesystem::is_regular_file(file);
}

inline std::optional<std::filesystem::path> find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (!path) return std::nullopt;
  std::string entries = path;
  std::size_t start = 0;
  while (start <= entries.size()) {
    std::size_t end = entries.find(':', start);
    if (end == std::string::npos) end = entries.size();
    std::filesystem::path candidate = std::filesystem::path(entries.substr(start, end - start)) / name;
    if (end > start && is_executable(candidate)) return candidate;
    start = end + 1;
  }
  return std::nullopt;
}

// "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" -> "15.18"; also "10beta2", "9.6.24".
inline std::optional<std::string> parse_tool_version(const std::string& output) {
  static const std::regex pattern(R"(\(PostgreSQL\) (\d+)(\.\d+)?(\.\d+)?(devel|beta\d+|rc\d+)?)");
  std::smatch match;
  if (!std::regex_search(output, match, pattern)) return std::nullopt;
  return match[0].str().substr(std::string("(PostgreSQL) ").size());
}

}  // namespace detail

/// The major version of a version string: "15.18" -> 15, "9.6.24" -> 9 (reported as 9.6's 9).
inline int major_of(const std::string& version) { return std::atoi(version.c_str()); }

/// Inspect one bin directory: every required tool is asked its version, and the directory is an
/// installation only when all answer with the same one (a mixed directory, say a newer
/// pg_restore copied beside older servers, is none). Nothing when a tool is missing, does not
/// answer or disagrees; `why_not` (optional) then says which.
inline std::optional<pg_binaries> probe_bin_dir(const std::filesystem::path& dir, const std::vector<std::string>& required,
                                                std::string* why_not = nullptr) {
  auto refuse = [&](const std::string& reason) {
    if (why_not) *why_not = reason;
    return std::nullopt;
  };
  // Every tool present before any is started: asking costs a process each.
  for (const auto& name : required)
    if (!detail::is_executable(dir / name)) return refuse(name + " missing");
  std::optional<std::string> agreed;
  for (const auto& name : required) {
    std::optional<std::string> version;
    try {
      auto answer = run(command(dir / name, {"--version"}), run_options::within(std::chrono::seconds(20)));
      if (answer.ok()) version = detail::parse_tool_version(answer.out);
    } catch (const process_error&) {
    }
    if (!version) return refuse(name + " --version did not answer");
    if (agreed && major_of(*agreed) != major_of(*version))
      return refuse(required.front() + " is " + *agreed + " but " + name + " is " + *version);
    if (!agreed) agreed = version;
  }
  if (!agreed) return refuse("no tool to ask");
  return pg_binaries{std::filesystem::absolute(dir).lexically_normal(), major_of(*agreed), *agreed, std::nullopt, std::nullopt};
}

/// Every installation that has all required tools, newest major first, each directory once;
/// `searched` (optional) receives every place looked at, for error messages.
inline std::vector<pg_binaries> find_installations(const binary_search& search,
                                                   std::vector<std::string>* searched = nullptr) {
  std::vector<std::filesystem::path> dirs;
  auto consider = [&](const std::filesystem::path& dir) {
    if (searched) searched->push_back(dir.string());
    dirs.push_back(dir);
  };
  if (search.explicit_dir) {
    consider(*search.explicit_dir);
  } else {
    for (const auto& root : search.roots) {
      std::error_code ignored;
      if (!std::filesystem::is_directory(root, ignored)) {
        if (searched) searched->push_back((root / "*" / "bin").string());
        continue;
      }
      bool any = false;
      for (const auto& entry : std::filesystem::directory_iterator(root, ignored))
        if (std::filesystem::is_directory(entry.path() / "bin", ignored)) consider(entry.path() / "bin"), any = true;
      if (!any) consider(root / "bin");
    }
    if (search.use_pg_config) {
      if (auto pg_config = detail::find_on_path("pg_config")) {
        try {
          auto answer = run(command(*pg_config, {"--bindir"}), run_options::within(std::chrono::seconds(20)));
          std::string dir = answer.out.substr(0, answer.out.find('\n'));
          if (answer.ok() && !dir.empty()) consider(dir);
        } catch (const process_error&) {
        }
      } else if (searched) {
        searched->push_back("pg_config --bindir (no pg_config on PATH)");
      }
    }
    if (search.use_path) {
      if (auto psql = detail::find_on_path(search.required.empty() ? "psql" : search.required.front()))
        consider(psql->parent_path());
      else if (searched)
        searched->push_back("PATH");
    }
  }
  std::vector<pg_binaries> found;
  std::vector<std::filesystem::path> probed;  // canonical: pg_config usually names a directory found already
  for (const auto& dir : dirs) {
    std::error_code ignored;
    auto same_dir = std::filesystem::canonical(dir, ignored);
    if (!ignored && std::find(probed.begin(), probed.end(), same_dir) != probed.end()) continue;
    probed.push_back(same_dir);
    // Debian's pg_wrapper (/usr/bin/psql, ...) runs whichever major PGHOST or the cluster
    // configuration picks: not an installation of one version. Those it runs are found under
    // /usr/lib/postgresql.
    if (std::filesystem::canonical(dir / search.required.front(), ignored).filename() == "pg_wrapper") continue;
    std::string why_not;
    auto binaries = probe_bin_dir(dir, search.required, &why_not);
    if (!binaries) {
      if (searched)  // the place as listed, with why it is no installation
        for (auto& place : *searched)
          if (place == dir.string()) place += " (" + why_not + ")";
      continue;
    }
    // Another directory may hold links to an installation already found.
    auto canonical = std::filesystem::canonical(binaries->bin_dir / search.required.front(), ignored);
    bool seen = std::any_of(found.begin(), found.end(), [&](const pg_binaries& other) {
      return std::filesystem::canonical(other.bin_dir / search.required.front(), ignored) == canonical;
    });
    if (!seen) found.push_back(*binaries);
  }
  std::stable_sort(found.begin(), found.end(),
                   [](const pg_binaries& a, const pg_binaries& b) { return a.major > b.major; });
  return found;
}

/// Among installations listed newest first: the oldest major at least `min_major` (closest to
/// what the backup needs), or the newest when no minimum is given (it reads the most archive
/// versions).
inline std::optional<pg_binaries> choose_installation(const std::vector<pg_binaries>& newest_first,
                                                      std::optional<int> min_major) {
  if (!min_major) return newest_first.empty() ? std::nullopt : std::optional<pg_binaries>(newest_first.front());
  std::optional<pg_binaries> chosen;
  for (const auto& binaries : newest_first)
    if (binaries.major >= *min_major) chosen = binaries;
  return chosen;
}

/// The installation to use (choose_installation). Throws could_not_verify naming every place
/// searched and what is installed.
inline pg_binaries find_binaries(const binary_search& search, std::optional<int> min_major = std::nullopt) {
  std::vector<std::string> searched;
  auto found = find_installations(search, &searched);
  if (auto chosen = choose_installation(found, min_major)) return *chosen;

  std::string tools;
  for (const auto& name : search.required) tools += (tools.empty() ? "" : ", ") + name;
  std::string places;
  for (const auto& place : searched) places += "\n  " + place;
  if (found.empty())
    throw could_not_verify("no PostgreSQL binaries found (needed: " + tools + "); searched:" + places +
                           "\nInstall PostgreSQL (Debian: apt-get install postgresql) or pass --pg-bin DIR / PGDRILL_PG_BIN.");
  std::string installed;
  for (const auto& binaries : found) installed += "\n  " + binaries.version + " in " + binaries.bin_dir.string();
  throw could_not_verify("no PostgreSQL " + std::to_string(*min_major) +
                         " or newer installed (the backup needs at least that); installed:" + installed);
}

}  // namespace pgdrill
