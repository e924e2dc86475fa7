// result.hpp: the one rule from outcomes to an exit code, and facts rendered as properties.
#include "support.hpp"

using namespace pgdrill;

namespace {

std::vector<step_result> steps(std::initializer_list<outcome> outcomes) {
  std::vector<step_result> list;
  for (auto value : outcomes) list.push_back(make_step("s", "k", value, ""));
  return list;
}

}  // namespace

TEST(verdict, a_failure_anywhere_is_the_backups_fault) {
  EXPECT_EQ(verdict_of(steps({outcome::failed}), steps({outcome::passed})), exit_code::failed);
  EXPECT_EQ(verdict_of(steps({outcome::passed}), steps({outcome::error, outcome::failed})), exit_code::failed);
}

TEST(verdict, errors_and_unreached_checks_mean_not_verified) {
  EXPECT_EQ(verdict_of(steps({outcome::error}), steps({outcome::passed})), exit_code::not_verified);
  EXPECT_EQ(verdict_of({}, steps({outcome::passed, outcome::skipped})), exit_code::not_verified);
  EXPECT_EQ(verdict_of(steps({outcome::passed, outcome::skipped}), steps({outcome::passed})), exit_code::passed)
      << "a skipped stage alone is not an error";
}

TEST(verdict, never_green_without_a_passing_check) {
  EXPECT_EQ(verdict_of(steps({outcome::passed}), {}), exit_code::not_verified);
  EXPECT_EQ(verdict_of({}, {}), exit_code::not_verified);
  EXPECT_EQ(verdict_of(steps({outcome::passed}), steps({outcome::passed})), exit_code::passed);
  drill_result result;
  result.checks = steps({outcome::passed});
  EXPECT_EQ(result.verdict(), exit_code::passed);
}

TEST(verdict, describes_every_exit_code) {
  EXPECT_STREQ(describe(exit_code::passed), "PASSED");
  EXPECT_STREQ(describe(exit_code::failed), "FAILED");
  EXPECT_STREQ(describe(exit_code::not_verified), "NOT VERIFIED");
  EXPECT_STREQ(describe(exit_code::usage), "USAGE ERROR");
  EXPECT_STREQ(describe(exit_code::locked), "LOCKED");
}

TEST(properties, rendered_from_typed_facts_leaving_out_what_was_not_measured) {
  drill_result result;
  EXPECT_TRUE(properties_of(result).empty());
  result.backup.files = {"/b/one.sql", "/b/two.sql"};
  result.backup.size_bytes = 4096;
  result.backup.format = "plain";
  result.backup.toc_entries = 0;
  result.server = {"local", "15.18"};
  result.restore.tool = "psql";
  result.restore.jobs = 1;
  auto properties = properties_of(result);
  EXPECT_EQ(properties["backup.file"], "/b/one.sql, /b/two.sql");
  EXPECT_EQ(properties["backup.size_bytes"], "4096");
  EXPECT_EQ(properties["backup.toc_entries"], "0");
  EXPECT_EQ(properties["server.version"], "15.18");
  EXPECT_EQ(properties.count("restore.seconds"), 0U) << "a restore that did not complete has no time";
  EXPECT_EQ(properties.count("backup.sha256"), 0U);
  result.restore.seconds = 1.5;
  EXPECT_EQ(std::stod(properties_of(result)["restore.seconds"]), 1.5);
  EXPECT_EQ(properties_of(result).count("coverage.tables"), 0U) << "not measured";
  result.coverage.measured = true;
  result.coverage.tables = {3, 4};
  EXPECT_EQ(properties_of(result)["coverage.tables"], "3/4");
  EXPECT_EQ(properties_of(result)["coverage.large_objects"], "0/0");
}
