// Hostile backups, one per class: SQL that reaches for the host (programs, files, large objects,
// dblink, a neighbouring cluster over its socket), server-wide changes on a shared server, a
// crafted definition in a custom archive, a directory archive with a symlinked member and a tar
// archive with climbing names. Each is drilled with the local provider (its sandbox) and the
// existing provider (its own role); afterwards nothing outside the drill's scratch directory or
// scratch database has changed, and no such drill passes.
#include "support.hpp"

using namespace pgdrill;
using testkit::psql;
using testkit::write_file;

namespace {

class hostile : public ::testing::Test {
 protected:
  void SetUp() override {
    neighbour_ = testkit::start_shared_server();  // the host's own cluster: unsandboxed, as the postgres account
    psql(*neighbour_, "CREATE TABLE bystander AS SELECT g AS id FROM generate_series(1, 100) g");
    local_options prepared;
    prepared.settings = {{"max_prepared_transactions", "4"}};
    shared_ = testkit::start_shared_server(prepared);
    psql(*shared_, "CREATE DATABASE bystander_db");
    psql(*shared_, "CREATE ROLE bystander_role LOGIN");
    psql(*shared_, "CREATE TABLE bystander AS SELECT g AS id FROM generate_series(1, 100) g", "bystander_db");
    before_ = world();
  }

  // What a hostile backup must not change, as text: the neighbour's rows, data directory and
  // settings; the shared server's databases, roles, their settings, its bystander rows, its
  // postgresql.auto.conf and prepared transactions; the files the backup's SQL aims at.
  std::string world() const {
    std::string files;
    for (const auto& entry : std::filesystem::directory_iterator(neighbour_->directory() / "data"))
      files += entry.path().filename().string() + " ";
    for (const auto& aim : {canary(), neighbour_->directory() / "data" / "pwned"})
      files += std::filesystem::exists(aim) ? aim.string() + " exists " : "";
    auto shared_data = shared_->directory() / "data";
    return psql(*neighbour_, "SELECT count(*) FROM bystander") + files + "\n" +
           testkit::read_file(neighbour_->directory() / "data" / "postgresql.auto.conf") +
           psql(*shared_, "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname NOT LIKE 'pgdrill%'") +
           psql(*shared_, "SELECT string_agg(rolname || rolsuper::text, ',' ORDER BY rolname) FROM pg_roles WHERE rolname NOT LIKE 'pgdrill%'") +
           psql(*shared_, "SELECT count(*) FROM pg_db_role_setting") + psql(*shared_, "SELECT count(*) FROM pg_prepared_xacts") +
           psql(*shared_, "SELECT count(*) FROM bystander", "bystander_db") + testkit::read_file(shared_data / "postgresql.auto.conf");
  }

  std::filesystem::path canary() const { return dir_.path() / "CANARY"; }

  // The SQL of a backup that reaches for everything outside its box.
  std::string reaching_sql() const {
    const auto neighbour_dir = neighbour_->directory().string(), neighbour_data = (neighbour_->directory() / "data").string();
    const std::string neighbour = "host=" + neighbour_dir + " user=postgres dbname=postgres";
    return "COPY (SELECT 1) TO PROGRAM " + detail::quote_literal("psql '" + neighbour + "' -c 'DELETE FROM bystander'") + ";\n" +
           "COPY (SELECT 'x') TO " + detail::quote_literal(neighbour_data + "/pwned") + ";\n" +
           "COPY (SELECT 'x') TO " + detail::quote_literal(canary().string()) + ";\n" +
           "SELECT lo_export(lo_from_bytea(0, 'x'), " + detail::quote_literal(canary().string()) + ");\n" +
           "CREATE TABLE stolen (line text);\nCOPY stolen FROM " + detail::quote_literal(neighbour_data + "/postgresql.auto.conf") + ";\n" +
           "CREATE EXTENSION IF NOT EXISTS dblink;\nSELECT dblink_exec(" + detail::quote_literal(neighbour) +
           ", 'DELETE FROM bystander');\n"
           "ALTER SYSTEM SET work_mem = '1MB';\nCREATE ROLE evil SUPERUSER LOGIN;\nALTER ROLE bystander_role SET work_mem = '1MB';\n"
           "ALTER DATABASE bystander_db SET work_mem = '1MB';\nCREATE DATABASE evil_db;\n"
           "BEGIN;\nINSERT INTO kept VALUES (2);\nPREPARE TRANSACTION 'left_by_the_backup';\n";
  }

  // The drill of `backup` with `provider`: it must not pass, and the world must be as before.
  void drill_and_check(const std::filesystem::path& backup, const std::string& provider) {
    drill_options options;
    options.provider = provider;
    options.existing = shared_->admin();
    auto result = run_drill(testkit::not_empty_plan("hostile", backup), options);
    EXPECT_NE(result.verdict(), exit_code::passed) << provider << " " << backup << "\n" << testkit::drill_report(result);
    EXPECT_EQ(world(), before_) << provider << " " << backup << "\n" << testkit::drill_report(result);
    EXPECT_EQ(psql(*shared_, "SELECT count(*) FROM pg_database WHERE datname LIKE 'pgdrill%'"), "0\n");
  }

  scratch_dir dir_;
  std::unique_ptr<local_server> neighbour_, shared_;
  std::string before_;
};

}  // namespace

TEST_F(hostile, a_plain_script_reaches_nothing_outside_its_box) {
  auto script = dir_.path() / "hostile.sql";
  write_file(script, "CREATE TABLE kept (id int);\nINSERT INTO kept VALUES (1);\n" + reaching_sql());
  for (const char* provider : {"local", "existing"}) drill_and_check(script, provider);
}

// The control: the same script on a local server without its sandbox (by request only) does reach
// the neighbour and the host, so the checks above can see an escape.
TEST_F(hostile, without_the_sandbox_the_same_script_would_reach_the_neighbour) {
  if (::geteuid() != 0) GTEST_SKIP() << "unsandboxed, the server is the runner's user, who owns the neighbour anyway";
  auto script = dir_.path() / "hostile.sql";
  write_file(script, "CREATE TABLE kept (id int);\nINSERT INTO kept VALUES (1);\n" + reaching_sql());
  drill_options options;
  options.local.unsafe_no_sandbox = true;
  auto result = run_drill(testkit::not_empty_plan("control", script), options);
  EXPECT_EQ(psql(*neighbour_, "SELECT count(*) FROM bystander"), "0\n") << testkit::drill_report(result);
  EXPECT_TRUE(std::filesystem::exists(neighbour_->directory() / "data" / "pwned"));
}

// A function in an index expression runs as whoever restores: in the drill's database it reaches
// for the host (it stays quiet in its source, where it is built).
TEST_F(hostile, a_custom_archives_crafted_definition_reaches_nothing_outside_its_box) {
  auto source = testkit::start_server();
  const auto neighbour = "host=" + neighbour_->directory().string() + " user=postgres dbname=postgres";
  psql(*source, "CREATE TABLE kept (id int); INSERT INTO kept SELECT generate_series(1, 10);"
                "CREATE FUNCTION harmless(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $fn$ BEGIN "
                "IF current_database() LIKE 'pgdrill%' THEN "
                "COPY (SELECT 1) TO PROGRAM " + detail::quote_literal("psql '" + neighbour + "' -c 'DELETE FROM bystander'") + "; "
                "COPY (SELECT 'x') TO " + detail::quote_literal((neighbour_->directory() / "data" / "pwned").string()) + "; "
                "PERFORM lo_export(lo_from_bytea(0, 'x'), " + detail::quote_literal(canary().string()) + "); "
                "END IF; RETURN $1; END $fn$;"
                "CREATE INDEX kept_harmless ON kept (harmless(id));");
  auto archive = dir_.path() / "crafted.dump";
  testkit::pg_dump(*source, {"-Fc", "-f", archive.string()});
  for (const char* provider : {"local", "existing"}) drill_and_check(archive, provider);
}

// pg_dump writes only regular files into a directory archive: a member that is a symlink (here
// to the neighbour's configuration) is refused, naming it, before any tool opens it.
TEST_F(hostile, a_directory_archives_symlinked_member_is_refused) {
  auto source = testkit::start_server();
  psql(*source, "CREATE TABLE kept AS SELECT generate_series(1, 10) AS id");
  auto archive = dir_.path() / "linked.dir";
  testkit::pg_dump(*source, {"-Fd", "-Z", "0", "-f", archive.string()});
  std::filesystem::path member;
  for (const auto& entry : std::filesystem::directory_iterator(archive))
    if (entry.path().extension() == ".dat" && entry.path().filename() != "toc.dat") member = entry.path();
  ASSERT_FALSE(member.empty());
  std::filesystem::remove(member);
  std::filesystem::create_symlink(neighbour_->directory() / "data" / "postgresql.auto.conf", member);
  for (const char* provider : {"local", "existing"}) drill_and_check(archive, provider);
  auto verified = testkit::run_cli({"verify", archive.string(), "--min-size", "0"});
  EXPECT_EQ(verified.exit_code, 1) << verified.output;
  EXPECT_NE(verified.output.find(member.filename().string() + ", which is a symlink"), std::string::npos) << verified.output;
}

// A tar archive with a member whose name climbs out ('../../x') or that is a link: refused,
// naming it.
TEST_F(hostile, a_tar_archives_climbing_or_linked_member_is_refused) {
  auto source = testkit::start_server();
  psql(*source, "CREATE TABLE kept AS SELECT generate_series(1, 10) AS id");
  for (const char* kind : {"climbing", "link"}) {
    auto archive = dir_.path() / (std::string(kind) + ".tar");
    testkit::pg_dump(*source, {"-Ft", "-f", archive.string()});
    const std::string add = std::string(kind) == "climbing"
                                ? "i = tarfile.TarInfo('../../evil.sql'); data = b'DROP TABLE x;'; i.size = len(data)"
                                : "i = tarfile.TarInfo('3000.dat'); i.type = tarfile.SYMTYPE; i.linkname = '/etc/shadow'; data = b''";
    auto appended = testkit::run_captured(command("/usr/bin/python3", {"-c", "import io, sys, tarfile\nt = tarfile.open(sys.argv[1], 'a')\n" +
                                                                            add + "\nt.addfile(i, io.BytesIO(data))\nt.close()",
                                                                        archive.string()}));
    ASSERT_EQ(appended.exit_code, 0) << appended.output;
    for (const char* provider : {"local", "existing"}) drill_and_check(archive, provider);
    auto verified = testkit::run_cli({"verify", archive.string(), "--min-size", "0"});
    EXPECT_EQ(verified.exit_code, 1) << verified.output;
    EXPECT_NE(verified.output.find(std::string(kind) == "climbing" ? "'../../evil.sql'" : "'3000.dat'"), std::string::npos)
        << verified.output;
  }
}
