// drill.hpp's stages, each on its own and without a server: what they record, how the stage
// runner times, skips and classifies, and that a drill stopped early plans every check as
// "not reached" under its stable name.
#include "support.hpp"

using namespace pgdrill;

namespace {

scenario plan_for(const std::filesystem::path& backup) {
  scenario plan;
  plan.name = "stages";
  plan.backup.file = backup;
  row_count_assertion count;
  count.table = "orders";
  count.equals = 3;
  plan.assertions = {count, sequences_assertion{}};
  return plan;
}

}  // namespace

TEST(stages, the_runner_records_skips_and_classifies_exceptions) {
  drill_state state(plan_for("/nowhere"), {});
  std::vector<std::string> seen;
  state.options.on_step = [&](const step_result& step) { seen.push_back(step.name); };
  run_stage(state, "damaged", [](drill_state&, step_result&) -> outcome { throw corrupt_backup("bad block"); });
  EXPECT_EQ(state.result.stages.back().result, outcome::failed);
  EXPECT_EQ(state.result.stages.back().message, "truncated or corrupt archive: bad block");
  EXPECT_EQ(state.stopped_by, "damaged failed");
  run_stage(state, "later", [](drill_state&, step_result&) { return outcome::passed; });
  EXPECT_EQ(state.result.stages.back().result, outcome::skipped);
  EXPECT_EQ(state.result.stages.back().message, "not reached: damaged failed");
  EXPECT_EQ(seen, (std::vector<std::string>{"damaged", "later"}));

  drill_state other(plan_for("/nowhere"), {});
  run_stage(other, "machinery", [](drill_state&, step_result&) -> outcome { throw could_not_verify("no binaries\nlong detail"); });
  EXPECT_EQ(other.result.stages.back().result, outcome::error);
  EXPECT_EQ(other.result.stages.back().message, "no binaries");
  EXPECT_EQ(other.result.stages.back().detail, "no binaries\nlong detail");
  EXPECT_EQ(other.stopped_by, "machinery could not run");
}

TEST(stages, a_check_stage_that_throws_records_an_error_instead_of_escaping) {
  drill_state state(plan_for("/nowhere"), {});
  run_check_stage(state, "hygiene", [](drill_state&) { throw std::runtime_error("disk gone"); });
  ASSERT_EQ(state.result.checks.size(), 1U);
  EXPECT_EQ(state.result.checks[0].result, outcome::error);
  EXPECT_EQ(state.result.checks[0].message, "could not run: disk gone");
}

TEST(stages, locate_hashes_names_and_fails_what_is_no_backup) {
  scratch_dir dir;
  testkit::write_file(dir.path() / "noise.dump", std::string(2048, '\0'));
  drill_state state(plan_for(dir.path() / "noise.dump"), {});
  step_result step;
  EXPECT_EQ(stages::locate(state, step), outcome::failed);
  EXPECT_NE(step.message.find("is not a PostgreSQL backup: it looks like binary data"), std::string::npos);
  EXPECT_EQ(state.result.backup.size_bytes, 2048U);
  EXPECT_EQ(state.result.backup.sha256, sha256_file(dir.path() / "noise.dump"));
  stages::hygiene(state);
  ASSERT_EQ(state.result.checks.size(), 1U);
  EXPECT_EQ(state.result.checks[0].name, "backup size");
  EXPECT_EQ(state.result.checks[0].result, outcome::passed);
}

TEST(stages, restore_time_is_judged_only_when_the_restore_completed) {
  auto plan = plan_for("/nowhere");
  plan.restore.max_seconds = 10;
  drill_state stopped(plan, {});
  stopped.stopped_by = "restore failed";
  stages::rto(stopped);
  EXPECT_EQ(stopped.result.checks.back().result, outcome::skipped);
  drill_state slow(plan, {});
  slow.result.restore.seconds = 12;
  stages::rto(slow);
  EXPECT_EQ(slow.result.checks.back().result, outcome::failed);
  EXPECT_EQ(slow.result.checks.back().actual, "12.00s");
}

TEST(stages, checks_after_a_stop_are_each_not_reached_under_their_names) {
  drill_state state(plan_for("/nowhere"), {});
  state.stopped_by = "restore failed";
  stages::checks(state);
  ASSERT_EQ(state.result.checks.size(), 4U);  // two row counts, and the not_empty and roles checks every drill has
  EXPECT_EQ(state.result.checks[0].name, "row_count public.orders");
  EXPECT_EQ(state.result.checks[2].name, "not_empty");
  EXPECT_EQ(state.result.checks[3].name, "roles");
  EXPECT_EQ(state.result.checks[1].message, "not reached: restore failed");
}

// A drill stopped before it found its manifest cannot expand a manifest-wide check into one
// per table. Alone, it is one case named for what it stands for (never "row_count public.");
// with a history, the last drill's cases of that kind come back under their names, so a CI trend
// view loses none of them on a night whose backup is missing.
TEST(stages, manifest_wide_checks_not_reached_keep_their_names) {
  scratch_dir dir;
  auto plan = plan_for(dir.path() / "missing.dump");
  row_count_assertion every_count;
  every_count.from_manifest = true;
  checksum_assertion every_checksum;
  every_checksum.from_manifest = true;
  plan.assertions = {every_count, every_checksum, sequences_assertion{}};
  auto not_reached = [&] {
    drill_state state(plan, {});
    state.stopped_by = "locate backup could not run";
    stages::checks(state);
    std::vector<std::string> names;
    for (const auto& check : state.result.checks) {
      EXPECT_EQ(check.result, outcome::skipped) << check.name;
      EXPECT_EQ(check.message, "not reached: locate backup could not run") << check.name;
      names.push_back(check.name);
    }
    return names;
  };
  EXPECT_EQ(not_reached(), (std::vector<std::string>{"row_count of the manifest's tables", "checksum of the manifest's tables",
                                                     "sequences", "not_empty", "roles"}));

  history_entry before;
  before.at = "2026-11-01T02:00:00Z";
  before.scenario = plan.name;
  before.exit_code = 1;
  before.steps = {{"restore", "stage", "failed", "pg_restore: error"},
                  {"row_count public.orders", "row_count", "passed", ""},
                  {"row_count \"odd.schema\".\"t\"", "row_count", "passed", ""},
                  {"checksum public.orders", "checksum", "failed", "digest differs"},
                  {"sequences", "sequences", "passed", ""}};
  plan.history = dir.path() / "history.jsonl";
  append_history(*plan.history, before);
  EXPECT_EQ(not_reached(), (std::vector<std::string>{"row_count public.orders", "row_count \"odd.schema\".\"t\"",
                                                     "checksum public.orders", "sequences", "not_empty", "roles"}));

  testkit::write_file(*plan.history, "not a history\n");  // an unreadable history changes no verdict: the names stand alone
  EXPECT_EQ(not_reached().front(), "row_count of the manifest's tables");
}

TEST(stages, counted_rows_become_typed_facts) {
  drill_state state(plan_for("/nowhere"), {});
  auto counted = make_step("row_count public.orders #2", "row_count", outcome::passed, "");
  counted.table = "public.orders";
  counted.rows = 42;
  state.record_check(counted);
  EXPECT_EQ(state.result.table_rows.at("public.orders"), 42);
}

TEST(drill, a_missing_backup_cannot_verify_and_starts_nothing) {
  auto result = run_drill(plan_for("/nowhere/backup.dump"));
  EXPECT_EQ(result.verdict(), exit_code::not_verified);
  std::vector<std::string> stages;
  for (const auto& stage : result.stages) stages.push_back(stage.name + ":" + to_string(stage.result));
  EXPECT_EQ(stages, (std::vector<std::string>{"locate backup:error", "inspect backup:skipped", "provision server:skipped",
                                              "restore:skipped", "teardown:passed"}));
  EXPECT_EQ(result.stages.back().message, "nothing to tear down");
  EXPECT_EQ(result.checks.size(), 4U);
  EXPECT_FALSE(result.restore.seconds);
}

// The official image, fully qualified by default (podman refuses short names without a search
// registry); PGDRILL_IMAGE and the scenario's template override it.
TEST(container_image, fully_qualified_official_image_for_the_major_unless_overridden) {
  container_options options;
  ::unsetenv("PGDRILL_IMAGE");
  EXPECT_EQ(options.image_for(17), "docker.io/library/postgres:17");
  ::setenv("PGDRILL_IMAGE", "registry.example/pg:{major}-alpine", 1);
  EXPECT_EQ(options.image_for(13), "registry.example/pg:13-alpine");
  options.image_template = "localhost/mine:{major}";
  EXPECT_EQ(options.image_for(18), "localhost/mine:18");
  EXPECT_EQ(options.image_for(0), "localhost/mine:latest") << "a backup of unknown major: the newest";
  ::unsetenv("PGDRILL_IMAGE");
}

// A connection string without a database leaves it to libpq (PGDATABASE, a service, the user
// name), as psql does: `PGDATABASE=shop pgdrill dump` dumps shop, not postgres.
TEST(endpoint, the_database_is_libpqs_to_resolve_when_not_given) {
  ::setenv("PGDATABASE", "shop", 1);
  auto from_environment = endpoint_from_conninfo("host=db user=app");
  EXPECT_EQ(from_environment.dbname, "");
  EXPECT_EQ(from_environment.conninfo().find("dbname"), std::string::npos) << from_environment.conninfo();
  for (const auto& [name, value] : from_environment.libpq_env()) EXPECT_NE(name, "PGDATABASE") << "the child inherits PGDATABASE";
  EXPECT_EQ(from_environment.describe(), "user=app host=db (libpq's defaults)") << "in libpq's order of keywords";
  EXPECT_EQ(endpoint_from_conninfo("host=db dbname=sales").dbname, "sales");
  ::unsetenv("PGDATABASE");
}

// libpq quotes the token it cannot parse, and in a URL with a bad escape that token is the
// password: it went whole into every report. Every form of password is cut out first.
TEST(endpoint, a_malformed_connection_string_never_shows_its_password) {
  for (const std::string conninfo : {"postgresql://app:Can%zzary@db/shop", "postgresql://db/shop?password=Can%zzary&sslmode=x%",
                                     "host=db password='Can%zzary' bogus", "host=db password=Can%zzary dbname='unterminated"}) {
    try {
      endpoint_from_conninfo(conninfo);
      ADD_FAILURE() << "parsed: " << conninfo;
    } catch (const usage_error& failure) {
      EXPECT_EQ(std::string(failure.what()).find("Can%zz"), std::string::npos) << failure.what();
      EXPECT_EQ(std::string(failure.what()).find("zzary"), std::string::npos) << failure.what();
    }
  }
  EXPECT_EQ(detail::passwords_in_conninfo("postgres://u:p%40ss@h/d"), std::vector<std::string>{"p%40ss"});
  EXPECT_EQ(detail::redacted("token \"s3cret\" and s3cret", {"s3cret"}), "token \"********\" and ********");
}

// Docker-in-Docker: the job reaches the container's port on the dind service, named by the
// engine's URL; a local socket means this machine.
TEST(container_host, from_the_engines_url_or_given_else_loopback) {
  EXPECT_EQ(detail::host_of_engine_url("tcp://docker:2376"), "docker");
  EXPECT_EQ(detail::host_of_engine_url("tcp://10.0.0.5:2375/"), "10.0.0.5");
  EXPECT_EQ(detail::host_of_engine_url("ssh://ci@build-host:22"), "build-host");
  EXPECT_EQ(detail::host_of_engine_url("tcp://[fd00::5]:2375"), "fd00::5");
  EXPECT_EQ(detail::host_of_engine_url("unix:///var/run/docker.sock"), "");
  EXPECT_EQ(detail::host_of_engine_url(""), "");
  testkit::scoped_env no_override("PGDRILL_CONTAINER_HOST", nullptr), no_podman("CONTAINER_HOST", nullptr);
  {
    testkit::scoped_env dind("DOCKER_HOST", "tcp://docker:2376");
    EXPECT_EQ(container_host_from_environment(), "docker");
    EXPECT_TRUE(container_engine_is_remote());
    testkit::scoped_env given("PGDRILL_CONTAINER_HOST", "dind.internal");
    EXPECT_EQ(container_host_from_environment(), "dind.internal");
  }
  testkit::scoped_env socket("DOCKER_HOST", "unix:///run/user/1000/docker.sock");
  EXPECT_EQ(container_host_from_environment(), "127.0.0.1");
  EXPECT_FALSE(container_engine_is_remote());
  EXPECT_TRUE(detail::is_loopback("127.0.0.1"));
  EXPECT_FALSE(detail::is_loopback("docker"));
}

TEST(container_host, a_remote_engine_mounts_the_path_itself_and_the_first_port_line_counts) {
  scratch_dir dir;
  EXPECT_EQ(detail::read_only_mount("/b/x.dump", dir.path() / "0", "/pgdrill/backup-0", true),
            (std::vector<std::string>{"--mount", "type=bind,source=/b/x.dump,target=/pgdrill/backup-0,readonly"}));
  EXPECT_EQ(detail::read_only_mount("/b/a,\"b\".dump", dir.path() / "0", "/in", true),
            (std::vector<std::string>{"--mount", "type=bind,\"source=/b/a,\"\"b\"\".dump\",target=/in,readonly"}));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "0")) << "no symlink: the daemon could not see it";
  auto local = detail::read_only_mount("/b/2026-11-22T02:00:00.dump", dir.path() / "0", "/in", false);
  EXPECT_EQ(local, (std::vector<std::string>{"-v", (dir.path() / "0").string() + ":/in:ro"}));
  EXPECT_EQ(std::filesystem::read_symlink(dir.path() / "0"), "/b/2026-11-22T02:00:00.dump");
  EXPECT_EQ(detail::published_port("0.0.0.0:49153\n[::]:49153\n"), 49153);
  EXPECT_EQ(detail::published_port("127.0.0.1:40001\n"), 40001);
  EXPECT_EQ(detail::published_port("garbage"), 0);
}
