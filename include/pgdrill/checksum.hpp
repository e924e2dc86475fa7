// Table content checksums: independent of row order, streaming, stable across servers.
#pragma once

// The definition is a file format (manifests store it), version 2:
//   1. the session pins every setting that changes text output (see pinned_session_settings);
//   2. the table's rows are its own (detail::content_source: ONLY, but a partitioned table's are
//      its partitions'), read with COPY (SELECT "col", ... FROM ...) TO STDOUT in text format;
//      the columns by name, sorted bytewise (dropped columns excluded, generated ones included),
//      so the physical column order of a restore does not matter; or the columns given;
//   3. each row's line, without its newline, is hashed with XXH3-128 (seed 0);
//   4. the digest is the sum of the row hashes modulo 2^128, as 32 lowercase hex digits
//      (high 64 bits first), reported together with the row count.
// A sum, never XOR, so duplicated rows change the digest; row order does not. Version 1 read
// the columns in attribute order with pinned settings 1-6 only; its manifests list their
// columns, which are read in the order listed, so they still verify.

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <pgdrill/detail/sql.hpp>
#include <pgdrill/error.hpp>
#include <pgdrill/process.hpp>
#include <pgdrill/provider.hpp>

namespace pgdrill {

constexpr int checksum_version = 2;

/// One table's checksum.
struct table_checksum {
  std::string table;  ///< "schema.table"
  std::vector<std::string> columns;
  long long rows = 0;
  std::string digest;  ///< 32 lowercase hex digits
  std::string error;   ///< why the table could not be read (a manifest records it and goes on)
};

/// A libpq connection with the checksum session settings pinned. Move-only.
class checksum_connection {
 public:
  explicit checksum_connection(const endpoint& target)
      : connection_(PQconnectdb(target.conninfo().c_str()), PQfinish), canceller_(nullptr, PQfreeCancel) {
    if (PQstatus(connection_.get()) != CONNECTION_OK)
      throw could_not_verify("cannot connect to " + target.describe() + ": " + PQerrorMessage(connection_.get()));
    canceller_.reset(PQgetCancel(connection_.get()));
    for (const auto& [name, value] : detail::pinned_session_settings())
      execute("SET " + name + " = " + detail::quote_literal(value));
    // A SQL_ASCII database declares no encoding: its rows are hashed as the bytes it stores
    // (converting them to UTF8 fails on the first byte that is not).
    if (const char* encoding = PQparameterStatus(connection_.get(), "server_encoding"); encoding && std::string(encoding) == "SQL_ASCII")
      execute("SET client_encoding = 'SQL_ASCII'");
  }

  /// Join another transaction's exported snapshot (manifests read what pg_dump reads).
  void use_snapshot(const std::string& snapshot) {
    execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    execute("SET TRANSACTION SNAPSHOT " + detail::quote_literal(snapshot));
  }

  /// Run a statement; throws database_error with the server's message and SQLSTATE.
  std::unique_ptr<PGresult, decltype(&PQclear)> execute(const std::string& sql) {
    std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(connection_.get(), sql.c_str()), PQclear);
    auto status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_COPY_OUT) refused("query failed", result.get());
    return result;
  }

  /// The table's relkind; throws database_error (undefined_table, 42P01) when there is no such table.
  char relkind_of(const std::string& table) {
    auto result = execute(detail::relkind_query(table));
    if (PQntuples(result.get()) == 0)
      throw database_error("table " + detail::qualified_table(table) + " does not exist", sqlstate::undefined_table);
    return PQgetvalue(result.get(), 0, 0)[0];
  }

  /// Column names of a table, sorted bytewise (none for a table without columns).
  std::vector<std::string> columns_of(const std::string& table) {
    auto result = execute("SELECT attname FROM pg_catalog.pg_attribute WHERE attrelid = pg_catalog.to_regclass(" +
                          detail::quote_literal(detail::quoted_table(table)) +
                          ") AND attnum > 0 AND NOT attisdropped ORDER BY attname COLLATE \"C\"");
    std::vector<std::string> names;
    for (int row = 0; row < PQntuples(result.get()); ++row) names.emplace_back(PQgetvalue(result.get(), row, 0));
    return names;
  }

  /// Stream a query's rows through COPY and hash them (steps 3 and 4 of the definition at the
  /// top of this header): the row count and the digest.
  std::pair<long long, std::string> hash_rows(const std::string& query) {
    execute("COPY (" + query + ") TO STDOUT");
    long long rows = 0;
    std::uint64_t high = 0, low = 0;  // the running sum, modulo 2^128
    char* line = nullptr;
    int size;
    while ((size = PQgetCopyData(connection_.get(), &line, 0)) > 0) {
      std::size_t length = static_cast<std::size_t>(size);
      if (length > 0 && line[length - 1] == '\n') --length;
      XXH128_hash_t hash = XXH3_128bits(line, length);
      low += hash.low64;
      high += hash.high64 + (low < hash.low64 ? 1 : 0);
      ++rows;
      PQfreemem(line);
    }
    std::unique_ptr<PGresult, decltype(&PQclear)> end(PQgetResult(connection_.get()), PQclear);
    if (size == -2 || PQresultStatus(end.get()) != PGRES_COMMAND_OK) refused("COPY failed", end.get());
    while (PGresult* rest = PQgetResult(connection_.get())) PQclear(rest);
    char hex[33];
    std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(high), static_cast<unsigned long long>(low));
    return {rows, hex};
  }

  /// Stream the table through COPY and hash it (see the definition at the top of this header).
  table_checksum checksum(const std::string& table, std::vector<std::string> columns = {}) {
    table_checksum sum;
    sum.table = detail::qualified_table(table);
    char relkind = relkind_of(table);
    sum.columns = columns.empty() ? columns_of(table) : std::move(columns);
    std::string list;
    for (const auto& column : sum.columns) list += (list.empty() ? "" : ", ") + detail::quote_ident(column);
    auto [rows, digest] = hash_rows("SELECT " + list + " FROM " + detail::content_source(table, relkind));
    sum.rows = rows;
    sum.digest = digest;
    return sum;
  }

  /// Ask the server to cancel the statement this connection runs. Safe from another thread:
  /// the running call then fails with the server's "canceling statement due to user request".
  void cancel() {
    char error[256];
    if (canceller_) PQcancel(canceller_.get(), error, sizeof error);
  }

 private:
  // The server refused what `doing` sent: its message, and the SQLSTATE of `result` if it has one.
  [[noreturn]] void refused(const std::string& doing, const PGresult* result) {
    const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    throw database_error(doing + ": " + PQerrorMessage(connection_.get()), state ? state : "");
  }

  std::unique_ptr<PGconn, decltype(&PQfinish)> connection_;
  std::unique_ptr<PGcancel, decltype(&PQfreeCancel)> canceller_;  ///< made by the owning thread, used by any
};

namespace detail {

// The connections of a checksum batch that are open, so a watch thread can cancel what they run.
class running_connections {
 public:
  void add(checksum_connection* connection) {
    std::lock_guard<std::mutex> lock(mutex_);
    open_.push_back(connection);
  }
  void remove(checksum_connection* connection) {
    std::lock_guard<std::mutex> lock(mutex_);
    open_.erase(std::remove(open_.begin(), open_.end(), connection), open_.end());
  }
  void cancel_all() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto* connection : open_) connection->cancel();
  }

 private:
  std::mutex mutex_;
  std::vector<checksum_connection*> open_;
};

}  // namespace detail

/// Checksums of several tables over up to `parallel` connections (each in `snapshot` when one is
/// given); results in the order of `tables`. A table that fails carries its error in `failures`.
struct checksum_batch {
  std::vector<table_checksum> sums;
  std::vector<std::exception_ptr> failures;  ///< null where the table succeeded
  /// The failure's message ("" where the table succeeded).
  std::string failure_text(std::size_t index) const {
    if (!failures.at(index)) return "";
    try {
      std::rethrow_exception(failures[index]);
    } catch (const std::exception& failure) {
      return failure.what();
    }
  }
};

/// `on_table_done` is called (from any of the workers) as each table is done.
inline checksum_batch checksum_tables(const endpoint& target, const std::vector<std::string>& tables,
                                      const std::vector<std::vector<std::string>>& columns = {}, int parallel = 0,
                                      const std::string& snapshot = "", const std::function<void()>& on_table_done = {}) {
  checksum_batch batch;
  batch.sums.resize(tables.size());
  batch.failures.resize(tables.size());
  if (tables.empty()) return batch;
  if (parallel <= 0) parallel = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  std::size_t workers = std::min<std::size_t>(static_cast<std::size_t>(parallel), tables.size());
  std::atomic<std::size_t> next{0};
  detail::running_connections running;
  auto work = [&] {
    std::unique_ptr<checksum_connection> connection;
    auto close = [&] {
      if (connection) running.remove(connection.get());
      connection.reset();
    };
    for (std::size_t index; (index = next++) < tables.size();) {
      try {
        signals::throw_if_interrupted();  // after SIGINT or SIGTERM, no table is started
        if (!connection) {
          connection = std::make_unique<checksum_connection>(target);
          running.add(connection.get());
          if (!snapshot.empty()) connection->use_snapshot(snapshot);
        }
        batch.sums[index] = connection->checksum(tables[index], index < columns.size() ? columns[index] : std::vector<std::string>{});
      } catch (const std::exception& failure) {
        batch.failures[index] = std::current_exception();
        batch.sums[index].table = detail::qualified_table(tables[index]);
        close();  // its transaction may be aborted: the next table gets a fresh one
      }
      detail::notify(on_table_done);
    }
    close();
  };
  auto watch = signals::cancel_on_signal([&] { running.cancel_all(); });
  std::vector<std::thread> threads;
  for (std::size_t index = 1; index < workers; ++index) threads.emplace_back(work);
  work();
  for (auto& thread : threads) thread.join();
  return batch;
}

}  // namespace pgdrill
