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

// Every exception becomes an outcome in one place, by its class and SQLSTATE: the same words with
// another SQLSTATE (or none) are judged otherwise, so no message text decides.
TEST(judge_failure, by_class_and_sqlstate_never_by_message_text) {
  auto judged = [](const std::exception& failure, const std::string& doing = "could not run") {
    return judge_failure(failure, failure_site::check, doing);
  };
  auto missing_table = judged(pqxx::sql_error("relation \"public.t\" does not exist", "SELECT 1", "42P01"));
  EXPECT_EQ(missing_table.result, outcome::failed);
  EXPECT_EQ(missing_table.message, "table missing from the restored database: relation \"public.t\" does not exist");
  EXPECT_EQ(judged(database_error("table public.t does not exist", sqlstate::undefined_table)).result, outcome::failed)
      << "pgdrill's own libpq errors carry their SQLSTATE too";
  EXPECT_EQ(judged(pqxx::sql_error("column \"c\" does not exist", "SELECT c", "42703")).result, outcome::failed);
  auto same_words_no_state = judged(database_error("relation \"public.t\" does not exist", ""));
  EXPECT_EQ(same_words_no_state.result, outcome::error) << "the text alone never fails the backup";
  EXPECT_EQ(same_words_no_state.message, "could not run: relation \"public.t\" does not exist");
  auto hidden = judged(pqxx::sql_error("permission denied for table t\n", "SELECT", "42501"));
  EXPECT_EQ(hidden.result, outcome::error);
  EXPECT_EQ(hidden.message, "could not see every row: permission denied for table t");
  EXPECT_EQ(judged(pqxx::sql_error("canceling statement", "SELECT", "57014")).message,
            "could not run (SQLSTATE 57014): canceling statement");
}

// libpqxx 6 throws its classes for these codes without the code: the class stands for it.
TEST(judge_failure, libpqxx_classes_without_their_sqlstate_are_judged_by_class) {
  EXPECT_EQ(sqlstate_of(pqxx::undefined_table("relation \"t\" does not exist")), sqlstate::undefined_table);
  EXPECT_EQ(sqlstate_of(pqxx::undefined_column("column \"c\" does not exist")), sqlstate::undefined_column);
  EXPECT_EQ(sqlstate_of(pqxx::insufficient_privilege("query would be affected by row-level security policy")),
            sqlstate::insufficient_privilege);
  EXPECT_EQ(judge_failure(pqxx::insufficient_privilege("query would be affected by row-level security policy"), failure_site::check)
                .message,
            "could not see every row: query would be affected by row-level security policy");
  EXPECT_EQ(sqlstate_of(pqxx::sql_error("no code")), "");
  EXPECT_EQ(sqlstate_of(std::runtime_error("not a database's")), "");
}

// Outside a check, a table or column that is not there is no judgement of the restore: pgdrill's own
// catalog query on another major (a column it lacks), say, could not run (exit 2, never 1).
TEST(judge_failure, a_missing_table_or_column_fails_only_a_check_reading_the_restore) {
  pqxx::sql_error no_column("column \"datlocprovider\" does not exist", "SELECT datlocprovider", "42703");
  EXPECT_EQ(judge_failure(no_column, failure_site::check).result, outcome::failed);
  auto in_a_stage = judge_failure(no_column, failure_site::drill, "");
  EXPECT_EQ(in_a_stage.result, outcome::error);
  EXPECT_EQ(in_a_stage.message, "column \"datlocprovider\" does not exist");
  EXPECT_EQ(judge_failure(database_error("relation t does not exist", sqlstate::undefined_table), failure_site::drill).message,
            "could not run (SQLSTATE 42P01): relation t does not exist");
  EXPECT_EQ(judge_failure(corrupt_backup("cut short"), failure_site::drill).result, outcome::failed) << "damage is damage anywhere";
}

TEST(judge_failure, damage_fails_signals_and_everything_else_cannot_judge) {
  auto damaged = judge_failure(corrupt_backup("unexpected end of file"), failure_site::drill, "");
  EXPECT_EQ(damaged.result, outcome::failed);
  EXPECT_EQ(damaged.message, "truncated or corrupt archive: unexpected end of file");
  auto stopped = judge_failure(interrupted(15), failure_site::check);
  EXPECT_EQ(stopped.result, outcome::error);
  EXPECT_EQ(stopped.message, "not run: interrupted by signal 15");
  EXPECT_EQ(judge_failure(std::runtime_error("disk gone"), failure_site::check).message, "could not run: disk gone");
  EXPECT_EQ(judge_failure(std::runtime_error("disk gone"), failure_site::drill, "").message, "disk gone")
      << "a stage's message is the failure's own";
  EXPECT_EQ(judge_failure(could_not_verify("no pg_restore"), failure_site::drill, "could not connect").message,
            "could not connect: no pg_restore");
  step_result step = make_step("c", "k", outcome::passed, "");
  record_failure(step, corrupt_backup("bad block"), failure_site::drill);
  EXPECT_EQ(step.result, outcome::failed);
}

// Exit codes come from one place: an outcome's, a set's (verdict_of), or a thrown error's class.
TEST(exit_codes, from_an_outcome_and_from_what_was_thrown) {
  EXPECT_EQ(exit_code_of(outcome::passed), exit_code::passed);
  EXPECT_EQ(exit_code_of(outcome::failed), exit_code::failed);
  EXPECT_EQ(exit_code_of(outcome::error), exit_code::not_verified);
  EXPECT_EQ(exit_code_of(outcome::skipped), exit_code::not_verified);
  EXPECT_EQ(exit_code_of(usage_error("bad flag")), exit_code::usage);
  EXPECT_EQ(exit_code_of(lock_error("held")), exit_code::locked);
  EXPECT_EQ(exit_code_of(corrupt_backup("cut")), exit_code::failed);
  EXPECT_EQ(exit_code_of(could_not_verify("no server")), exit_code::not_verified);
  EXPECT_EQ(exit_code_of(std::runtime_error("bug")), exit_code::not_verified);
}
