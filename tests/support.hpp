// Helpers shared by the tests: real servers through the library, the runner binary, temp files.
#pragma once

#include <fcntl.h>
#include <sys/file.h>

#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <pgdrill/gtest.hpp>
#include <pgdrill/pgdrill.hpp>

namespace pgdrill::testkit {

// Every test's servers and scratch dirs go under one temp root, which the suite's last test checks
// is empty; the data-dir cache stays inside the build tree.
inline const bool test_environment_ready = [] {
  ::setenv("PGDRILL_TMPDIR", PGDRILL_TEST_TMPDIR, 1);
  ::setenv("PGDRILL_CACHE_DIR", PGDRILL_TEST_CACHE_DIR, 1);
  return true;
}();

/// A fresh throwaway server with the suite's defaults (temp root and cache from the environment).
inline std::unique_ptr<local_server> start_server(local_options options = {}) { return local_server::start(options); }

/// A server that stands in for one the user names to the existing provider (a CI service, a
/// staging server): run as the host's own clusters are, unsandboxed, so the tools' account reaches
/// its socket as it would a real server's.
inline std::unique_ptr<local_server> start_shared_server(local_options options = {}) {
  options.unsafe_no_sandbox = true;
  return local_server::start(options);
}

/// Run psql against a server's database; fails the test when psql fails.
inline std::string psql(const server& target, const std::string& sql, const std::string& database = "postgres") {
  auto tools = find_binaries(binary_search::from_environment());
  command cmd(tools.tool("psql"), {"-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql});
  cmd.with_env(target.admin().with_database(database).libpq_env());
  auto result = run(cmd, run_options::within(std::chrono::minutes(5)));
  EXPECT_TRUE(result.ok()) << "psql " << result.describe() << ": " << result.err_tail;
  return result.out;
}

/// Run pg_dump against a server's database with extra arguments (e.g. {"-Fc", "-f", path}).
inline void pg_dump(const server& source, const std::vector<std::string>& args, const std::string& database = "postgres") {
  auto tools = find_binaries(binary_search::from_environment());
  command cmd(tools.tool("pg_dump"), args);
  cmd.with_env(source.admin().with_database(database).libpq_env());
  auto result = run(cmd, run_options::within(std::chrono::minutes(5)));
  ASSERT_TRUE(result.ok()) << "pg_dump " << result.describe() << ": " << result.err_tail;
}

/// The runner's exit code and everything it printed (stdout and stderr together).
struct cli_result {
  int exit_code = -1;
  std::string output;
};

/// Any command's exit code and everything it printed (e.g. the runner wrapped in another tool).
inline cli_result run_captured(const command& cmd) {
  run_options options = run_options::within(std::chrono::minutes(10));
  cli_result result;
  options.stdout_sink = [&](std::string_view chunk) { result.output.append(chunk); };
  options.stderr_sink = [&](std::string_view chunk) { result.output.append(chunk); };
  auto finished = run(cmd, options);
  result.exit_code = finished.status.signal ? 128 + finished.status.signal : finished.status.code;
  return result;
}

inline cli_result run_cli(const std::vector<std::string>& args,
                          const std::vector<std::pair<std::string, std::string>>& env = {}) {
  command cmd(PGDRILL_RUNNER_PATH, args);
  cmd.with_env(env);
  return run_captured(cmd);
}

inline void write_file(const std::filesystem::path& file, const std::string& text);

/// Fixture files under `root`, made by `build` once per build tree: CTest runs each test in its
/// own process, so the first builds them under an flock and the rest reuse them.
template <class Build>
void build_once(const std::filesystem::path& root, Build build) {
  std::filesystem::create_directories(root.parent_path());
  int lock = ::open((root.string() + ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  ::flock(lock, LOCK_EX);
  if (!std::filesystem::exists(root / "complete")) {
    std::filesystem::remove_all(root);
    std::filesystem::create_directories(root);
    build();
    write_file(root / "complete", "");
  }
  ::close(lock);
}

inline void write_file(const std::filesystem::path& file, const std::string& text) {
  std::filesystem::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::binary);
  out << text;
}

inline std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// True while a process with this pid exists and is not a zombie.
inline bool process_running(pid_t pid) {
  std::string text = detail::proc_text("/proc/" + std::to_string(pid) + "/stat");
  auto close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && text[close + 2] != 'Z';
}

/// A throwaway server holding the demo database (ci/demo-seed.sql: customers and orders).
inline std::unique_ptr<local_server> start_demo_source() {
  auto source = start_server();
  psql(*source, read_file(std::filesystem::path(PGDRILL_SOURCE_DIR) / "ci" / "demo-seed.sql"));
  return source;
}

/// A suite's demo source and a custom-format backup of it with its manifest, made once in
/// SetUpTestSuite and deleted in TearDownTestSuite.
struct demo_backup {
  scratch_dir workspace;
  std::unique_ptr<local_server> source = start_demo_source();
  std::filesystem::path file;

  explicit demo_backup(const std::string& name) {
    dump_options options;
    options.out_dir = workspace.path();
    options.name = name;
    file = dump_with_manifest(source->admin(), options).backup;
  }
};

/// The three assertions that prove every manifest table came back: present, same row count,
/// same content.
inline std::vector<assertion> manifest_assertions() {
  tables_present_assertion present;
  present.from_manifest = true;
  row_count_assertion counts;
  counts.from_manifest = true;
  checksum_assertion sums;
  sums.from_manifest = true;
  return {present, counts, sums};
}

/// A scenario of `backup`, whatever its size, that asserts only that the restore holds something:
/// for backups whose restore is what a test watches (hostile ones, odd ones).
inline scenario not_empty_plan(const std::string& name, const std::filesystem::path& backup) {
  scenario plan;
  plan.name = name;
  plan.backup.file = backup;
  plan.hygiene.min_size_bytes = 0;
  plan.assertions = {not_empty_assertion{}};
  return plan;
}

/// A drill's stages and checks as console lines with their details, for failure messages.
inline std::string drill_report(const drill_result& result) {
  std::string text;
  for (const auto* list : {&result.stages, &result.checks})
    for (const auto& step : *list) text += console_line(step) + "\n" + step.detail;
  return text;
}

/// An environment variable set (or, given nullptr, unset) for a scope, then restored.
class scoped_env {
 public:
  scoped_env(const char* name, const char* value) : name_(name) {
    if (const char* before = std::getenv(name)) previous_ = before;
    if (value)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;
  ~scoped_env() {
    if (previous_)
      ::setenv(name_.c_str(), previous_->c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }

 private:
  std::string name_;
  std::optional<std::string> previous_;
};

}  // namespace pgdrill::testkit
