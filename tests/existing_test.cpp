// The existing provider on a shared server: the drill's own role (no superuser rights, owner of
// the scratch database only), teardown without superuser rights, and the sweep of what a killed
// drill left. Every server here is a throwaway one the test starts and plays the shared server.
#include <csignal>
#include <thread>

#include "support.hpp"

using namespace pgdrill;
using testkit::psql;
using testkit::run_cli;
using testkit::write_file;

namespace {

class existing : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { demo_ = new testkit::demo_backup("shared"); }
  static void TearDownTestSuite() { delete demo_; }

  static scenario plan() {
    scenario plan;
    plan.name = "shared";
    plan.backup.file = demo_->file;
    plan.assertions = testkit::manifest_assertions();
    return plan;
  }
  static drill_result drill_on(const endpoint& shared) {
    drill_options options;
    options.provider = "existing";
    options.existing = shared;
    return run_drill(plan(), options);
  }
  // pgdrill's databases and the roles it marked, on `shared`.
  static std::string leftovers(const server& shared) {
    return psql(shared, "SELECT count(*) FROM pg_database WHERE datname LIKE 'pgdrill%'") + "databases, " +
           psql(shared, "SELECT count(*) FROM pg_roles WHERE shobj_description(oid, 'pg_authid') LIKE 'pgdrill role %'") + "roles";
  }
  // `shared` seen through a role of its own, with a password.
  static endpoint as_new_role(const server& shared, const std::string& role, const std::string& attributes) {
    psql(shared, "CREATE ROLE " + role + " LOGIN PASSWORD 'not-the-drills' " + attributes);
    return shared.admin().as_role(role, "not-the-drills");
  }

  static inline testkit::demo_backup* demo_ = nullptr;
  scratch_dir dir_;
};

}  // namespace

TEST_F(existing, the_restore_runs_as_a_role_that_owns_only_its_scratch_database) {
  auto shared = testkit::start_shared_server();
  psql(*shared, "CREATE DATABASE bystander");
  auto server = existing_server::attach(shared->admin());
  ASSERT_FALSE(server->restore_role().empty()) << server->describe();
  auto target = server->restore_target({});
  EXPECT_EQ(target.user, server->restore_role());
  pqxx::connection connection(target.conninfo());
  auto query = [&](const std::string& sql) { return pqxx::nontransaction(connection).exec(sql)[0][0].as<std::string>(); };
  EXPECT_EQ(query("SELECT rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication FROM pg_roles WHERE rolname = current_user"), "f");
  EXPECT_EQ(query("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"), server->restore_role());
  EXPECT_THROW(pqxx::nontransaction(connection).exec("DROP DATABASE bystander"), pqxx::sql_error);
  EXPECT_THROW(pqxx::nontransaction(connection).exec("COPY (SELECT 1) TO PROGRAM 'true'"), pqxx::insufficient_privilege);
  EXPECT_THROW(pqxx::nontransaction(connection).exec("ALTER ROLE postgres PASSWORD 'owned'"), pqxx::sql_error);
  EXPECT_NE(psql(*shared, "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = '" + server->restore_role() + "'")
                .find("pgdrill role " + server->restore_role() + ", created by " + owner_tag() + " host="),
            std::string::npos);
  server->create_role("drill_app");
  EXPECT_EQ(leftovers(*shared), "1\ndatabases, 2\nroles");
  server->stop();
  EXPECT_EQ(leftovers(*shared), "0\ndatabases, 0\nroles");
  EXPECT_EQ(psql(*shared, "SELECT count(*) FROM pg_roles WHERE rolname = 'drill_app'"), "0\n");
  EXPECT_EQ(psql(*shared, "SELECT count(*) FROM pg_database WHERE datname = 'bystander'"), "1\n");
}

// A dump's `ALTER ... OWNER TO postgres` cannot run as the drill's role: tolerated and listed,
// and the drill passes, with a plain script (psql) and with an archive restored with its owners.
TEST_F(existing, a_drill_as_the_drills_role_passes_and_lists_the_ownership_it_could_not_apply) {
  auto shared = testkit::start_shared_server();
  auto plain = dir_.path() / "shared_plain.sql";
  testkit::pg_dump(*demo_->source, {"-f", plain.string()});
  auto as_plain = plan();
  as_plain.backup.file = plain;
  as_plain.assertions = {not_empty_assertion{}};
  auto with_owners = plan();
  with_owners.restore.no_owner = with_owners.restore.no_privileges = false;
  for (const auto& drilled : {as_plain, with_owners}) {
    drill_options options;
    options.provider = "existing";
    options.existing = shared->admin();
    auto result = run_drill(drilled, options);
    ASSERT_EQ(result.verdict(), exit_code::passed) << testkit::drill_report(result);
    bool ownership_listed = false;
    for (const auto& line : result.restore.tolerated)
      ownership_listed = ownership_listed || (line.find("restores as a role of its own") != std::string::npos &&
                                              line.find("OWNER TO postgres;") != std::string::npos);
    EXPECT_TRUE(ownership_listed) << testkit::drill_report(result);
  }
  EXPECT_EQ(leftovers(*shared), "0\ndatabases, 0\nroles");
}

// amcheck is no trusted extension and its functions are the superuser's: the drill's role can
// neither install nor run it. Installed beforehand, it failed the backup as broken (exit 1).
TEST_F(existing, amcheck_without_the_rights_to_install_or_run_it_cannot_verify_and_says_why) {
  auto shared = testkit::start_shared_server();
  auto with_amcheck = plan();
  with_amcheck.assertions.push_back(amcheck_assertion{});
  drill_options options;
  options.provider = "existing";
  options.existing = shared->admin();
  auto result = run_drill(with_amcheck, options);
  EXPECT_EQ(result.verdict(), exit_code::not_verified) << testkit::drill_report(result);
  EXPECT_NE(testkit::drill_report(result).find("amcheck needs superuser rights to be installed"), std::string::npos)
      << testkit::drill_report(result);
  psql(*shared, "CREATE EXTENSION amcheck", "template1");  // every new database has it, EXECUTE still the superuser's
  auto installed = run_drill(with_amcheck, options);
  EXPECT_EQ(installed.verdict(), exit_code::not_verified) << testkit::drill_report(installed);
  EXPECT_NE(testkit::drill_report(installed).find("insufficient privilege for the integrity check of public."), std::string::npos)
      << testkit::drill_report(installed);
  EXPECT_EQ(leftovers(*shared), "0\ndatabases, 0\nroles");
}

// A role with CREATEDB and CREATEROLE but no superuser rights: it creates the drill's role, joins
// it, and at teardown ends the sessions left on the scratch database without FORCE.
TEST_F(existing, a_given_role_without_superuser_rights_restores_and_tears_down) {
  auto shared = testkit::start_shared_server();
  auto given = as_new_role(*shared, "drill_admin", "CREATEDB CREATEROLE");
  auto result = drill_on(given);
  ASSERT_EQ(result.verdict(), exit_code::passed) << testkit::drill_report(result);

  auto server = existing_server::attach(given);
  ASSERT_FALSE(server->restore_role().empty()) << server->describe();
  pqxx::connection lingering(server->restore_target({}).conninfo());  // still open at teardown
  pqxx::nontransaction(lingering).exec("SELECT 1");
  EXPECT_NO_THROW(server->stop());
  EXPECT_EQ(leftovers(*shared), "0\ndatabases, 0\nroles");
}

// A given role that may not create roles: the drill says what to grant (exit 2), and restores as
// that role only when the scenario asks for it.
TEST_F(existing, a_given_role_that_may_not_create_roles_restores_as_itself_only_when_asked) {
  auto shared = testkit::start_shared_server();
  auto given = as_new_role(*shared, "drill_creator", "CREATEDB");
  try {
    existing_server::attach(given);
    ADD_FAILURE() << "attached without a role of its own";
  } catch (const could_not_verify& refused) {
    EXPECT_NE(std::string(refused.what()).find("CREATEROLE"), std::string::npos) << refused.what();
    EXPECT_NE(std::string(refused.what()).find("restore_as_given_role"), std::string::npos) << refused.what();
  }
  EXPECT_EQ(drill_on(given).verdict(), exit_code::not_verified);
  EXPECT_EQ(leftovers(*shared), "0\ndatabases, 0\nroles");

  auto server = existing_server::attach(given, true);
  EXPECT_TRUE(server->restore_role().empty());
  EXPECT_EQ(server->restore_target({}).user, "drill_creator");
  EXPECT_NE(server->describe().find("restored as the given role (it may not create roles)"), std::string::npos) << server->describe();
  server->stop();
  drill_options options;
  options.provider = "existing";
  options.existing = given;
  options.restore_as_given_role = true;
  EXPECT_EQ(run_drill(plan(), options).verdict(), exit_code::passed);
  EXPECT_EQ(leftovers(*shared), "0\ndatabases, 0\nroles");
}

// pg_hba.conf lets only the given role in, a superuser (as `sudo -u postgres pgdrill run` with
// peer authentication): the drill never restores as it, asked or not, and says what to change.
TEST_F(existing, when_the_drills_role_may_not_log_in_a_superuser_never_restores) {
  auto shared = testkit::start_shared_server();
  write_file(shared->directory() / "data" / "pg_hba.conf", "local all postgres trust\nlocal all all reject\n");
  psql(*shared, "SELECT pg_reload_conf()");
  for (bool asked : {false, true}) {
    try {
      existing_server::attach(shared->admin(), asked);
      ADD_FAILURE() << "attached as a superuser";
    } catch (const could_not_verify& refused) {
      EXPECT_NE(std::string(refused.what()).find("pg_hba.conf"), std::string::npos) << refused.what();
      EXPECT_NE(std::string(refused.what()).find(asked ? "never restores a backup as a superuser" : "restore_as_given_role"),
                std::string::npos)
          << refused.what();
    }
    EXPECT_EQ(psql(*shared, "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'pgdrill%'"), "0\n");
    EXPECT_EQ(leftovers(*shared), "0\ndatabases, 0\nroles");
  }
}

// A backup that leaves a prepared transaction (PREPARE TRANSACTION, on a server that allows them):
// the teardown rolls it back and drops everything within its bounds, and the next drill passes.
TEST_F(existing, a_prepared_transaction_in_the_backup_is_rolled_back_at_teardown) {
  local_options settings;
  settings.settings = {{"max_prepared_transactions", "4"}};
  auto shared = testkit::start_shared_server(settings);
  auto hostile = dir_.path() / "prepared.sql";
  write_file(hostile, "CREATE TABLE t (id int);\nINSERT INTO t VALUES (0);\nBEGIN;\nINSERT INTO t VALUES (1);\n"
                      "ALTER ROLE CURRENT_USER SET work_mem = '64kB';\nPREPARE TRANSACTION 'left_by_the_backup';\n");
  drill_options options;
  options.provider = "existing";
  options.existing = shared->admin();
  auto started = std::chrono::steady_clock::now();
  auto result = run_drill(testkit::not_empty_plan("prepared", hostile), options);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(60)) << testkit::drill_report(result);
  EXPECT_EQ(psql(*shared, "SELECT count(*) FROM pg_prepared_xacts"), "0\n");
  EXPECT_EQ(leftovers(*shared), "0\ndatabases, 0\nroles");
  EXPECT_EQ(drill_on(shared->admin()).verdict(), exit_code::passed) << "the next drill on that server";
}

// SQL in a backup, run as the drill's role: no program, no other database, no role changes. The
// drill cannot judge such a backup on a shared server (exit 2) and the server is left as found.
TEST_F(existing, a_hostile_backup_reaches_nothing_beyond_its_scratch_database) {
  auto shared = testkit::start_shared_server();
  psql(*shared, "CREATE DATABASE bystander");
  auto oid = psql(*shared, "SELECT oid FROM pg_database WHERE datname = 'bystander'");
  auto canary = dir_.path() / "CANARY";
  auto hostile = dir_.path() / "hostile.sql";
  write_file(hostile, "CREATE TABLE t (id int);\nCOPY (SELECT 1) TO PROGRAM 'touch " + canary.string() +
                          "';\nDROP DATABASE bystander;\nALTER ROLE postgres NOLOGIN;\n");
  auto file = dir_.path() / "hostile.json";
  write_file(file, R"({"name": "hostile", "provider": "existing", "backup": {"file": ")" + hostile.string() +
                       R"("}, "hygiene": {"min_size_bytes": 0}, "assertions": [{"type": "not_empty"}]})");
  auto result = run_cli({"run", file.string(), "--junit", (dir_.path() / "r.xml").string()}, shared->admin().libpq_env());
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find("insufficient privilege"), std::string::npos) << result.output;
  EXPECT_FALSE(std::filesystem::exists(canary));
  EXPECT_EQ(psql(*shared, "SELECT oid FROM pg_database WHERE datname = 'bystander'"), oid);
  EXPECT_EQ(psql(*shared, "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'postgres'"), "t\n");
  EXPECT_EQ(leftovers(*shared), "0\ndatabases, 0\nroles");
}

namespace {

// Marks `name` (a database or a role) as left by `owner`, as a drill of that run would.
void mark_as_left_by(const server& shared, const char* kind, const std::string& name, const run_owner& owner) {
  psql(shared, std::string(std::string(kind) == "database" ? "CREATE DATABASE " : "CREATE ROLE ") + name);
  psql(shared, "COMMENT ON " + std::string(std::string(kind) == "database" ? "DATABASE " : "ROLE ") + name + " IS " +
                   detail::quote_literal(detail::drill_mark(kind, name, owner)));
}

}  // namespace

TEST_F(existing, a_sweep_removes_only_what_a_run_of_this_machine_that_ended_left) {
  auto shared = testkit::start_shared_server();
  auto live = existing_server::attach(shared->admin());
  auto here = run_owner::of_this_run();
  auto ended = here, elsewhere = here, before_reboot = here;
  ended.tag = std::to_string(::getpid()) + "-1";  // this pid, another start: a process that ended
  elsewhere.host = "another-machine";
  elsewhere.tag = ended.tag;
  before_reboot.boot = "an-earlier-boot";
  mark_as_left_by(*shared, "database", "pgdrill_scratch_ended", ended);
  mark_as_left_by(*shared, "role", "pgdrill_restore_ended", ended);
  mark_as_left_by(*shared, "database", "pgdrill_scratch_elsewhere", elsewhere);
  mark_as_left_by(*shared, "database", "pgdrill_scratch_before_reboot", before_reboot);
  psql(*shared, "CREATE DATABASE pgdrill_scratch_unmarked");
  psql(*shared, "CREATE DATABASE pgdrill_scratch_copied_mark");  // another database's mark does not name it
  psql(*shared, "COMMENT ON DATABASE pgdrill_scratch_copied_mark IS " +
                    detail::quote_literal(detail::drill_mark("database", "pgdrill_scratch_other", ended)));

  auto reaped = existing_server::reap_leftovers(shared->admin());
  std::vector<std::string> what;
  for (const auto& item : reaped) what.push_back(item.what.substr(0, item.what.find(" (")));
  std::sort(what.begin(), what.end());
  EXPECT_EQ(what, (std::vector<std::string>{"database pgdrill_scratch_before_reboot", "database pgdrill_scratch_ended",
                                            "role pgdrill_restore_ended"}));
  EXPECT_EQ(psql(*shared, "SELECT string_agg(datname, ' ' ORDER BY datname) FROM pg_database WHERE datname LIKE 'pgdrill%'"),
            live->scratch_database() + " pgdrill_scratch_copied_mark pgdrill_scratch_elsewhere pgdrill_scratch_unmarked\n");
  live->stop();
}

// SIGKILL while the restore runs: the scratch database, the drill's role and the scenario's role
// stay behind with their marks; the next drill on that server removes them, and so does `gc --server`.
TEST_F(existing, what_a_killed_drill_left_the_next_drill_and_gc_remove) {
  auto shared = testkit::start_shared_server();
  auto slow = dir_.path() / "slow.json";
  write_file(slow, R"({"name": "killed", "provider": "existing", "backup": {"file": ")" + demo_->file.string() +
                       R"json("}, "restore": {"roles": ["drill_app"], "sql_before": "SELECT pg_sleep(120)"},
                       "assertions": [{"type": "not_empty"}]})json");
  auto kill_once_restoring = [&] {
    command cmd(PGDRILL_RUNNER_PATH, {"run", slow.string(), "--junit", (dir_.path() / "r.xml").string()});
    cmd.with_env(shared->admin().libpq_env());
    auto runner = child::spawn(cmd, {stream_target::null(), stream_target::null(), stream_target::null()});
    for (int attempt = 0; attempt < 600; ++attempt) {
      if (psql(*shared, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(120)%'") == "1\n") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    runner.signal_group(SIGKILL);
    runner.kill_and_reap();
    ASSERT_EQ(leftovers(*shared), "1\ndatabases, 2\nroles") << "what the killed drill left, marked";
  };

  kill_once_restoring();
  EXPECT_EQ(drill_on(shared->admin()).verdict(), exit_code::passed);
  EXPECT_EQ(leftovers(*shared), "0\ndatabases, 0\nroles");

  kill_once_restoring();
  auto admin = shared->admin();
  auto gc = run_cli({"gc", "--server", "host=" + admin.host + " port=" + std::to_string(admin.port) + " user=" + admin.user});
  EXPECT_EQ(gc.exit_code, 0) << gc.output;
  EXPECT_NE(gc.output.find("removed database pgdrill_scratch_"), std::string::npos) << gc.output;
  EXPECT_NE(gc.output.find("removed role drill_app"), std::string::npos) << gc.output;
  EXPECT_EQ(leftovers(*shared), "0\ndatabases, 0\nroles");
  EXPECT_EQ(psql(*shared, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(120)%'"), "0\n");
}

namespace {

// Processes whose command line holds `word` (a file name only one test uses).
int processes_mentioning(const std::string& word) {
  int count = 0;
  for (const auto& process : std::filesystem::directory_iterator("/proc"))
    if (detail::proc_text(process.path() / "cmdline").find(word) != std::string::npos) ++count;
  return count;
}

}  // namespace

// SIGKILL of the runner during `pg_restore -j 2`: its parallel workers have no death signal of their
// own and ran on for as long as their COPY took. Each row of this archive passes a check that sleeps
// 0.2 s for any role but postgres, so both workers load for about 20 s as the drill's role.
TEST_F(existing, a_restores_parallel_workers_die_with_a_killed_runner) {
  auto source = testkit::start_server();
  psql(*source, "CREATE FUNCTION slow_ok(int) RETURNS boolean LANGUAGE sql AS "
                "$$SELECT true FROM pg_sleep(CASE WHEN current_user = 'postgres' THEN 0 ELSE 0.2 END)$$;"
                "CREATE TABLE slow_a (id int CHECK (slow_ok(id))); CREATE TABLE slow_b (id int CHECK (slow_ok(id)));"
                "INSERT INTO slow_a SELECT generate_series(1, 100); INSERT INTO slow_b SELECT generate_series(1, 100);");
  std::filesystem::permissions(dir_.path(), std::filesystem::perms(0755));  // the tools open the archive where it is
  auto archive = dir_.path() / "slow_workers.dump";
  testkit::pg_dump(*source, {"-Fc", "-f", archive.string()});
  auto shared = testkit::start_shared_server();
  auto file = dir_.path() / "slow_workers.json";
  write_file(file, R"({"name": "workers", "provider": "existing", "backup": {"file": ")" + archive.string() +
                       R"("}, "restore": {"jobs": 2}, "hygiene": {"min_size_bytes": 0}, "assertions": [{"type": "not_empty"}]})");
  command cmd(PGDRILL_RUNNER_PATH, {"run", file.string(), "--junit", (dir_.path() / "r.xml").string()});
  cmd.with_env(shared->admin().libpq_env());
  auto runner = child::spawn(cmd, {stream_target::null(), stream_target::null(), stream_target::null()});
  for (int attempt = 0; attempt < 600 && processes_mentioning("slow_workers.dump") < 3; ++attempt)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_GE(processes_mentioning("slow_workers.dump"), 3) << "pg_restore and its two workers";

  ::kill(runner.pid(), SIGKILL);
  runner.wait();
  int left = 0;
  for (int attempt = 0; attempt < 50 && (left = processes_mentioning("slow_workers")) > 0; ++attempt)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(left, 0) << "pg_restore, its workers and the runner's warden are gone within 5 s";

  auto admin = shared->admin();
  auto gc = run_cli({"gc", "--server", "host=" + admin.host + " port=" + std::to_string(admin.port) + " user=" + admin.user});
  EXPECT_EQ(gc.exit_code, 0) << gc.output;
  EXPECT_EQ(leftovers(*shared), "0\ndatabases, 0\nroles") << gc.output;
  EXPECT_EQ(psql(*shared, "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE 'pgdrill%'"), "0\n");
}
