// The same drill through every provider, and the container provider's failure and cleanup paths,
// on real podman with the image ci/container-test-image builds from this machine's PostgreSQL.
#include <thread>

#include "support.hpp"

using namespace pgdrill;
using testkit::run_cli;
using testkit::write_file;

namespace {

const char* test_image = "localhost/pgdrill-test-postgres:{major}";

class providers : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { demo_ = new testkit::demo_backup("providers"); }
  static void TearDownTestSuite() { delete demo_; }

  scenario plan() {
    scenario plan;
    plan.name = "providers";
    plan.backup.file = demo_->file;
    plan.assertions = testkit::manifest_assertions();
    plan.assertions.push_back(sequences_assertion{});
    return plan;
  }

  drill_options container_options_for_tests() {
    drill_options options;
    options.container.engine = "podman";
    options.container.image_template = test_image;
    return options;
  }

  // This suite's containers (its temp root's label): other drills on the machine are not counted.
  static std::string labelled_containers() {
    return run(command("/usr/bin/podman", {"ps", "-a", "-q", "--filter",
                                           std::string("label=") + container_temp_root_label + "=" + PGDRILL_TEST_TMPDIR}))
        .out;
  }

  // A container drill of a restore that sleeps two minutes, started as a child of the test.
  child start_slow_container_drill(const std::string& name, const child::streams& io) {
    auto slow = dir_.path() / "slow.sql";
    write_file(slow, "SELECT pg_sleep(120);\n");
    auto file = dir_.path() / "slow.json";
    write_file(file, R"({"name": ")" + name + R"(", "provider": "container", "backup": {"file": ")" + slow.string() +
                         R"("}, "hygiene": {"min_size_bytes": 0}, "assertions": [{"type": "sql", "query": "SELECT 1", "expected": 1}]})");
    return child::spawn(command(PGDRILL_RUNNER_PATH, {"run", file.string(), "--junit", (dir_.path() / "r.xml").string(),
                                                      "--engine", "podman", "--image", test_image}),
                        io);
  }

  // The drill's container, once its restore is under way: the container exists and psql (run in
  // it through `podman exec`) is connected to it. Empty when that never happens within a minute.
  static std::string container_once_restoring() {
    auto restoring = [] {
      for (const auto& process : std::filesystem::directory_iterator("/proc"))
        if (detail::proc_text(process.path() / "cmdline").find(std::string("psql\0-X\0-q\0", 11)) != std::string::npos) return true;
      return false;
    };
    std::string container;
    for (int attempt = 0; attempt < 600 && container.empty(); ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (restoring()) container = labelled_containers();
    }
    return container;
  }

  static inline testkit::demo_backup* demo_ = nullptr;
  scratch_dir dir_;
};

// (name, result, actual) of every check: what must agree across providers.
std::vector<std::string> outcomes(const drill_result& result) {
  std::vector<std::string> lines;
  for (const auto& check : result.checks) lines.push_back(check.name + " " + to_string(check.result) + " " + check.actual);
  return lines;
}

}  // namespace

TEST_F(providers, local_container_and_existing_give_the_same_results) {
  auto local = run_drill(plan());
  ASSERT_EQ(local.verdict(), exit_code::passed) << testkit::drill_report(local);

  auto options = container_options_for_tests();
  options.provider = "container";
  auto container = run_drill(plan(), options);
  ASSERT_EQ(container.verdict(), exit_code::passed) << testkit::drill_report(container);
  EXPECT_EQ(container.server.provider, "container");

  auto borrowed = testkit::start_shared_server();
  drill_options existing_options;
  existing_options.provider = "existing";
  existing_options.existing = borrowed->admin();
  auto existing = run_drill(plan(), existing_options);
  ASSERT_EQ(existing.verdict(), exit_code::passed) << testkit::drill_report(existing);
  EXPECT_EQ(existing.server.provider, "existing");

  EXPECT_EQ(outcomes(local), outcomes(container));
  EXPECT_EQ(outcomes(local), outcomes(existing));
  EXPECT_EQ(labelled_containers(), "") << "the container is gone";
  EXPECT_EQ(testkit::psql(*borrowed, "SELECT count(*) FROM pg_database WHERE datname LIKE 'pgdrill%'"), "0\n")
      << "the scratch database is gone";
  EXPECT_EQ(testkit::psql(*borrowed, "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'pgdrill%'"), "0\n") << "the drill's role is gone";
}

// A server that answers inside its container but not on its published port (in the field: CNI's
// forwarding raced by containers started beside it; here the test looks for it on 127.0.0.2,
// where the engine publishes nothing) gets one more container, and both are removed when neither
// can be reached.
TEST_F(providers, a_container_reachable_only_inside_is_started_again_once_and_both_removed) {
  container_options options = container_options_for_tests().container;
  options.temp_root = PGDRILL_TEST_TMPDIR;
  options.host = "127.0.0.2";
  options.readiness.deadline = std::chrono::seconds(8);
  try {
    container_server::start(options);
    ADD_FAILURE() << "a server nobody can reach was taken as ready";
  } catch (const provisioning_error& failure) {
    std::string message = failure.what();
    EXPECT_NE(message.find("a second container, started because the first answered only inside it"), std::string::npos) << message;
    EXPECT_NE(message.find("not ready after 8s at postgres@127.0.0.2"), std::string::npos) << message;
  }
  EXPECT_EQ(labelled_containers(), "") << "both containers are gone";
}

// The image's tools run as its postgres account, not as the container's root: psql's own shell
// escape (which no backup reaches: scripts run restricted) reports who runs it.
TEST_F(providers, tools_in_the_container_run_as_postgres) {
  container_options options;
  options.engine = "podman";
  options.image_template = test_image;
  options.major = find_binaries(binary_search::from_environment()).major;
  auto server = container_server::start(options);
  auto tools = server->client_tools(binary_search::from_environment(), std::nullopt);
  ASSERT_TRUE(tools.container) << "the test image has its own tools";
  command whoami(tools.tool("psql"), {"-X", "-q", "-c", "\\! id -un"});
  server->admin().apply_to(whoami);
  auto answer = tools.run(whoami, run_options::within(std::chrono::minutes(1)));
  ASSERT_TRUE(answer.ok()) << answer.err_tail;
  EXPECT_EQ(answer.out, "postgres\n");
}

// Per-test copies on the oldest major pgdrill supports, whose CREATE DATABASE has no STRATEGY
// (added in 15) and whose DROP DATABASE has WITH (FORCE) (13): each copy is isolated and dropped.
TEST_F(providers, per_test_copies_work_on_postgresql_13) {
  container_options options;
  options.engine = "podman";
  options.image_template = test_image;
  options.major = 13;
  auto server = container_server::start(options);
  ASSERT_EQ(server->major_version(), 13);
  testkit::psql(*server, "CREATE DATABASE shop");
  testkit::psql(*server, "CREATE TABLE customers AS SELECT generate_series(1, 100) AS id", "shop");
  auto count = [](const endpoint& database) {
    pqxx::connection connection(database.conninfo());
    return pqxx::nontransaction(connection).exec("SELECT count(*) FROM customers")[0][0].as<int>();
  };
  std::string dropped;
  {
    clone_pool pool(*server, "shop", clone_options{1, clone_strategy::automatic});
    auto first = pool.acquire();
    auto second = pool.acquire();
    {
      pqxx::connection connection(first.target().conninfo());
      pqxx::nontransaction(connection).exec("DELETE FROM customers");
    }
    EXPECT_EQ(count(first.target()), 0);
    EXPECT_EQ(count(second.target()), 100) << "a write in one copy is invisible in another";
    pqxx::connection left_open(second.target().conninfo());  // WITH (FORCE) ends it
    dropped = second.name();
    second.drop();
    first.drop();
  }
  EXPECT_EQ(count(server->admin().with_database("shop")), 100) << "and in the template";
  auto left = testkit::psql(*server, "SELECT count(*) FROM pg_database WHERE datname LIKE 'pgdrill_clone_%'");
  EXPECT_EQ(left, "0\n") << dropped << " and the pool's copies are dropped";
}

TEST_F(providers, existing_provider_never_drops_what_it_did_not_create) {
  auto borrowed = testkit::start_shared_server();
  testkit::psql(*borrowed, "CREATE DATABASE precious");
  auto server = existing_server::attach(borrowed->admin());
  auto scratch = server->scratch_database();
  // Someone replaces the scratch database with one of their own under the same name.
  testkit::psql(*borrowed, "DROP DATABASE " + scratch);
  testkit::psql(*borrowed, "CREATE DATABASE " + scratch);
  EXPECT_THROW(server->stop(), provisioning_error);
  EXPECT_EQ(testkit::psql(*borrowed, "SELECT count(*) FROM pg_database WHERE datname IN ('precious', '" + scratch + "')"), "2\n");
}

TEST_F(providers, auto_uses_a_working_engine_and_says_so) {
  auto file = dir_.path() / "auto.json";
  write_file(file, R"({"name": "auto", "provider": "auto", "backup": {"file": ")" + demo_->file.string() +
                       R"("}, "assertions": [{"type": "row_count", "expect": "manifest"}]})");
  auto with_engine = run_cli({"run", file.string(), "--junit", (dir_.path() / "a.xml").string(), "--engine", "podman",
                              "--image", test_image});
  EXPECT_EQ(with_engine.exit_code, 0) << with_engine.output;
  EXPECT_NE(with_engine.output.find("auto: container engine /usr/bin/podman works; the backup needs PostgreSQL "), std::string::npos)
      << with_engine.output;
  EXPECT_NE(with_engine.output.find("or newer; podman container pgdrill-"), std::string::npos) << with_engine.output;
  auto without = run_cli({"run", file.string(), "--junit", (dir_.path() / "b.xml").string(), "--engine", "/nonexistent/docker"});
  EXPECT_EQ(without.exit_code, 0) << without.output;
  EXPECT_NE(without.output.find("auto: local, since no working container engine (tried /nonexistent/docker)"), std::string::npos)
      << without.output;
}

// Docker-in-Docker: the job reaches the container's port on the dind service, which DOCKER_HOST
// names (tcp://docker:2376), and the daemon reads bind-mount sources on its own side. Here a
// non-loopback address of this machine stands in for the service: with DOCKER_HOST naming it
// (podman itself ignores DOCKER_HOST), the port is published on every interface, the drill
// connects to that address, and the backup is mounted by its own path (--mount), not through a
// symlink only this side could see.
TEST_F(providers, a_container_host_from_docker_host_is_where_the_drill_connects) {
  std::string address;
  std::istringstream addresses(run(command("/usr/bin/hostname", {"-I"})).out);
  for (std::string candidate; addresses >> candidate && address.empty();)
    if (candidate.find(':') == std::string::npos && !detail::is_loopback(candidate)) address = candidate;
  if (address.empty()) GTEST_SKIP() << "this machine has no non-loopback IPv4 address";
  auto file = dir_.path() / "dind.json";
  write_file(file, R"({"name": "dind", "provider": "container", "backup": {"file": ")" + demo_->file.string() +
                       R"("}, "assertions": [{"type": "row_count", "expect": "manifest"}]})");
  auto ran = run_cli({"run", file.string(), "--junit", (dir_.path() / "d.xml").string(), "--engine", "podman", "--image", test_image},
                     {{"DOCKER_HOST", "tcp://" + address + ":2375"}});
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_NE(ran.output.find(") on " + address + ":"), std::string::npos) << ran.output;
  EXPECT_EQ(labelled_containers(), "");
}

TEST_F(providers, missing_engine_and_missing_image_cannot_verify_with_advice) {
  auto file = dir_.path() / "container.json";
  write_file(file, R"({"name": "container", "provider": "container", "backup": {"file": ")" + demo_->file.string() +
                       R"("}, "assertions": [{"type": "row_count", "expect": "manifest"}]})");
  auto no_engine = run_cli({"run", file.string(), "--junit", (dir_.path() / "a.xml").string(), "--engine", "/nonexistent/docker"});
  EXPECT_EQ(no_engine.exit_code, 2) << no_engine.output;
  EXPECT_NE(no_engine.output.find("no working container engine (tried /nonexistent/docker); install docker or podman"),
            std::string::npos)
      << no_engine.output;
  auto no_image = run_cli({"run", file.string(), "--junit", (dir_.path() / "b.xml").string(), "--engine", "podman", "--image",
                           "localhost/pgdrill-no-such-image:{major}"});
  EXPECT_EQ(no_image.exit_code, 2) << no_image.output;
  EXPECT_NE(no_image.output.find("could not start localhost/pgdrill-no-such-image:15"), std::string::npos) << no_image.output;
  EXPECT_NE(no_image.output.find("Check the image name"), std::string::npos) << no_image.output;
  EXPECT_EQ(labelled_containers(), "");
}

TEST_F(providers, password_is_in_no_argv_log_or_report) {
  // The engine is podman behind a wrapper that records every argv it is given.
  auto argv_log = dir_.path() / "engine-argv.log";
  auto engine = dir_.path() / "podman-recorder";
  write_file(engine, "#!/bin/sh\nprintf '%s\\n' \"$*\" >> " + argv_log.string() + "\nexec /usr/bin/podman \"$@\"\n");
  std::filesystem::permissions(engine, std::filesystem::perms::owner_all);
  auto slow = dir_.path() / "slow.sql";
  write_file(slow, "CREATE TABLE waited (id int);\nINSERT INTO waited VALUES (1);\nSELECT pg_sleep(3);\n");
  auto file = dir_.path() / "slow.json";
  write_file(file, R"({"name": "secret", "provider": "container", "backup": {"file": ")" + slow.string() +
                       R"("}, "hygiene": {"min_size_bytes": 0}, "assertions": [{"type": "sql", "query": "SELECT 1", "expected": 1}]})");
  auto junit = dir_.path() / "r.xml", json = dir_.path() / "r.json";
  command drill(PGDRILL_RUNNER_PATH, {"run", file.string(), "--junit", junit.string(), "--json", json.string(), "--engine",
                                      engine.string(), "--image", test_image, "--log-format", "json"});
  std::string output, password, argv_seen;
  run_options options;
  options.stdout_sink = [&](std::string_view chunk) { output.append(chunk); };
  options.stderr_sink = [&](std::string_view chunk) { output.append(chunk); };
  options.on_tick = [&](pid_t) {  // while the drill runs: read the password the container got, and every argv
    if (!password.empty()) return;
    auto ids = labelled_containers();
    if (ids.empty()) return;
    auto env = run(command("/usr/bin/podman", {"inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}",
                                               ids.substr(0, ids.find('\n'))}));
    auto at = env.out.find("POSTGRES_PASSWORD=");
    if (at == std::string::npos) return;
    password = env.out.substr(at + 18, env.out.find('\n', at) - at - 18);
    for (const auto& process : std::filesystem::directory_iterator("/proc"))
      argv_seen += detail::proc_text(process.path() / "cmdline") + "\n";
  };
  auto result = run(drill, options);
  EXPECT_EQ(result.status.code, 0) << output;
  ASSERT_GE(password.size(), 32U) << "the test saw the container's password";
  auto engine_argv = testkit::read_file(argv_log);
  EXPECT_NE(engine_argv.find("-e POSTGRES_PASSWORD -e"), std::string::npos) << "named, without a value: " << engine_argv;
  EXPECT_EQ(engine_argv.find(password), std::string::npos) << "not in the engine's argv";
  EXPECT_EQ(argv_seen.find(password), std::string::npos) << "not in any process's argv";
  EXPECT_EQ(output.find(password), std::string::npos) << "not in the logs";
  EXPECT_EQ(testkit::read_file(junit).find(password), std::string::npos) << "not in JUnit";
  EXPECT_EQ(testkit::read_file(json).find(password), std::string::npos) << "not in the JSON report";
}

// SIGKILL gives the runner no chance to remove its container: its warden does, at once.
TEST_F(providers, a_runner_killed_mid_restore_has_its_container_removed_by_its_warden) {
  auto runner = start_slow_container_drill("killed", {});
  ASSERT_FALSE(container_once_restoring().empty()) << "the drill never reached its restore";
  runner.kill_and_reap();  // SIGKILL of the runner's group: no handler, no destructor
  std::string left = "?";
  for (int attempt = 0; attempt < 300 && !(left = labelled_containers()).empty(); ++attempt)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(left, "") << "the warden removed the container within 30 s";
}

// Killed with its warden too (`pkill -f`), the runner leaves its container: the next run's sweep
// (here `gc`) removes it.
TEST_F(providers, a_runner_killed_with_its_warden_leaves_a_container_the_next_run_removes) {
  auto volumes_before = run(command("/usr/bin/podman", {"volume", "ls", "-q"})).out;
  auto runner = start_slow_container_drill("killed", {});
  auto container = container_once_restoring();
  ASSERT_FALSE(container.empty()) << "the drill never reached its restore";
  pid_t warden = 0;
  for (const auto& process : std::filesystem::directory_iterator("/proc")) {
    auto stat = detail::proc_text(process.path() / "stat");
    auto close = stat.rfind(')');
    if (stat.find("(pgdrill-warden)") == std::string::npos || close == std::string::npos) continue;
    if (std::stol(stat.substr(close + 4)) == runner.pid()) warden = std::stoi(process.path().filename().string());
  }
  ASSERT_GT(warden, 0) << "the runner's warden";
  ::kill(warden, SIGKILL);
  runner.kill_and_reap();
  EXPECT_EQ(labelled_containers(), container) << "a runner killed with its warden leaves its container";

  auto gc = run_cli({"gc", "--engine", "podman"});
  EXPECT_EQ(gc.exit_code, 0) << gc.output;
  EXPECT_NE(gc.output.find("removed podman container " + container.substr(0, container.size() - 1)), std::string::npos) << gc.output;
  EXPECT_EQ(labelled_containers(), "");
  EXPECT_EQ(run(command("/usr/bin/podman", {"volume", "ls", "-q"})).out, volumes_before) << "and no volume is left";
}

// SIGINT while a container drill restores: its teardown used to be skipped (the `podman rm` of the
// teardown itself saw the signal and refused to run), leaving the container running until `gc`.
TEST_F(providers, sigint_mid_restore_tears_the_container_down_and_exits_2) {
  auto output = dir_.path() / "output.txt";
  auto runner = start_slow_container_drill("interrupted", {stream_target::null(), stream_target::to_file(output), stream_target::to_file(output)});
  ASSERT_FALSE(container_once_restoring().empty()) << "the drill never reached its restore";
  auto sent = std::chrono::steady_clock::now();
  ::kill(runner.pid(), SIGINT);
  auto status = runner.wait();
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count();
  EXPECT_EQ(status.code, 2) << testkit::read_file(output);
  EXPECT_LT(seconds, 5.0) << testkit::read_file(output);
  EXPECT_EQ(labelled_containers(), "") << "the teardown removed the container\n" << testkit::read_file(output);
  EXPECT_NE(testkit::read_file(output).find("interrupted"), std::string::npos) << testkit::read_file(output);
}
