#include "support.hpp"

using namespace pgdrill;

TEST(binaries, finds_the_installed_postgresql) {
  auto found = find_binaries(binary_search::from_environment());
  EXPECT_GE(found.major, 10);
  EXPECT_TRUE(std::filesystem::exists(found.tool("initdb")));
  EXPECT_EQ(major_of(found.version), found.major);
}

TEST(binaries, explicit_directory_without_tools_names_it) {
  binary_search search;
  search.explicit_dir = "/nonexistent/pg/bin";
  try {
    find_binaries(search);
    FAIL() << "expected could_not_verify";
  } catch (const could_not_verify& failure) {
    std::string text = failure.what();
    EXPECT_NE(text.find("/nonexistent/pg/bin"), std::string::npos) << text;
    EXPECT_NE(text.find("initdb"), std::string::npos) << text;
  }
}

TEST(binaries, nothing_found_lists_every_place_searched) {
  binary_search search;
  search.roots = {"/nonexistent/root-a", "/nonexistent/root-b"};
  search.use_pg_config = false;
  search.use_path = false;
  try {
    find_binaries(search);
    FAIL() << "expected could_not_verify";
  } catch (const could_not_verify& failure) {
    std::string text = failure.what();
    EXPECT_NE(text.find("/nonexistent/root-a/*/bin"), std::string::npos) << text;
    EXPECT_NE(text.find("/nonexistent/root-b/*/bin"), std::string::npos) << text;
    EXPECT_EQ(failure.code(), exit_code::not_verified);
  }
}

TEST(binaries, a_too_new_minimum_names_what_is_installed) {
  auto installed = find_binaries(binary_search::from_environment());
  try {
    find_binaries(binary_search::from_environment(), installed.major + 1);
    FAIL() << "expected could_not_verify";
  } catch (const could_not_verify& failure) {
    std::string text = failure.what();
    EXPECT_NE(text.find(std::to_string(installed.major + 1) + " or newer"), std::string::npos) << text;
    EXPECT_NE(text.find(installed.version), std::string::npos) << text;
  }
}

TEST(binaries, the_oldest_that_is_new_enough_else_the_newest) {
  std::vector<pg_binaries> newest_first{{"/pg/18/bin", 18, "18.1", std::nullopt, std::nullopt}, {"/pg/17/bin", 17, "17.7", std::nullopt, std::nullopt},
                                        {"/pg/13/bin", 13, "13.23", std::nullopt, std::nullopt}};
  EXPECT_EQ(choose_installation(newest_first, std::nullopt)->major, 18);
  EXPECT_EQ(choose_installation(newest_first, 13)->major, 13);
  EXPECT_EQ(choose_installation(newest_first, 14)->major, 17);
  EXPECT_EQ(choose_installation(newest_first, 18)->major, 18);
  EXPECT_FALSE(choose_installation(newest_first, 19));
  EXPECT_FALSE(choose_installation({}, std::nullopt));
}

// Debian's /usr/bin/psql is pg_wrapper, whose version changes with PGHOST: never an installation.
TEST(binaries, debians_pg_wrapper_is_no_installation) {
  std::error_code ignored;
  if (std::filesystem::canonical("/usr/bin/psql", ignored).filename() != "pg_wrapper") GTEST_SKIP() << "no pg_wrapper here";
  binary_search search;
  search.roots = {};
  search.use_pg_config = false;
  search.required = {"psql", "pg_restore"};
  for (const auto& found : find_installations(search)) EXPECT_NE(found.bin_dir, "/usr/bin");
  search.roots = {"/usr/lib/postgresql"};
  EXPECT_FALSE(find_installations(search).empty()) << "the real directories are still found";
}

TEST(binaries, parses_tool_version_lines) {
  EXPECT_EQ(detail::parse_tool_version("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n"), "15.18");
  EXPECT_EQ(detail::parse_tool_version("pg_restore (PostgreSQL) 9.6.24\n"), "9.6.24");
  EXPECT_EQ(detail::parse_tool_version("psql (PostgreSQL) 17beta2\n"), "17beta2");
  EXPECT_FALSE(detail::parse_tool_version("not a postgres tool"));
  EXPECT_EQ(major_of("9.6.24"), 9);
}

// A --pg-bin directory is probed tool by tool: a newer pg_restore copied beside older servers
// makes it no installation (its version would otherwise be initdb's alone).
TEST(binaries, a_directory_whose_tools_disagree_is_no_installation) {
  auto installed = find_binaries(binary_search::from_environment());
  scratch_dir mixed;
  for (const char* tool : {"initdb", "postgres", "psql", "pg_dump"})
    std::filesystem::create_symlink(installed.tool(tool), mixed.path() / tool);
  testkit::write_file(mixed.path() / "pg_restore", "#!/bin/sh\necho 'pg_restore (PostgreSQL) 99.1'\n");
  std::filesystem::permissions(mixed.path() / "pg_restore", std::filesystem::perms::owner_all);
  binary_search search;
  std::string why_not;
  EXPECT_FALSE(probe_bin_dir(mixed.path(), search.required, &why_not));
  EXPECT_EQ(why_not, "initdb is " + installed.version + " but pg_restore is 99.1");
  search.explicit_dir = mixed.path();
  try {
    find_binaries(search);
    FAIL() << "expected could_not_verify";
  } catch (const could_not_verify& failure) {
    EXPECT_NE(std::string(failure.what()).find("pg_restore is 99.1"), std::string::npos) << failure.what();
  }
}

TEST(binaries, tools_on_this_host_run_as_built) {
  pg_binaries here{"/usr/lib/postgresql/15/bin", 15, "15.18", std::nullopt, std::nullopt};
  command tool(here.tool("pg_restore"), {"--list", "/backups/a.dump"});
  tool.with_env({{"PGPASSWORD", "s3cret"}});
  auto runnable = here.runnable(tool);
  EXPECT_EQ(runnable.program, "/usr/lib/postgresql/15/bin/pg_restore");
  EXPECT_EQ(runnable.args, tool.args);
  EXPECT_EQ(here.where(), "/usr/lib/postgresql/15/bin");
}

// In a container: through `exec`, the environment passed by name only (the password never in
// argv), libpq pointed at the container's own server, host paths at their mount points.
TEST(binaries, tools_in_a_container_run_through_exec) {
  pg_binaries inside{"", 17, "17.11", tools_container{"/usr/bin/podman", "pgdrill-1", {{"/backups/a:b.dump", "/pgdrill/backup-0"}},
                                                       {{"PGHOST", "127.0.0.1"}, {"PGPORT", "5432"}}},
                     std::nullopt};
  command tool(inside.tool("pg_restore"), {"--dbname", "pgdrill_restore", "/backups/a:b.dump"});
  tool.with_env({{"PGHOST", "127.0.0.1"}, {"PGPORT", "40123"}, {"PGPASSWORD", "s3cret"}});
  tool.in_dir("/work");
  auto runnable = inside.runnable(tool);
  EXPECT_EQ(runnable.program, "/usr/bin/podman");
  EXPECT_EQ(runnable.args, (std::vector<std::string>{"exec", "-i", "--user", "postgres", "-e", "PGHOST", "-e", "PGPORT", "-e",
                                                     "PGPASSWORD", "-w", "/work", "pgdrill-1", "pg_restore", "--dbname",
                                                     "pgdrill_restore", "/pgdrill/backup-0"}));
  EXPECT_EQ(runnable.env, (std::vector<std::pair<std::string, std::string>>{
                              {"PGHOST", "127.0.0.1"}, {"PGPORT", "5432"}, {"PGPASSWORD", "s3cret"}}));
  EXPECT_EQ(runnable.display().find("s3cret"), std::string::npos);
  EXPECT_EQ(inside.where(), "podman container pgdrill-1");
}

// In a container the tools run as the image's postgres account, unless they open by name a backup
// that only its owner may read (a bind mount keeps the host's owner and mode): then as the
// container's root, which the container confines.
TEST(binaries, tools_in_a_container_run_as_postgres_unless_the_backup_is_owner_only) {
  pg_binaries inside{"", 17, "17.11", tools_container{"/usr/bin/podman", "pgdrill-1", {}, {}}, std::nullopt};
  scratch_dir dir;
  auto backup = dir.path() / "a.dump";
  testkit::write_file(backup, "archive");
  auto user_of = [&](std::filesystem::perms mode) {
    std::filesystem::permissions(backup, mode);
    command tool(inside.tool("pg_restore"), {backup.string()});
    tool.reads = {backup};
    auto args = inside.runnable(tool).args;
    auto found = std::find(args.begin(), args.end(), "--user");
    return found == args.end() ? std::string("(the container's default)") : *(found + 1);
  };
  EXPECT_EQ(user_of(std::filesystem::perms(0644)), "postgres");
  EXPECT_EQ(user_of(std::filesystem::perms(0600)), "(the container's default)");
  std::filesystem::permissions(backup, std::filesystem::perms(0644));
  EXPECT_EQ(detail::readable_by_anyone({dir.path()}), false) << "the directory itself is 0700";
  std::filesystem::permissions(dir.path(), std::filesystem::perms(0755));
  EXPECT_EQ(detail::readable_by_anyone({dir.path()}), true);
  EXPECT_EQ(detail::readable_by_anyone({dir.path() / "missing"}), false);
}

TEST(binaries, only_the_engines_own_exit_codes_mean_the_tool_never_ran) {
  pg_binaries here{"/usr/bin", 15, "15.18", std::nullopt, std::nullopt};
  pg_binaries inside{"", 17, "17.11", tools_container{"/usr/bin/podman", "pgdrill-1", {}, {}}, std::nullopt};
  run_result not_found;
  not_found.status.code = 127;
  EXPECT_TRUE(inside.exec_failed(not_found));
  EXPECT_FALSE(here.exec_failed(not_found));
  run_result tool_error;
  tool_error.status.code = 1;
  EXPECT_FALSE(inside.exec_failed(tool_error));
  not_found.timed_out = true;
  EXPECT_FALSE(inside.exec_failed(not_found));
}
