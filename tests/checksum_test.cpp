// The table checksum's promises, on real servers: order-independent, sensitive to every change,
// independent of session settings, stable through dump and restore for every common type.
#include "support.hpp"

using namespace pgdrill;
using testkit::psql;

namespace {

std::string digest(const server& target, const std::string& table, const std::string& database = "postgres") {
  return checksum_connection(target.admin().with_database(database)).checksum(table).digest;
}

// Two tables with the same columns, filled by `fill` (SQL with %s for the table name).
void make_pair(const server& target, const std::string& columns, const std::string& fill_a, const std::string& fill_b) {
  psql(target, "CREATE TABLE a (" + columns + "); CREATE TABLE b (" + columns + ");" + fill_a + ";" + fill_b);
}

}  // namespace

TEST(checksum, same_rows_in_another_physical_order_give_the_same_checksum) {
  auto server = testkit::start_server();
  make_pair(*server, "id int, label text",
            "INSERT INTO a SELECT i, 'row ' || i FROM generate_series(1, 5000) i",
            "INSERT INTO b SELECT i, 'row ' || i FROM generate_series(5000, 1, -1) i");
  EXPECT_EQ(digest(*server, "a"), digest(*server, "b"));
  // Rewriting the heap in another order keeps it too.
  auto before = digest(*server, "a");
  psql(*server, "CREATE INDEX a_label ON a (label); CLUSTER a USING a_label");
  EXPECT_EQ(digest(*server, "a"), before);
}

TEST(checksum, every_kind_of_change_changes_it) {
  auto server = testkit::start_server();
  psql(*server, "CREATE TABLE t (id int, label text); INSERT INTO t SELECT i, 'row ' || i FROM generate_series(1, 1000) i;"
                "INSERT INTO t VALUES (0, NULL)");
  auto original = checksum_connection(server->admin()).checksum("t");
  EXPECT_EQ(original.rows, 1001);
  EXPECT_EQ(original.digest.size(), 32U);
  auto changed = [&](const std::string& change, const std::string& undo) {
    psql(*server, change);
    auto after = digest(*server, "t");
    psql(*server, undo);
    EXPECT_EQ(digest(*server, "t"), original.digest) << "undo of: " << change;
    return after;
  };
  EXPECT_NE(changed("UPDATE t SET label = 'row 500!' WHERE id = 500", "UPDATE t SET label = 'row 500' WHERE id = 500"),
            original.digest);
  EXPECT_NE(changed("UPDATE t SET label = '' WHERE id = 0", "UPDATE t SET label = NULL WHERE id = 0"), original.digest)
      << "NULL and empty string differ";
  EXPECT_NE(changed("DELETE FROM t WHERE id = 7", "INSERT INTO t VALUES (7, 'row 7')"), original.digest);
  EXPECT_NE(changed("INSERT INTO t VALUES (7, 'row 7')", "DELETE FROM t WHERE ctid = (SELECT max(ctid) FROM t WHERE id = 7)"),
            original.digest)
      << "a duplicated row counts";
}

TEST(checksum, server_and_session_defaults_do_not_change_it) {
  auto server = testkit::start_server();
  psql(*server, R"(CREATE TABLE t (f float8, r real, ts timestamptz, d date, iv interval, b bytea);
    INSERT INTO t VALUES (0.1, 1.1, '2026-03-01 12:34:56.789+02', '2026-03-01', '1 day 02:03:04', '\x00ff10');
    INSERT INTO t VALUES (1e-300, 3.4e38, 'infinity', '1999-12-31', '-3 mons', '\x');)");
  auto pinned = digest(*server, "t");
  psql(*server, "ALTER DATABASE postgres SET timezone = 'Asia/Tokyo'; ALTER DATABASE postgres SET datestyle = 'SQL, DMY';"
                "ALTER DATABASE postgres SET extra_float_digits = 0; ALTER DATABASE postgres SET intervalstyle = 'sql_standard';"
                "ALTER DATABASE postgres SET bytea_output = 'escape'");
  EXPECT_EQ(psql(*server, "SHOW timezone"), "Asia/Tokyo\n") << "the defaults really changed";
  EXPECT_EQ(digest(*server, "t"), pinned);
}

TEST(checksum, column_subset_and_missing_table) {
  auto server = testkit::start_server();
  psql(*server, "CREATE TABLE t (id int, secret text); INSERT INTO t VALUES (1, 'x'), (2, 'y')");
  checksum_connection connection(server->admin());
  auto ids = connection.checksum("t", {"id"});
  EXPECT_EQ(ids.columns, std::vector<std::string>{"id"});
  psql(*server, "UPDATE t SET secret = 'changed'");
  EXPECT_EQ(checksum_connection(server->admin()).checksum("t", {"id"}).digest, ids.digest) << "only id is covered";
  EXPECT_THROW(checksum_connection(server->admin()).checksum("no_such_table"), could_not_verify);
}

TEST(checksum, every_common_type_round_trips_through_dump_and_restore) {
  auto source = testkit::start_server();
  psql(*source, R"(CREATE TABLE types (
      id int PRIMARY KEY, f8 float8, f4 real, n numeric, ts timestamptz, t timestamp, iv interval, b bytea,
      j json, jb jsonb, arr int[], tarr text[], txt text, u uuid, bool boolean, inet_col inet);
    INSERT INTO types VALUES
      (1, 0.1, 0.3, 123456789.000000001, '2026-01-01 00:00:00.123456+05:30', '2026-01-01 23:59:59', '1 year 2 mons 3 days 04:05:06.7',
       '\x00ff5c0a09', '{"a": [1, 2.50, "x"]}', '{"b": {"c": null}, "a": 1}', '{1,NULL,3}', '{"a b","c\"d",NULL}',
       E'tab\there\nnewline\\backslash and ''quote''', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', true, '192.168.0.1/24'),
      (2, 'NaN', '-Infinity', 'NaN', '-infinity', '0001-01-01 00:00:00', '-1 day', '\x', '[]', '[]', '{}', '{}', '', NULL, false, NULL),
      (3, 1e308, 1e-38, -0.0000000001, '2038-01-19 03:14:08+00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '::1');)");
  scratch_dir dir;
  auto expected = checksum_connection(source->admin()).checksum("types");
  EXPECT_EQ(expected.rows, 3);
  for (const char* format : {"-Fc", "-Fp"}) {
    auto file = dir.path() / (std::string("types") + format);
    testkit::pg_dump(*source, {format, "-f", file.string()});
    auto target = testkit::start_server();
    psql(*target, "CREATE DATABASE restored");
    const auto& tools = target->binaries();
    auto scratch = scratch_for_tools(tools);
    restore_spec spec;
    auto restored = restore_backup(inspect_file(file), target->admin().with_database("restored"), tools, spec, scratch.path());
    ASSERT_TRUE(restored.ok) << restored.summary() << restored.stderr_tail;
    EXPECT_EQ(digest(*target, "types", "restored"), expected.digest) << format;
  }
}

namespace {

// A process's nice value, from /proc (field 19 of its stat line).
int nice_of(pid_t pid) {
  auto stat = testkit::read_file("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string field;
  for (int index = 3; index <= 19 && fields >> field; ++index) {
  }
  return std::stoi(field);
}

}  // namespace

// A checksum taken during a restore on this host yields the CPU to the restore: its server process
// runs at the lowest priority (seen while it waits on a lock), and the sum is the table's. A table
// that is not an ordinary one of its own (a partition) or not planned is left to after the restore.
TEST(checksums_during_restore, its_server_process_yields_the_cpu_and_partitions_wait) {
  auto server = testkit::start_server();
  psql(*server, "CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g;"
                "CREATE TABLE p (k int) PARTITION BY RANGE (k); CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10);"
                "INSERT INTO p VALUES (1); CREATE TABLE unplanned (x int)");
  pqxx::connection locker(server->admin().conninfo());
  pqxx::work lock(locker);
  lock.exec("LOCK TABLE public.t IN ACCESS EXCLUSIVE MODE");
  auto host_pid = [&](pid_t inner) { return server->host_pid_of(inner); };
  checksums_during_restore checksums(server->admin(), {{"checksum public.t", "public.t", {}}, {"checksum public.p1", "public.p1", {}}},
                                     host_pid);
  checksums.loaded("public", "p1");
  checksums.loaded("public", "unplanned");
  checksums.loaded("public", "t");
  pqxx::connection watcher(server->admin().conninfo());
  pid_t backend = 0;
  for (int attempt = 0; attempt < 400 && backend == 0; ++attempt) {
    auto waiting = pqxx::nontransaction(watcher).exec("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'");
    if (!waiting.empty()) backend = waiting[0][0].as<int>();
    else std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_NE(backend, 0) << "the checksum never waited on the lock";
  ASSERT_GT(host_pid(backend), 0) << "the backend is found among the server's processes";
  EXPECT_EQ(nice_of(host_pid(backend)), 19);
  lock.commit();
  auto taken = checksums.finish();
  ASSERT_EQ(taken.size(), 1U) << "the partition is left to after the restore";
  EXPECT_EQ(taken.at("checksum public.t").sum.rows, 1000);
  EXPECT_EQ(taken.at("checksum public.t").sum.digest, digest(*server, "public.t"));
}
