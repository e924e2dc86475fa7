// pgdrill's benchmarks: dump and restore throughput, provisioning latency, verification speed,
// the physical floor of a restore, and the drill's own overhead. Google Benchmark, manual time:
// each iteration times only the operation, not the server it needs.
//
// PGDRILL_BENCH_SCALE multiplies the generated data (default 5: 160,000 rows, minutes on 2 cores);
// PGDRILL_BENCH_SMOKE=1 runs every benchmark once at scale 1 (the test suite's smoke test).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <cstdlib>
#include <map>
#include <thread>

#include <pgdrill/pgdrill.hpp>

namespace {

using namespace pgdrill;
using clock_type = std::chrono::steady_clock;

bool smoke() { return std::getenv("PGDRILL_BENCH_SMOKE") != nullptr; }
int scale() {
  if (smoke()) return 1;
  const char* value = std::getenv("PGDRILL_BENCH_SCALE");
  return value ? std::max(1, std::atoi(value)) : 5;
}
int cores() { return static_cast<int>(std::max(1U, std::thread::hardware_concurrency())); }

double seconds_since(clock_type::time_point start) { return std::chrono::duration<double>(clock_type::now() - start).count(); }

// Server settings PostgreSQL ships with, to compare the restore-tuned ones against.
setting_list default_settings() {
  return {{"fsync", "on"},           {"synchronous_commit", "on"},        {"full_page_writes", "on"},
          {"wal_level", "replica"},  {"max_wal_senders", "10"},           {"max_wal_size", "1GB"},
          {"checkpoint_timeout", "5min"}, {"maintenance_work_mem", "64MB"}, {"max_parallel_maintenance_workers", "2"},
          {"shared_buffers", "128MB"}, {"autovacuum", "on"}};
}

void check(const run_result& result, const std::string& what) {
  if (!result.ok()) throw std::runtime_error(what + " " + result.describe() + ": " + result.err_tail);
}

// The generated source database and its dumps, made once per process on first use.
struct source_fixture {
  std::unique_ptr<local_server> server;
  scratch_dir dir;
  pg_binaries tools = find_binaries(binary_search::from_environment());
  std::vector<std::string> tables{"public.accounts", "public.orders", "public.events"};
  long long rows = 0;
  std::int64_t table_bytes = 0;  // heap and TOAST, without indexes: what a dump carries
  std::map<std::string, std::filesystem::path> dumps;

  source_fixture() : server(local_server::start()) {
    command generate(tools.tool("psql"), {"-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "scale=" + std::to_string(scale()), "-f",
                                          std::string(PGDRILL_SOURCE_DIR) + "/bench/generator.sql"});
    generate.with_env(server->admin().libpq_env());
    check(run(generate), "generating data");
    pqxx::connection connection(server->admin().conninfo());
    pqxx::nontransaction tx(connection);
    for (const auto& table : tables) {
      rows += tx.exec("SELECT count(*) FROM " + table)[0][0].as<long long>();
      table_bytes += tx.exec("SELECT pg_table_size('" + table + "')")[0][0].as<std::int64_t>();
    }
  }

  /// A dump made once per format name, e.g. "custom", "plain", "directory".
  const std::filesystem::path& dump(const std::string& format) {
    auto found = dumps.find(format);
    if (found != dumps.end()) return found->second;
    auto file = dir.path() / ("source." + format);
    command dump(tools.tool("pg_dump"), {"-F", format.substr(0, 1), "-f", file.string()});
    if (format == "directory") dump.args.insert(dump.args.end(), {"-j", "2"});
    dump.with_env(server->admin().libpq_env());
    check(run(dump), "pg_dump");
    return dumps[format] = file;
  }
};

source_fixture& source() {
  static source_fixture fixture;
  return fixture;
}

void throughput(benchmark::State& state) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * source().table_bytes);
  state.counters["rows_per_second"] =
      benchmark::Counter(static_cast<double>(source().rows), benchmark::Counter::kIsIterationInvariantRate);
}

// --- dump ------------------------------------------------------------------------------------

void dump_benchmark(benchmark::State& state, std::vector<std::string> args, std::string pipe_to) {
  auto& data = source();
  for (auto _ : state) {
    scratch_dir out;
    auto file = out.path() / "dump";
    command cmd(data.tools.tool("pg_dump"), args);
    if (pipe_to.empty()) cmd.args.insert(cmd.args.end(), {"-f", file.string()});
    else cmd = command("/bin/sh", {"-c", data.tools.tool("pg_dump").string() + " | " + pipe_to + " > " + file.string()});
    cmd.with_env(data.server->admin().libpq_env());
    auto start = clock_type::now();
    check(run(cmd), "pg_dump");
    state.SetIterationTime(seconds_since(start));
    state.counters["output_bytes"] = static_cast<double>(inspect_file(file).size);
  }
  throughput(state);
}

// --- restore ---------------------------------------------------------------------------------

void restore_benchmark(benchmark::State& state, std::string format, int jobs, bool single_transaction, bool tuned) {
  auto& data = source();
  auto backup = inspect_file(data.dump(format));
  for (auto _ : state) {
    local_options options;
    if (!tuned) options.settings = default_settings();
    auto server = local_server::start(options);
    auto scratch = scratch_for_tools(server->binaries());
    restore_spec spec;
    spec.jobs = jobs;
    spec.single_transaction = single_transaction;
    auto target = server->restore_target({});
    auto start = clock_type::now();
    auto restored = restore_backup(backup, target, server->binaries(), spec, scratch.path());
    state.SetIterationTime(seconds_since(start));
    if (!restored.ok) throw std::runtime_error("restore failed: " + restored.summary());
  }
  throughput(state);
}

// --- provisioning ----------------------------------------------------------------------------

// From initdb, from the cache with a spare copy of it made ahead (the spare the last server made
// while it ran), or from the cache copied at the start (every spare removed first); in its sandbox
// or, by request only, without (`sandboxed` false: what the sandbox costs).
void provision_local(benchmark::State& state, bool cached, bool spare, bool sandboxed) {
  scratch_dir cache, root;
  local_options options;
  options.cache_dir = cache.path() / "cache";
  options.temp_root = root.path();
  options.unsafe_no_sandbox = !sandboxed;
  if (auto account = local_server_account(options)) root.give_to(*account);  // as /tmp, it must reach its scratch directories
  options.use_cache = cached;
  if (cached) local_server::start(options);  // fill the cache outside the timing
  for (auto _ : state) {
    if (!spare)
      for (const auto& entry : std::filesystem::directory_iterator(root.path()))
        if (entry.path().filename().string().rfind(".pgdrill-spare-", 0) == 0) std::filesystem::remove_all(entry.path());
    auto start = clock_type::now();
    auto server = local_server::start(options);  // returns when a real connection succeeded
    state.SetIterationTime(seconds_since(start));
    if (cached && server->started_from_spare() != spare) throw std::runtime_error("the start did not take the path measured");
  }
}

void provision_container(benchmark::State& state) {
  container_options options;
  for (auto _ : state) {
    auto start = clock_type::now();
    auto server = container_server::start(options);
    state.SetIterationTime(seconds_since(start));
  }
}

// --- per-test databases ----------------------------------------------------------------------

// A server holding `template_db`: a table of `rows` rows with an index (700,000 rows: a 71 MB
// database, as a test suite's restored backup might be; 70,000: 14 MB; 30,000 in smoke runs).
std::unique_ptr<local_server> server_with_template(int rows) {
  auto server = local_server::start();
  pqxx::connection connection(server->admin().conninfo());
  pqxx::nontransaction(connection).exec("CREATE DATABASE template_db");
  pqxx::connection filling(server->admin().with_database("template_db").conninfo());
  pqxx::nontransaction(filling).exec("CREATE TABLE items AS SELECT i AS id, md5(i::text) AS label FROM generate_series(1, " +
                                     std::to_string(smoke() ? 30000 : rows) + ") AS i; ALTER TABLE items ADD PRIMARY KEY (id)");
  return server;
}

// From asking for a database to a connection to it: with copies made ahead (`ready` > 0, waiting
// untimed until the pool is full again, as between two tests), or made on request (`ready` 0).
// The template's files are in the page cache, as after a restore.
void clone_benchmark(benchmark::State& state, std::size_t ready, clone_strategy strategy, int rows) {
  auto server = server_with_template(rows);
  clone_pool pool(*server, "template_db", clone_options{ready, strategy});
  std::vector<database_clone> kept;  // dropped after the loop: a drop would delay the next copy
  for (auto _ : state) {
    while (pool.ready() < ready) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    auto start = clock_type::now();
    kept.push_back(pool.acquire());
    pqxx::connection connection(kept.back().target().conninfo());
    state.SetIterationTime(seconds_since(start));
  }
  pqxx::connection connection(server->admin().conninfo());
  state.counters["template_mb"] =
      pqxx::nontransaction(connection).exec("SELECT pg_database_size('template_db') / 1e6")[0][0].as<double>();
}

// --- verification ----------------------------------------------------------------------------

// Reads every table as pgdrill's checksum does (one connection, pinned session) but only counts
// bytes: the floor any content verification pays.
void raw_copy_out(const endpoint& target, const std::vector<std::string>& tables) {
  checksum_connection connection(target);
  PGconn* raw = PQconnectdb(target.conninfo().c_str());
  for (const auto& table : tables) {
    auto columns = connection.columns_of(table);
    std::string list;
    for (const auto& column : columns) list += (list.empty() ? "" : ", ") + detail::quote_ident(column);
    PQclear(PQexec(raw, ("COPY " + detail::quoted_table(table) + " (" + list + ") TO STDOUT").c_str()));
    char* line = nullptr;
    std::size_t bytes = 0;
    for (int size; (size = PQgetCopyData(raw, &line, 0)) > 0; PQfreemem(line)) bytes += static_cast<std::size_t>(size);
    benchmark::DoNotOptimize(bytes);
    while (PGresult* rest = PQgetResult(raw)) PQclear(rest);
  }
  PQfinish(raw);
}

void verify_benchmark(benchmark::State& state, std::string method) {
  auto& data = source();
  const auto& target = data.server->admin();
  for (auto _ : state) {
    auto start = clock_type::now();
    if (method == "pgdrill_checksum") {
      auto batch = checksum_tables(target, data.tables, {}, 1);
      benchmark::DoNotOptimize(batch);
    } else if (method == "pgdrill_checksum_parallel") {
      benchmark::DoNotOptimize(checksum_tables(target, data.tables, {}, cores()));
    } else if (method == "raw_copy_out") {
      raw_copy_out(target, data.tables);
    } else {
      pqxx::connection connection(target.conninfo());
      pqxx::nontransaction tx(connection);
      for (const auto& table : data.tables)
        benchmark::DoNotOptimize(tx.exec(method == "count"
                                             ? "SELECT count(*) FROM " + table
                                             // data-diff's style: sum of integers cut from each row's md5
                                             : "SELECT sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint) FROM " + table + " t"));
    }
    state.SetIterationTime(seconds_since(start));
  }
  throughput(state);
}

// A whole archive read without a server: `pgdrill verify`'s full read (its table of contents and
// every data block, read_every_block) against reading its bytes (cat) and against pg_restore
// writing every block to /dev/null, on the same custom archive.
void archive_read_benchmark(benchmark::State& state, std::string method) {
  auto& data = source();
  auto backup = inspect_file(data.dump("custom"));
  for (auto _ : state) {
    auto start = clock_type::now();
    if (method == "cat") {
      check(run(command("/bin/sh", {"-c", "cat \"$0\" > /dev/null", backup.path.string()})), "cat");
    } else if (method == "pg_restore_to_dev_null") {
      check(run(command(data.tools.tool("pg_restore"), {"--file", "/dev/null", backup.path.string()})), "pg_restore");
    } else {
      benchmark::DoNotOptimize(read_contents(backup, data.tools));
      read_every_block(backup, data.tools);
    }
    state.SetIterationTime(seconds_since(start));
  }
  state.counters["archive_bytes"] = static_cast<double>(backup.size);
}

// --- the physical floor ----------------------------------------------------------------------

// A table's rows in COPY's text format, written into `file` by this process: each server's sandbox
// sees no place of the other's. Readable by any account (the target server's reads it).
void copy_rows_into_file(const endpoint& source, const std::string& table, const std::filesystem::path& file) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> connection(PQconnectdb(source.conninfo().c_str()), PQfinish);
  std::unique_ptr<PGresult, decltype(&PQclear)> started(PQexec(connection.get(), ("COPY " + table + " TO STDOUT").c_str()), PQclear);
  if (PQresultStatus(started.get()) != PGRES_COPY_OUT) throw std::runtime_error("COPY " + table + ": " + PQerrorMessage(connection.get()));
  std::ofstream out(file, std::ios::binary);
  char* row = nullptr;
  for (int size; (size = PQgetCopyData(connection.get(), &row, 0)) > 0; PQfreemem(row)) out.write(row, size);
  std::unique_ptr<PGresult, decltype(&PQclear)> ended(PQgetResult(connection.get()), PQclear);
  if (PQresultStatus(ended.get()) != PGRES_COMMAND_OK || !out.flush()) throw std::runtime_error("COPY " + table + " did not finish");
  std::filesystem::permissions(file, std::filesystem::perms(0644));
}

// Server-side COPY FROM of each table, then its indexes and foreign keys, each built serially
// (no parallel maintenance workers) on a tuned throwaway server. The restore's lower bound on this
// machine spreads the serial work over the cores once: max(max_i(copy_i + (index_i + fk_i) / cores),
// (sum copy + sum index + sum fk) / cores), since a table's indexes and keys can build side by side
// only after its data is in.
void floor_benchmark(benchmark::State& state) {
  auto& data = source();
  auto backup = inspect_file(data.dump("custom"));
  // The indexes and foreign keys to build, from the source (pg_restore --section=pre-data makes none).
  pqxx::connection source_connection(data.server->admin().conninfo());
  auto indexes = pqxx::nontransaction(source_connection)
                     .exec("SELECT n.nspname || '.' || t.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                           "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
                           "WHERE n.nspname = 'public'");
  auto keys = pqxx::nontransaction(source_connection)
                  .exec("SELECT n.nspname || '.' || t.relname, 'ALTER TABLE ' || c.conrelid::regclass || ' ADD CONSTRAINT ' || "
                        "quote_ident(c.conname) || ' ' || pg_get_constraintdef(c.oid) FROM pg_constraint c "
                        "JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
                        "WHERE c.contype = 'f' AND n.nspname = 'public'");
  for (auto _ : state) {
    auto server = local_server::start();
    auto target = server->restore_target({});
    for (const auto& table : data.tables)  // table data as files the server itself can read
      copy_rows_into_file(data.server->admin(), table, server->directory() / (table + ".copy"));
    command schema(server->binaries().tool("pg_restore"), {"--section=pre-data", "-d", target.dbname, backup.path.string()});
    schema.with_env(target.libpq_env());
    check(run(schema), "pg_restore --section=pre-data");
    pqxx::connection connection(target.conninfo());
    pqxx::nontransaction(connection).exec("SET max_parallel_maintenance_workers = 0");
    std::map<std::string, double> copy, post;  // per table: its data, its indexes and foreign keys
    auto timed = [&](const std::string& sql) {
      auto one = clock_type::now();
      pqxx::nontransaction(connection).exec(sql);
      return seconds_since(one);
    };
    auto start = clock_type::now();
    for (const auto& table : data.tables)
      copy[table] = timed("COPY " + table + " FROM " + connection.quote((server->directory() / (table + ".copy")).string()));
    for (const auto* built : {&indexes, &keys})
      for (const auto& row : *built) post[row[0].c_str()] += timed(row[1].c_str());
    state.SetIterationTime(seconds_since(start));
    double longest = 0, total_copy = 0, total_post = 0;
    for (const auto& table : data.tables) {
      longest = std::max(longest, copy[table] + post[table] / cores());
      total_copy += copy[table];
      total_post += post[table];
    }
    state.counters["copy_seconds"] = total_copy;
    state.counters["index_and_key_seconds"] = total_post;
    state.counters["floor_seconds"] = std::max(longest, (total_copy + total_post) / cores());
  }
  throughput(state);
}

// --- the drill's own overhead ----------------------------------------------------------------

// A whole drill (locate, hash, inspect, provision, restore, manifest checks, teardown) of the
// custom dump, with row counts only, with every table's checksum too, or with the thorough
// integrity preset (amcheck, NOT VALID constraints, a read of every row); the overhead counter is
// everything but the restore (restore/pg_restore_j2/tuned is the bare restore), checks_seconds
// what the checks besides the row counts took, and checks_per_restore that against the restore.
// `during_restore` false takes every checksum after the restore, as pgdrill did before
// checksums_during_restore.hpp; `sandboxed` false runs the server and its tools without their
// sandbox (what it costs).
void drill_benchmark(benchmark::State& state, std::string extra_checks, bool during_restore, bool sandboxed) {
  auto& data = source();
  scratch_dir out;
  dump_options options;
  options.out_dir = out.path();
  options.name = "bench";
  auto dumped = dump_with_manifest(data.server->admin(), options);
  scenario plan;
  plan.name = "bench";
  plan.backup.file = dumped.backup;
  plan.restore.jobs = 2;
  row_count_assertion counts;
  counts.from_manifest = true;
  checksum_assertion sums;
  sums.from_manifest = true;
  plan.assertions = {counts};
  if (extra_checks == "checksums") plan.assertions.push_back(sums);
  if (extra_checks == "thorough") plan.assertions.push_back(thorough_assertion{});
  drill_options drill;
  drill.checksums_during_restore = during_restore;
  drill.local.unsafe_no_sandbox = !sandboxed;
  for (auto _ : state) {
    auto start = clock_type::now();
    auto result = run_drill(plan, drill);
    state.SetIterationTime(seconds_since(start));
    if (result.verdict() != exit_code::passed) throw std::runtime_error("the benchmark drill did not pass");
    double restore = result.restore.seconds.value_or(0);
    state.counters["restore_seconds"] = restore;
    state.counters["overhead_seconds"] = result.seconds - restore;
    double checks = 0;
    for (const auto& check : result.checks)
      if (check.kind != "row_count" && check.kind != "hygiene") checks += check.seconds;
    state.counters["checks_seconds"] = checks;
    state.counters["checks_per_restore"] = restore > 0 ? checks / restore : 0;
  }
  throughput(state);
}

template <class Function, class... Args>
void add(const std::string& name, Function function, Args... args) {
  auto* registered = benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) {
    try {
      function(state, args...);
    } catch (const std::exception& failure) {
      state.SkipWithError(failure.what());
    }
  });
  registered->UseManualTime()->Unit(benchmark::kMillisecond);
  if (smoke()) registered->Iterations(1);
  else registered->MinTime(2.0);
}

}  // namespace

int main(int argc, char** argv) {
  add("dump/plain", dump_benchmark, std::vector<std::string>{"-Fp"}, std::string());
  add("dump/custom_z0", dump_benchmark, std::vector<std::string>{"-Fc", "-Z", "0"}, std::string());
  add("dump/custom_gzip1", dump_benchmark, std::vector<std::string>{"-Fc", "-Z", "1"}, std::string());
  add("dump/custom_gzip6", dump_benchmark, std::vector<std::string>{"-Fc", "-Z", "6"}, std::string());
  add("dump/directory_j1", dump_benchmark, std::vector<std::string>{"-Fd", "-j", "1"}, std::string());
  add("dump/directory_j2", dump_benchmark, std::vector<std::string>{"-Fd", "-j", "2"}, std::string());
  add("dump/plain_zstd", dump_benchmark, std::vector<std::string>{}, std::string("zstd -q -c"));
  for (bool tuned : {true, false}) {
    std::string settings = tuned ? "/tuned" : "/default_settings";
    add("restore/psql" + settings, restore_benchmark, std::string("plain"), 1, false, tuned);
    add("restore/psql_single_transaction" + settings, restore_benchmark, std::string("plain"), 1, true, tuned);
    add("restore/pg_restore_j1" + settings, restore_benchmark, std::string("custom"), 1, false, tuned);
    add("restore/pg_restore_j2" + settings, restore_benchmark, std::string("custom"), 2, false, tuned);
  }
  add("provision/local_initdb", provision_local, false, false, true);
  add("provision/local_cached", provision_local, true, true, true);
  add("provision/local_cached_unsandboxed", provision_local, true, true, false);
  add("provision/local_cached_copied_at_start", provision_local, true, false, true);
  add("provision/clone_from_pool_700k_rows", clone_benchmark, std::size_t{2}, clone_strategy::automatic, 700000);
  for (int rows : {70000, 700000}) {
    std::string size = rows == 70000 ? "_70k_rows" : "_700k_rows";
    add("provision/clone_file_copy_on_request" + size, clone_benchmark, std::size_t{0}, clone_strategy::file_copy, rows);
    add("provision/clone_wal_log_on_request" + size, clone_benchmark, std::size_t{0}, clone_strategy::wal_log, rows);
  }
  try {
    container_engine::find();
    add("provision/container", provision_container);
  } catch (const could_not_verify&) {  // no engine here: nothing to measure, said in the output
    std::fprintf(stderr, "pgdrill-bench: no container engine, provision/container not registered\n");
  }
  for (const char* method : {"pgdrill_checksum", "pgdrill_checksum_parallel", "raw_copy_out", "md5_sum_in_sql", "count"})
    add(std::string("verify/") + method, verify_benchmark, std::string(method));
  for (const char* method : {"cat", "pg_restore_to_dev_null", "pgdrill_verify"})
    add(std::string("read/") + method, archive_read_benchmark, std::string(method));
  add("floor/copy_indexes_and_keys", floor_benchmark);
  add("drill/row_counts_custom_j2", drill_benchmark, std::string("row_counts"), true, true);
  add("drill/row_counts_custom_j2_unsandboxed", drill_benchmark, std::string("row_counts"), true, false);
  add("drill/row_counts_and_checksums_custom_j2", drill_benchmark, std::string("checksums"), true, true);
  add("drill/row_counts_and_checksums_after_restore_custom_j2", drill_benchmark, std::string("checksums"), false, true);
  add("drill/row_counts_and_thorough_custom_j2", drill_benchmark, std::string("thorough"), true, true);

  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("pgdrill_bench_scale", std::to_string(scale()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
