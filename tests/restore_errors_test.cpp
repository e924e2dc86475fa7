// Reading and judging restore tools' errors, on stderr as psql 15 and pg_restore 15 printed it
// for real dumps (captured with `psql --echo-errors -v VERBOSITY=verbose` and `pg_restore`).
#include <gtest/gtest.h>

#include <pgdrill/restore.hpp>
#include <pgdrill/restore_errors.hpp>

using namespace pgdrill;

namespace {

std::vector<tool_error> read_errors(const std::string& text, std::size_t chunk = 7) {
  tool_error_reader reader;
  for (std::size_t at = 0; at < text.size(); at += chunk) reader.feed(std::string_view(text).substr(at, chunk));
  return reader.finish();
}

judged_errors judged(const std::string& text, bool tolerate = true) { return judge_errors(read_errors(text), tolerate); }

// pg_dump --clean restored into a fresh database (psql, from a file).
const char* clean_dump_stderr =
    "psql:clean.sql:21: ERROR:  42P01: relation \"public.t\" does not exist\n"
    "LOCATION:  RangeVarGetRelidExtended, namespace.c:428\n"
    "psql:clean.sql:21: STATEMENT:  ALTER TABLE ONLY public.t DROP CONSTRAINT t_pkey;\n"
    "psql:clean.sql:22: ERROR:  3F000: schema \"s\" does not exist\n"
    "LOCATION:  DropErrorMsgNonExistent, tablecmds.c:1285\n"
    "psql:clean.sql:22: STATEMENT:  DROP TABLE s.w;\n"
    "psql:clean.sql:24: ERROR:  42P01: table \"t\" does not exist\n"
    "psql:clean.sql:24: STATEMENT:  DROP TABLE public.t;\n";

}  // namespace

TEST(restore_errors, psql_errors_are_read_with_sqlstate_and_statement) {
  auto errors = read_errors(clean_dump_stderr);
  ASSERT_EQ(errors.size(), 3U);
  EXPECT_EQ(errors[0].sqlstate, "42P01");
  EXPECT_EQ(errors[0].message, "relation \"public.t\" does not exist");
  EXPECT_EQ(errors[0].statement, "ALTER TABLE ONLY public.t DROP CONSTRAINT t_pkey;");
  EXPECT_TRUE(errors[0].from_server);
  EXPECT_EQ(errors[1].statement, "DROP TABLE s.w;");
}

TEST(restore_errors, clean_dump_drops_on_a_fresh_database_are_tolerated) {
  auto result = judged(clean_dump_stderr);
  EXPECT_TRUE(result.problems.empty());
  ASSERT_EQ(result.tolerated.size(), 3U);
  EXPECT_NE(result.tolerated[0].reason.find("--clean"), std::string::npos);
}

TEST(restore_errors, nothing_is_tolerated_in_a_single_transaction) {
  auto result = judged(clean_dump_stderr, false);
  EXPECT_EQ(result.problems.size(), 3U);
  EXPECT_TRUE(result.tolerated.empty());
}

TEST(restore_errors, a_multiline_statement_is_kept_whole_and_a_missing_type_is_the_backups_fault) {
  auto result = judged(
      "ERROR:  42704: type \"nosuchtype\" does not exist\n"
      "LINE 2:   b nosuchtype);\n"
      "            ^\n"
      "LOCATION:  typenameType, parse_type.c:270\n"
      "STATEMENT:  CREATE TABLE x (a int,\n"
      "  b nosuchtype);\n");
  ASSERT_EQ(result.problems.size(), 1U);
  EXPECT_EQ(result.problems[0].kind, "SQL error");
  EXPECT_EQ(result.problems[0].statement, "CREATE TABLE x (a int,\n  b nosuchtype);");
  EXPECT_FALSE(result.problems[0].environment);
}

TEST(restore_errors, the_real_cause_is_not_hidden_behind_a_harmless_line) {
  // pg_dump -n public restored by pg_restore: the harmless duplicate schema, then a missing type.
  auto result = judged(
      "pg_restore: while PROCESSING TOC:\n"
      "pg_restore: from TOC entry 4; 2615 2200 SCHEMA public pg_database_owner\n"
      "pg_restore: error: could not execute query: ERROR:  schema \"public\" already exists\n"
      "Command was: CREATE SCHEMA public;\n\n\n"
      "pg_restore: from TOC entry 215; 1259 16390 TABLE public t postgres\n"
      "pg_restore: error: could not execute query: ERROR:  type \"public.mood\" does not exist\n"
      "LINE 3:     m public.mood\n"
      "              ^\n"
      "Command was: CREATE TABLE public.t (\n    id integer,\n    m public.mood\n);\n\n\n"
      "pg_restore: warning: errors ignored on restore: 2\n");
  ASSERT_EQ(result.tolerated.size(), 1U);
  EXPECT_EQ(result.tolerated[0].statement, "CREATE SCHEMA public;");
  ASSERT_EQ(result.problems.size(), 1U);
  EXPECT_EQ(result.problems[0].kind, "SQL error");
  EXPECT_NE(result.problems[0].line.find("public.mood"), std::string::npos);
  EXPECT_EQ(result.problems[0].statement, "CREATE TABLE public.t (\n    id integer,\n    m public.mood\n);");
}

TEST(restore_errors, pg_restore_counts_the_errors_it_went_past) {
  tool_error_reader reader;
  reader.feed("pg_restore: error: could not execute query: ERROR:  schema \"public\" already exists\n"
              "Command was: CREATE SCHEMA public;\n\n\npg_restore: warning: errors ignored on restore: 1\n");
  auto errors = reader.finish();
  EXPECT_EQ(reader.ignored_by_pg_restore(), 1U);
  EXPECT_EQ(errors.size(), 1U);
}

TEST(restore_errors, cluster_dump_roles_are_tolerated_only_as_the_exact_statements) {
  auto result = judged(
      "ERROR:  42710: role \"postgres\" already exists\nSTATEMENT:  CREATE ROLE postgres;\n"
      "ERROR:  55006: current user cannot be dropped\nSTATEMENT:  DROP ROLE IF EXISTS postgres;\n"
      "ERROR:  42710: role \"app\" already exists\nSTATEMENT:  CREATE TABLE app (a int); CREATE ROLE app;\n");
  EXPECT_EQ(result.tolerated.size(), 2U);
  ASSERT_EQ(result.problems.size(), 1U);
  EXPECT_EQ(result.problems[0].kind, "SQL error");
}

TEST(restore_errors, a_tablespace_the_server_lacks_is_tolerated) {
  auto result = judged("ERROR:  22023: invalid value for parameter \"default_tablespace\": \"ts\"\n"
                       "DETAIL:  Tablespace \"ts\" does not exist.\nSTATEMENT:  SET default_tablespace = ts;\n");
  EXPECT_EQ(result.tolerated.size(), 1U);
  EXPECT_TRUE(result.problems.empty());
}

TEST(restore_errors, pg_restore_tablespace_and_large_object_clean_errors_are_tolerated) {
  auto result = judged(
      "pg_restore: error: could not set default_tablespace to archive_space: ERROR:  invalid value for parameter "
      "\"default_tablespace\": \"archive_space\"\n"
      "ERROR:  42704: large object 16482 does not exist\nSTATEMENT:  SELECT pg_catalog.lo_unlink('16482');\n");
  EXPECT_EQ(result.tolerated.size(), 2U);
  EXPECT_TRUE(result.problems.empty()) << result.problems.front().line;
}

TEST(restore_errors, a_duplicate_schema_other_than_public_is_not_tolerated) {
  auto result = judged("ERROR:  42P06: schema \"sales\" already exists\nSTATEMENT:  CREATE SCHEMA sales;\n");
  EXPECT_TRUE(result.tolerated.empty());
  EXPECT_EQ(result.problems.size(), 1U);
}

TEST(restore_errors, environment_faults_are_not_the_backups) {
  struct sample {
    const char* stderr_text;
    const char* kind;
  };
  for (const auto& [text, kind] : std::vector<sample>{
           {"ERROR:  53100: could not extend file \"base/16384/16390\": No space left on device\n", "disk full"},
           {"pg_restore: error: could not execute query: ERROR:  could not extend file \"base/1/2\": wrote only 4096 of 8192 bytes\n",
            "disk full"},
           {"ERROR:  53200: out of memory\nDETAIL:  Failed on request of size 1024.\n", "server out of memory"},
           {"pg_restore: error: connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: FATAL:  sorry, too many clients already\n",
            "too many connections"},
           {"server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n", "server stopped or unreachable"},
           {"FATAL:  57P01: terminating connection due to administrator command\n", "server stopped or unreachable"},
           {"psql: error: connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: fe_sendauth: no password supplied\n",
            "authentication failed"},
           {"ERROR:  58P01: could not open extension control file \"/usr/share/postgresql/15/extension/postgis.control\": No such file\n",
            "missing extension"},
           {"pg_restore: error: unsupported version (1.16) in file header\n", "archive newer than the tools"}}) {
    auto result = judged(text);
    ASSERT_EQ(result.problems.size(), 1U) << text;
    EXPECT_EQ(result.problems[0].kind, kind) << text;
    EXPECT_TRUE(result.problems[0].environment) << text;
    EXPECT_FALSE(result.problems[0].hint.empty()) << text;
  }
}

// A live server's ERROR of class 08 answers the backup's own SQL (dblink, postgres_fdw), and a
// \connect to a database the script never created is the script's: both the backup's faults,
// while the same words about the drill's own connection stay the environment's.
TEST(restore_errors, connection_failures_of_the_backups_own_sql_are_the_backups) {
  struct sample {
    const char* stderr_text;
    const char* kind;
    bool environment;
  };
  for (const auto& [text, kind, environment] : std::vector<sample>{
           {"ERROR:  08001: could not establish connection\nDETAIL:  connection to server at \"127.0.0.1\", port 1 failed: "
            "Connection refused\nSTATEMENT:  SELECT dblink_connect('host=127.0.0.1 port=1');\n", "SQL error", false},
           {"pg_restore: error: could not execute query: ERROR:  could not connect to server \"remote\"\n", "SQL error", false},
           {"\\connect: connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: FATAL:  database \"never_created\" does "
            "not exist\n", "connect to a database the backup does not create", false},
           {"FATAL:  08006: connection to client lost\n", "server stopped or unreachable", true},
           {"psql: error: connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: No such file or directory\n",
            "server stopped or unreachable", true}}) {
    auto result = judged(text);
    ASSERT_EQ(result.problems.size(), 1U) << text;
    EXPECT_EQ(result.problems[0].kind, kind) << text;
    EXPECT_EQ(result.problems[0].environment, environment) << text;
  }
}

TEST(restore_errors, a_client_out_of_memory_is_a_corrupt_archive_and_a_missing_role_says_how_to_fix_it) {
  auto result = judged(
      "pg_restore: error: out of memory\n"
      "pg_restore: error: could not execute query: ERROR:  role \"app\" does not exist\nCommand was: ALTER TABLE public.t OWNER TO app;\n");
  ASSERT_EQ(result.problems.size(), 2U);
  EXPECT_EQ(result.problems[0].kind, "truncated or corrupt archive");
  EXPECT_FALSE(result.problems[0].environment);
  EXPECT_EQ(result.problems[1].kind, "missing role");
  EXPECT_FALSE(result.problems[1].environment);
  EXPECT_NE(result.problems[1].hint.find("\"roles\": [\"app\"]"), std::string::npos) << result.problems[1].hint;
}

// pg_dump --create of the database postgres, restored by psql into a fresh server (stderr as
// psql 15 printed it): only that database, which every fresh server has, is tolerated.
TEST(restore_errors, a_create_dump_of_postgres_restores_into_the_fresh_one) {
  const std::string postgres =
      "psql:<stdin>:26: ERROR:  42P04: database \"postgres\" already exists\n"
      "LOCATION:  createdb, dbcommands.c:1053\n"
      "psql:<stdin>:26: STATEMENT:  CREATE DATABASE postgres WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = "
      "libc LOCALE = 'C';\n";
  auto result = judged(postgres);
  EXPECT_TRUE(result.problems.empty());
  ASSERT_EQ(result.tolerated.size(), 1U);
  EXPECT_NE(result.tolerated[0].reason.find("already has database postgres"), std::string::npos);
  auto shop = postgres;
  for (auto at = shop.find("postgres"); at != std::string::npos; at = shop.find("postgres", at)) shop.replace(at, 8, "shop");
  EXPECT_EQ(judged(shop).problems.size(), 1U) << "a database the server already had is not the dump's to reuse";
}

// Two pg_restore -j workers failing at once, their stderr interleaved as CI once printed it: the
// first cause is the damaged data file, not the worker that died of it.
TEST(restore_errors, interleaved_worker_errors_still_name_the_damage) {
  auto result = judged(
      "pg_restore:pg_restore: error: could not close data file \"/d/directory.dir/3362.dat\": Success\n"
      " error: could not close data file \"/d/directory.dir/3360.dat\": Success\n"
      "pg_restore: error: a worker process died unexpectedly\n");
  ASSERT_EQ(result.problems.size(), 3U);
  EXPECT_EQ(result.problems[0].kind, "truncated or corrupt archive");
  EXPECT_EQ(result.problems[1].kind, "truncated or corrupt archive");
}

TEST(restore_errors, every_missing_role_is_in_one_hint) {
  auto result = judged(
      "psql:d.sql:9: ERROR:  42704: role \"app\" does not exist\npsql:d.sql:9: STATEMENT:  ALTER TABLE public.t OWNER TO app;\n"
      "psql:d.sql:10: ERROR:  42704: role \"Odd \"R\" does not exist\n"
      "psql:d.sql:10: STATEMENT:  GRANT SELECT ON TABLE public.t TO \"Odd \"\"R\";\n"
      "psql:d.sql:11: ERROR:  42704: role \"app\" does not exist\npsql:d.sql:11: STATEMENT:  GRANT SELECT ON TABLE public.u TO app;\n");
  ASSERT_EQ(result.problems.size(), 3U);
  EXPECT_NE(result.problems[0].hint.find(R"("roles": ["app", "Odd \"R"])"), std::string::npos) << result.problems[0].hint;
}

TEST(restore_errors, notices_and_warnings_are_no_errors) {
  EXPECT_TRUE(read_errors("NOTICE:  00000: database \"r1\" does not exist, skipping\nLOCATION:  dropdb, dbcommands.c:1557\n"
                          "pg_restore: warning: harmless\nWARNING:  01000: something\n")
                  .empty());
}

// As psql 15 and pg_restore 15 printed them restoring as a role without superuser rights (the
// existing provider's own role): what the role may not apply is tolerated, anything else needing
// superuser rights is the environment's fault there, and the backup's anywhere else.
const char* unprivileged_stderr =
    "psql:t.sql:2: ERROR:  42501: must be member of role \"postgres\"\n"
    "LOCATION:  check_is_member_of_role, acl.c:5023\n"
    "psql:t.sql:2: STATEMENT:  ALTER TABLE public.t OWNER TO postgres;\n"
    "psql:t.sql:4: ERROR:  42501: permission denied to set session authorization \"postgres\"\n"
    "LOCATION:  call_string_check_hook, guc.c:12053\n"
    "psql:t.sql:4: STATEMENT:  SET SESSION AUTHORIZATION postgres;\n"
    "pg_restore: error: could not execute query: ERROR:  must be member of role \"postgres\"\n"
    "Command was: ALTER TABLE public.t2 OWNER TO postgres;\n"
    "\n"
    "psql:u.sql:4: ERROR:  42501: must have admin option on role \"pg_monitor\"\n"
    "LOCATION:  AddRoleMems, user.c:1406\n"
    "psql:u.sql:4: STATEMENT:  GRANT pg_monitor TO r;\n";

const char* needs_superuser_stderr =
    "psql:u.sql:1: ERROR:  42501: permission denied to create extension \"amcheck\"\n"
    "HINT:  Must be superuser to create this extension.\n"
    "LOCATION:  execute_extension_script, extension.c:1040\n"
    "psql:u.sql:1: STATEMENT:  CREATE EXTENSION amcheck;\n"
    "psql:t.sql:6: ERROR:  42501: must be superuser or have privileges of the pg_execute_server_program role to COPY to or "
    "from an external program\n"
    "psql:t.sql:6: STATEMENT:  COPY (SELECT 1) TO PROGRAM 'true';\n";

TEST(restore_errors, ownership_and_grants_a_role_without_superuser_rights_may_not_apply_are_tolerated) {
  auto result = judged(unprivileged_stderr);
  EXPECT_TRUE(result.problems.empty()) << result.problems.front().line;
  ASSERT_EQ(result.tolerated.size(), 4U);
  EXPECT_NE(result.tolerated[0].reason.find("restores as a role of its own"), std::string::npos);
  EXPECT_EQ(result.tolerated[2].statement, "ALTER TABLE public.t2 OWNER TO postgres;");
  EXPECT_EQ(judged(unprivileged_stderr, false).problems.size(), 4U) << "a single transaction tolerates nothing";
}

TEST(restore_errors, what_needs_superuser_rights_is_the_environments_fault_only_where_the_restore_has_none) {
  auto unprivileged = judge_errors(read_errors(needs_superuser_stderr), true, true);
  ASSERT_EQ(unprivileged.problems.size(), 2U);
  for (const auto& problem : unprivileged.problems) {
    EXPECT_EQ(problem.kind, "insufficient privilege");
    EXPECT_TRUE(problem.environment);
    EXPECT_NE(problem.hint.find("local or container provider"), std::string::npos);
  }
  for (const auto& problem : judged(needs_superuser_stderr).problems) EXPECT_FALSE(problem.environment) << problem.kind;
}

// pg_restore 15 -j 2 --verbose into a database that already had one of the archive's tables: its
// progress lines around the error, as it printed them.
const char* verbose_parallel_stderr =
    "pg_restore: connecting to database for restore\n"
    "pg_restore: processing item 3364 ENCODING ENCODING\n"
    "pg_restore: processing item 3365 STDSTRINGS STDSTRINGS\n"
    "pg_restore: processing item 3366 SEARCHPATH SEARCHPATH\n"
    "pg_restore: processing item 3367 DATABASE postgres\n"
    "pg_restore: processing item 3368 COMMENT DATABASE postgres\n"
    "pg_restore: processing item 6 SCHEMA s\n"
    "pg_restore: creating SCHEMA \"s\"\n"
    "pg_restore: processing item 215 TABLE a\n"
    "pg_restore: creating TABLE \"public.a\"\n"
    "pg_restore: processing item 216 TABLE b\n"
    "pg_restore: creating TABLE \"public.b\"\n"
    "pg_restore: while PROCESSING TOC:\n"
    "pg_restore: from TOC entry 216; 1259 16391 TABLE b postgres\n"
    "pg_restore: error: could not execute query: ERROR:  relation \"b\" already exists\n"
    "Command was: CREATE TABLE public.b (\n"
    "    i integer\n"
    ");\n"
    "\n"
    "\n"
    "pg_restore: processing item 218 TABLE p\n"
    "pg_restore: creating TABLE \"public.p\"\n"
    "pg_restore: processing item 219 TABLE p1\n"
    "pg_restore: creating TABLE \"public.p1\"\n"
    "pg_restore: processing item 217 TABLE a\n"
    "pg_restore: creating TABLE \"s.a\"\n"
    "pg_restore: processing item 3213 TABLE ATTACH p1\n"
    "pg_restore: creating TABLE ATTACH \"public.p1\"\n"
    "pg_restore: entering main parallel loop\n"
    "pg_restore: launching item 3358 TABLE DATA a\n"
    "pg_restore: launching item 3359 TABLE DATA b\n"
    "pg_restore: processing data for table \"public.b\"\n"
    "pg_restore: processing data for table \"public.a\"\n"
    "pg_restore: finished item 3359 TABLE DATA b\n"
    "pg_restore: launching item 3360 TABLE DATA a\n"
    "pg_restore: processing data for table \"s.a\"\n"
    "pg_restore: finished item 3360 TABLE DATA a\n"
    "pg_restore: launching item 3361 TABLE DATA p1\n"
    "pg_restore: processing data for table \"public.p1\"\n"
    "pg_restore: finished item 3361 TABLE DATA p1\n"
    "pg_restore: finished item 3358 TABLE DATA a\n"
    "pg_restore: launching item 3215 CONSTRAINT a a_pkey\n"
    "pg_restore: creating CONSTRAINT \"public.a a_pkey\"\n"
    "pg_restore: finished item 3215 CONSTRAINT a a_pkey\n"
    "pg_restore: finished main parallel loop\n"
    "pg_restore: warning: errors ignored on restore: 1\n";

TEST(restore_errors, verbose_progress_names_each_table_loaded_and_leaves_the_errors_as_they_were) {
  std::vector<int> finished;
  tool_error_reader errors;
  detail::verbose_progress progress(errors, [&](int dump_id) { finished.push_back(dump_id); });
  const std::string text = verbose_parallel_stderr;
  for (std::size_t at = 0; at < text.size(); at += 7) progress.feed(std::string_view(text).substr(at, 7));
  auto tail = progress.tail();
  EXPECT_EQ(finished, (std::vector<int>{3359, 3360, 3361, 3358})) << "TABLE DATA entries only, not the constraint";
  for (const char* progress_line : {"processing item", "launching item", "finished item", "creating TABLE", "connecting to"})
    EXPECT_EQ(tail.find(progress_line), std::string::npos) << progress_line << " in the tail:\n" << tail;
  EXPECT_NE(tail.find("pg_restore: from TOC entry 216; 1259 16391 TABLE b postgres"), std::string::npos) << tail;
  auto read = errors.finish();
  ASSERT_EQ(read.size(), 1U);
  EXPECT_EQ(read[0].message, "relation \"b\" already exists");
  EXPECT_EQ(read[0].statement.rfind("CREATE TABLE public.b (", 0), 0U) << read[0].statement;
  EXPECT_EQ(errors.ignored_by_pg_restore(), 1U);
  auto from_tail = read_errors(tail);
  ASSERT_EQ(from_tail.size(), 1U) << "the tail reads as stderr without --verbose would";
  EXPECT_EQ(from_tail[0].statement, read[0].statement);
}

// The \connect lines pg_dump and pg_dumpall write (appendPsqlMetaConnect) name a database and
// nothing else; every other form may move the script to another server or run a command.
TEST(restore_errors, only_pg_dumps_own_connect_lines_name_a_database) {
  using pgdrill::detail::bare_connect_target;
  const std::vector<std::pair<std::string, std::string>> bare{
      {"\\connect app", "app"},
      {"\\connect \"App\"", "App"},
      {"\\c db.1_x ", "db.1_x"},
      {"\\connect -reuse-previous=on \"dbname='my db'\"", "my db"},
      {"\\connect -reuse-previous=on \"dbname='it\\'s \\\\ back'\"", "it's \\ back"},
      {"\\connect -reuse-previous=on \"dbname='say \"\"hi\"\"'\"", "say \"hi\""},
      {"\\connect -reuse-previous=on \"dbname=caf\xC3\xA9\"", "caf\xC3\xA9"}};
  for (const auto& [line, database] : bare) {
    auto target = bare_connect_target(line);
    ASSERT_TRUE(target) << line;
    EXPECT_EQ(*target, database) << line;
  }
  for (const char* refused : {"\\connect db user", "\\connect db user /tmp 5432", "\\c \"dbname=x host=/tmp\"",
                              "\\c db \\! touch /tmp/x", "\\c db \\o /tmp/x", "\\connect `id`", "\\connect :db",
                              "\\connect -reuse-previous=on \"dbname='x' host=evil\"", "\\connect -reuse-previous=on \"host=evil dbname=x\"",
                              "\\connect -reuse-previous=on \"dbname='`id`'\"", "\\connect postgresql://evil/db", "\\connect -",
                              "\\connect"})
    EXPECT_FALSE(bare_connect_target(refused)) << refused;
}
