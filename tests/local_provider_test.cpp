#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <future>
#include <set>
#include <thread>

#include "support.hpp"

using namespace pgdrill;
using pgdrill::testkit::process_running;
using pgdrill::testkit::psql;

namespace {

// The uid a process runs as, from /proc.
uid_t process_uid(pid_t pid) {
  std::istringstream status(detail::proc_text("/proc/" + std::to_string(pid) + "/status"));
  std::string key;
  while (status >> key)
    if (key == "Uid:") {
      uid_t uid = 0;
      status >> uid;
      return uid;
    }
  return static_cast<uid_t>(-1);
}

}  // namespace

TEST(local_provider, starts_a_ready_server_and_stop_removes_everything) {
  auto server = testkit::start_server();
  pid_t pid = server->pid();
  auto dir = server->directory();
  EXPECT_TRUE(process_running(pid));
  EXPECT_EQ(psql(*server, "SELECT 6 * 7"), "42\n");
  EXPECT_EQ(server->provider(), "local");
  EXPECT_EQ(server->major_version(), find_binaries(binary_search::from_environment()).major);
  server->stop();
  EXPECT_FALSE(process_running(pid));
  EXPECT_FALSE(std::filesystem::exists(dir));
  EXPECT_NO_THROW(server->stop()) << "stop twice is safe";
}

TEST(local_provider, destructor_cleans_up_when_an_exception_unwinds) {
  pid_t pid = 0;
  std::filesystem::path dir;
  try {
    auto server = testkit::start_server();
    pid = server->pid();
    dir = server->directory();
    throw std::runtime_error("test failure mid-drill");
  } catch (const std::runtime_error&) {
  }
  ASSERT_GT(pid, 0);
  EXPECT_FALSE(process_running(pid));
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(local_provider, failed_start_reports_the_server_log_and_leaves_nothing) {
  local_options options;
  options.settings = {{"shared_buffers", "not-a-size"}};
  try {
    testkit::start_server(options);
    FAIL() << "expected provisioning_error";
  } catch (const provisioning_error& failure) {
    std::string text = failure.what();
    EXPECT_NE(text.find("exited before it was ready"), std::string::npos) << text;
    EXPECT_NE(text.find("shared_buffers"), std::string::npos) << "the server's own log line: " << text;
    // The scratch dir named in the message is gone.
    auto start = text.find("server log (");
    ASSERT_NE(start, std::string::npos) << text;
    auto log = text.substr(start + 12, text.find(')', start) - start - 12);
    EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(log).parent_path())) << log;
  }
}

TEST(local_provider, four_servers_at_once_do_not_collide) {
  std::vector<std::future<std::unique_ptr<local_server>>> starting;
  for (int index = 0; index < 4; ++index)
    starting.push_back(std::async(std::launch::async, [] { return testkit::start_server(); }));
  std::vector<std::unique_ptr<local_server>> servers;
  for (auto& pending : starting) servers.push_back(pending.get());
  std::set<std::string> dirs;
  for (std::size_t index = 0; index < servers.size(); ++index) {
    dirs.insert(servers[index]->directory().string());
    psql(*servers[index], "CREATE TABLE marker AS SELECT " + std::to_string(index) + " AS id");
  }
  EXPECT_EQ(dirs.size(), 4U);
  for (std::size_t index = 0; index < servers.size(); ++index)
    EXPECT_EQ(psql(*servers[index], "SELECT id FROM marker"), std::to_string(index) + "\n") << "each its own data";
}

TEST(local_provider, drops_root_privileges_for_the_server) {
  if (::geteuid() != 0) GTEST_SKIP() << "runs as an unprivileged user already";
  auto server = testkit::start_server();
  ASSERT_TRUE(server->sandboxed());
  auto account = sandbox_account();
  ASSERT_TRUE(account);
  EXPECT_EQ(process_uid(server->pid()), account->uid);
  EXPECT_NE(process_uid(server->pid()), 0U);
  auto postgres = lookup_user("postgres");
  if (postgres) {
    EXPECT_NE(account->uid, postgres->uid) << "not the account that owns the host's clusters";
  }
}

TEST(local_provider, second_start_copies_the_cached_data_dir) {
  scratch_dir cache;
  local_options options;
  options.cache_dir = cache.path() / "cache";
  auto first = testkit::start_server(options);
  EXPECT_FALSE(first->started_from_cache());
  auto second = testkit::start_server(options);
  EXPECT_TRUE(second->started_from_cache());
  EXPECT_EQ(psql(*second, "SELECT 1"), "1\n");
  options.use_cache = false;
  auto uncached = testkit::start_server(options);
  EXPECT_FALSE(uncached->started_from_cache());
}

namespace {

// The spare data directories in a temp root.
std::vector<std::filesystem::path> spares_in(const std::filesystem::path& root) {
  std::vector<std::filesystem::path> found;
  for (const auto& entry : std::filesystem::directory_iterator(root))
    if (entry.path().filename().string().rfind(".pgdrill-spare-", 0) == 0) found.push_back(entry.path());
  return found;
}

// A cache and a temp root of the test's own, so no other test takes or makes its spares.
struct own_cache_and_root {
  scratch_dir cache, root;
  local_options options;
  own_cache_and_root() {
    options.cache_dir = cache.path() / "cache";
    options.temp_root = root.path();
    if (auto account = local_server_account(options)) root.give_to(*account);  // as /tmp, it must reach its scratch directories
  }
};

}  // namespace

// A server leaves a spare copy of the cache behind; the next cached start renames it into place
// (and makes the next one), and works as a copy made on the spot does.
TEST(local_provider, a_cached_start_takes_the_spare_copy_an_earlier_server_made) {
  own_cache_and_root own;
  auto& options = own.options;
  testkit::start_server(options);  // fills the cache; stopping it waits for the spare
  auto spares = spares_in(own.root.path());
  ASSERT_EQ(spares.size(), 1U);
  struct stat info{};
  ASSERT_EQ(::stat(spares.front().c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0700U);
  auto server = testkit::start_server(options);
  EXPECT_TRUE(server->started_from_spare());
  EXPECT_NE(server->describe().find("copied ahead"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(spares.front())) << "taken, not copied";
  EXPECT_EQ(psql(*server, "CREATE TABLE t AS SELECT 1 AS one; SELECT one FROM t"), "1\n");
  server->stop();
  ASSERT_EQ(spares_in(own.root.path()).size(), 1U) << "one spare made ahead for the next start, never more";
  EXPECT_NE(spares_in(own.root.path()).front(), spares.front());
}

// A spare is taken only when it is a private directory of the server's account: another account
// may have put one there (a shared /tmp). A staging copy whose maker is gone is swept.
TEST(local_provider, a_spare_that_is_not_private_is_left_alone_and_dead_staging_swept) {
  own_cache_and_root own;
  auto& options = own.options;
  testkit::start_server(options);
  auto spare = spares_in(own.root.path()).at(0);
  std::filesystem::permissions(spare, std::filesystem::perms::group_read | std::filesystem::perms::group_exec,
                               std::filesystem::perm_options::add);
  auto dead = own.root.path() / ".pgdrill-spare-staging-999999999-1-abc";  // no such process
  testkit::write_file(dead / "PG_VERSION", "15\n");
  auto server = testkit::start_server(options);
  EXPECT_TRUE(server->started_from_cache());
  EXPECT_FALSE(server->started_from_spare());
  EXPECT_TRUE(std::filesystem::exists(spare));
  server->stop();
  EXPECT_FALSE(std::filesystem::exists(dead));
  EXPECT_EQ(spares_in(own.root.path()).size(), 2U) << "the one it would not take does not stop it making a good one";
}

// A drill killed while copying a fresh data dir into the cache left its `.staging-*` copy there
// for good; the next start removes those whose owner is gone, and only those.
TEST(local_provider, a_killed_drills_half_copied_cache_entry_is_removed_by_the_next_start) {
  scratch_dir cache;
  local_options options;
  options.cache_dir = cache.path() / "cache";
  auto dead = options.cache_dir / ".staging-999999999-1-abc";  // no such process
  auto alive = options.cache_dir / (".staging-" + owner_tag() + "-def");
  for (const auto& dir : {dead, alive}) testkit::write_file(dir / "PG_VERSION", "15\n");
  auto server = testkit::start_server(options);
  EXPECT_FALSE(std::filesystem::exists(dead));
  EXPECT_TRUE(std::filesystem::exists(alive)) << "a running drill's copy is left alone";
}

TEST(local_provider, restore_friendly_settings_are_in_effect) {
  auto server = testkit::start_server();
  for (const auto& [name, value] : restore_settings()) {
    if (name == "max_wal_size" || name == "shared_buffers" || name == "maintenance_work_mem" ||
        name == "checkpoint_timeout")
      continue;  // shown in other units; checked below
    EXPECT_EQ(psql(*server, "SHOW " + name), value + "\n") << name;
  }
  EXPECT_EQ(psql(*server, "SELECT setting FROM pg_settings WHERE name = 'max_wal_size'"), "4096\n");
  EXPECT_EQ(psql(*server, "SHOW maintenance_work_mem"), "512MB\n");
  EXPECT_EQ(psql(*server, "SHOW listen_addresses"), "\n") << "no TCP listener";
}

TEST(local_provider, user_settings_override_the_defaults) {
  local_options options;
  options.settings = {{"work_mem", "77MB"}, {"autovacuum", "on"}};
  auto server = testkit::start_server(options);
  EXPECT_EQ(psql(*server, "SHOW work_mem"), "77MB\n");
  EXPECT_EQ(psql(*server, "SHOW autovacuum"), "on\n");
}

TEST(local_provider, missing_binaries_are_could_not_verify) {
  local_options options;
  options.binaries.explicit_dir = "/nonexistent/bin";
  EXPECT_THROW(testkit::start_server(options), could_not_verify);
}

TEST(local_provider, a_killed_runner_leaves_a_dir_the_next_run_reaps) {
  // The runner is SIGKILLed while it holds a server: the kernel's parent-death signal takes the
  // server down, and the scratch dir it leaves is removed by the next sweep.
  auto root = default_temp_root() / ("killed-runner-" + detail::random_suffix());
  std::filesystem::create_directories(root);
  command cmd(PGDRILL_RUNNER_PATH, {"with-server", "--", "/bin/sleep", "300"});
  cmd.with_env({{"PGDRILL_TMPDIR", root.string()}});
  auto runner = child::spawn(cmd, {});
  std::filesystem::path leftover;
  for (int attempt = 0; attempt < 600 && leftover.empty(); ++attempt) {
    for (const auto& entry : std::filesystem::directory_iterator(root))
      if (std::filesystem::exists(entry.path() / "data" / "postmaster.pid")) leftover = entry.path();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(leftover.empty()) << "the runner never started its server";
  auto server_processes = detail::processes_working_in(leftover);
  ASSERT_FALSE(server_processes.empty());
  runner.kill_and_reap();  // SIGKILL: no handler runs, no destructor
  EXPECT_TRUE(std::filesystem::exists(leftover));
  auto running = [&] {
    return std::any_of(server_processes.begin(), server_processes.end(), [](pid_t pid) { return process_running(pid); });
  };
  for (int attempt = 0; attempt < 200 && running(); ++attempt) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  EXPECT_FALSE(running()) << "the warden takes the server and its sandbox down";
  auto reaped = reap_leftovers(root);
  EXPECT_FALSE(std::filesystem::exists(leftover));
  EXPECT_FALSE(reaped.empty());
  std::filesystem::remove_all(root);
}

namespace {

// What a shell command prints when the server runs it for SQL (COPY ... FROM PROGRAM, as a
// backup's function could), its lines joined by '|'.
std::string run_by_the_server(const server& target, const std::string& shell) {
  return psql(target, "CREATE TEMP TABLE said (line text); COPY said FROM PROGRAM " + detail::quote_literal(shell) +
                          "; SELECT coalesce(string_agg(line, '|'), '') FROM said");
}

}  // namespace

// The server runs in its sandbox: what its SQL starts acts as nobody of the host, sees no other
// cluster, no other drill and no home, writes nothing the host keeps, and reaches no network.
TEST(local_provider, sql_run_by_the_server_stays_in_its_sandbox) {
  auto server = testkit::start_server();
  auto neighbour = testkit::start_server();
  ASSERT_TRUE(server->sandboxed());
  EXPECT_EQ(run_by_the_server(*server, "id -u"), std::to_string(sandbox::inside_id) + "\n");
  auto neighbour_socket = neighbour->directory() / ".s.PGSQL.5432";
  ASSERT_TRUE(std::filesystem::exists(neighbour_socket));
  EXPECT_EQ(run_by_the_server(*server, "test -e " + neighbour_socket.string() + " && echo seen || echo absent"), "absent\n");
  EXPECT_EQ(run_by_the_server(*server, "ls -A " + server->directory().parent_path().string()),
            server->directory().filename().string() + "\n")
      << "of the temp root, only its own directory";
  for (const char* hidden : {"/var/run/postgresql", "/var/lib/postgresql", "/root", "/home"})
    EXPECT_EQ(run_by_the_server(*server, std::string("ls -A ") + hidden + " 2>/dev/null | wc -l"), "0\n") << hidden;

  auto on_the_host = default_temp_root() / ("written-by-sql-" + detail::random_suffix());
  EXPECT_EQ(run_by_the_server(*server, "echo x > " + on_the_host.string() + " && echo wrote"), "wrote\n")
      << "the temp root inside is a scratch of its own";
  EXPECT_FALSE(std::filesystem::exists(on_the_host));
  psql(*server, "COPY (SELECT 1) TO " + detail::quote_literal(on_the_host.string()));
  EXPECT_FALSE(std::filesystem::exists(on_the_host)) << "COPY TO a file writes into the sandbox";
  EXPECT_EQ(run_by_the_server(*server, "touch /etc/pgdrill-escape /usr/pgdrill-escape 2>/dev/null && echo wrote || echo refused"),
            "refused\n");

  // A listener on the host's loopback that the server's own loopback does not reach.
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const auto port = std::to_string(ntohs(address.sin_port));
  const std::string reach = "bash -c 'echo > /dev/tcp/127.0.0.1/" + port + "' 2>/dev/null && echo reached || echo unreachable";
  EXPECT_EQ(run_by_the_server(*server, reach), "unreachable\n");
  ::close(listener);
}

// Unsandboxed only by request: then as the host's unprivileged account, and said so.
TEST(local_provider, runs_unsandboxed_only_when_asked) {
  local_options options;
  EXPECT_FALSE(options.unsafe_no_sandbox) << "the default is the sandbox";
  options.unsafe_no_sandbox = true;
  auto server = testkit::start_server(options);
  EXPECT_FALSE(server->sandboxed());
  EXPECT_NE(server->describe().find("unsandboxed"), std::string::npos) << server->describe();
  auto account = local_server_account(options);
  EXPECT_EQ(run_by_the_server(*server, "id -u"), std::to_string(account ? account->uid : ::geteuid()) + "\n");
}

// A unix socket's path holds 107 bytes: under a long temp root the socket gets a short directory
// of its own, removed with the server.
TEST(local_provider, a_long_temp_root_gets_a_short_socket_directory) {
  scratch_dir parent;
  auto root = parent.path() / std::string(70, 'x');
  std::filesystem::create_directories(root);
  std::filesystem::permissions(parent.path(), std::filesystem::perms::others_exec | std::filesystem::perms::group_exec,
                               std::filesystem::perm_options::add);
  local_options options;
  options.temp_root = root;
  auto server = testkit::start_server(options);
  EXPECT_EQ(psql(*server, "SELECT 1"), "1\n");
  const auto socket_dir = std::filesystem::path(server->admin().host);
  EXPECT_NE(socket_dir.parent_path(), root);
  EXPECT_LT((socket_dir / ".s.PGSQL.5432").string().size(), 108U);
  server->stop();
  EXPECT_FALSE(std::filesystem::exists(socket_dir));
}

// The tools that talk to the server run in its sandbox too: psql's own shell escape (which a backup
// cannot reach: scripts run restricted) is nobody there, and sees no other cluster's files.
TEST(local_provider, its_tools_run_in_its_sandbox) {
  auto server = testkit::start_server();
  ASSERT_TRUE(server->binaries().sandbox);
  command shell(server->binaries().tool("psql"), {"-X", "-q", "-c", "\\! id -u; (ls -A /var/lib/postgresql; ls -A /home) | wc -l"});
  server->admin().apply_to(shell);
  auto answer = server->binaries().run(shell, run_options::within(std::chrono::minutes(1)));
  ASSERT_TRUE(answer.ok()) << answer.err_tail;
  EXPECT_EQ(answer.out, std::to_string(sandbox::inside_id) + "\n0\n");
}
