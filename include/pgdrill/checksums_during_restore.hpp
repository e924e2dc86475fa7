// Checksums taken while the restore goes on: a table's checksum starts as soon as pg_restore -j
// has committed its data, on a connection of its own, instead of once the whole restore is over.
// The sum is the one the checks after the restore would take (same definition, checksum.hpp),
// taken only of tables whose rows nothing later in the restore can change.
#pragma once

#include <libpq-fe.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdlib>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <pgdrill/checksum.hpp>
#include <pgdrill/detail/sql.hpp>
#include <pgdrill/process.hpp>
#include <pgdrill/provider.hpp>
#include <pgdrill/result.hpp>

namespace pgdrill {

/// One planned checksum: the check it is for, the table and the columns.
struct planned_checksum {
  check_id check;
  std::string table;
  std::vector<std::string> columns;
};

/// A checksum taken: the sum, or why the table could not be read, and how long it took.
struct checksum_outcome {
  table_checksum sum;
  std::exception_ptr failure;  ///< null when the sum was taken
  double seconds = 0;
};

/// One worker that checksums each planned table once the restore has loaded it; the tables still
/// queued when the restore ends are taken before it hands over, so which tables it took does not
/// depend on timing. Tables that are not ordinary tables of their own (partitions, which rows
/// routed through a parent may still reach; partitioned parents, whose rows are their
/// partitions') and tables it could not read are left to the checks after the restore.
class checksums_during_restore {
 public:
  /// `host_pid`, set when the server's processes are this host's (the local provider), gives the
  /// host pid of a server process (server::host_pid_of): the checksum's backend and this worker
  /// then run at the lowest CPU priority, taking the cores the restore leaves idle rather than
  /// slowing it.
  checksums_during_restore(endpoint target, std::vector<planned_checksum> planned, std::function<pid_t(pid_t)> host_pid = {})
      : target_(std::move(target)), planned_(std::move(planned)), host_pid_(std::move(host_pid)), worker_([this] { work(); }) {}

  checksums_during_restore(const checksums_during_restore&) = delete;
  checksums_during_restore& operator=(const checksums_during_restore&) = delete;

  /// The restore failed or stopped: the queue is dropped, the table being read is cancelled and
  /// nothing is kept.
  ~checksums_during_restore() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      abandoned_ = true;
      queue_.clear();
      wake_.notify_one();
    }
    cancel_running();
    if (worker_.joinable()) worker_.join();
  }

  /// The restore committed the rows of `schema`.`name` (names as the archive's table of contents
  /// has them). Safe from any thread.
  void loaded(const std::string& schema, const std::string& name) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_ || abandoned_) return;
    queue_.emplace_back(schema, name);
    wake_.notify_one();
  }

  /// The restore is over: the tables loaded so far are taken, then the sums, by check.
  std::map<check_id, checksum_outcome> finish() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closed_ = true;
      wake_.notify_one();
    }
    if (worker_.joinable()) worker_.join();
    return std::move(done_);
  }

 private:
  void cancel_running() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (connection_) connection_->cancel();
  }

  void work() {
    auto watch = signals::cancel_on_signal([this] { cancel_running(); });
    if (host_pid_) ::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), lowest_priority);
    for (std::pair<std::string, std::string> table; next(table);) {
      try {
        checksum_loaded(table.first, table.second);
      } catch (const std::exception&) {  // not kept: the checks after the restore read it again and judge
        std::lock_guard<std::mutex> lock(mutex_);
        connection_.reset();
      }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    connection_.reset();
  }

  bool next(std::pair<std::string, std::string>& table) {
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait(lock, [this] { return closed_ || abandoned_ || !queue_.empty(); });
    if (abandoned_ || queue_.empty()) return false;
    table = std::move(queue_.front());
    queue_.pop_front();
    return true;
  }

  void checksum_loaded(const std::string& schema, const std::string& name) {
    signals::throw_if_interrupted();
    if (!connection_) {
      auto opened = std::make_unique<checksum_connection>(target_);
      if (host_pid_) lower_backend_priority(*opened);
      std::lock_guard<std::mutex> lock(mutex_);
      connection_ = std::move(opened);
    }
    if (oids_.empty()) oids_ = planned_oids();
    auto loaded = connection_->execute(
        "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = " +
        detail::quote_literal(schema) + " AND c.relname = " + detail::quote_literal(name) +
        " AND c.relkind = 'r' AND NOT c.relispartition");
    if (PQntuples(loaded.get()) != 1) return;
    const std::string oid = PQgetvalue(loaded.get(), 0, 0);
    for (std::size_t position = 0; position < planned_.size(); ++position) {
      if (oids_[position] != oid) continue;
      auto started = std::chrono::steady_clock::now();
      checksum_outcome outcome;
      outcome.sum = connection_->checksum(planned_[position].table, planned_[position].columns);
      outcome.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      std::lock_guard<std::mutex> lock(mutex_);
      done_[planned_[position].check] = std::move(outcome);
    }
  }

  // The connection's server process, at the lowest priority (only a postgres process is touched).
  void lower_backend_priority(checksum_connection& connection) const {
    auto found = connection.execute("SELECT pg_catalog.pg_backend_pid()");
    const pid_t backend = host_pid_(static_cast<pid_t>(std::atol(PQgetvalue(found.get(), 0, 0))));
    if (backend > 0 && detail::proc_text("/proc/" + std::to_string(backend) + "/cmdline").rfind("postgres", 0) == 0)
      ::setpriority(PRIO_PROCESS, static_cast<id_t>(backend), lowest_priority);
  }

  static constexpr int lowest_priority = 19;

  // The planned tables' OIDs, resolved once the restore has created its tables ("" for a table
  // it did not create).
  std::vector<std::string> planned_oids() {
    std::vector<std::string> oids;
    for (const auto& check : planned_) {
      auto found = connection_->execute("SELECT pg_catalog.to_regclass(" + detail::quote_literal(detail::quoted_table(check.table)) +
                                        ")::oid");
      oids.push_back(PQgetisnull(found.get(), 0, 0) ? "" : PQgetvalue(found.get(), 0, 0));
    }
    return oids;
  }

  endpoint target_;
  std::vector<planned_checksum> planned_;
  std::function<pid_t(pid_t)> host_pid_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::pair<std::string, std::string>> queue_;
  bool closed_ = false;     ///< finish(): no table comes any more, the queue is emptied
  bool abandoned_ = false;  ///< the destructor before finish(): the queue is dropped
  std::unique_ptr<checksum_connection> connection_;  ///< replaced under the mutex: cancel_running reads it
  std::vector<std::string> oids_;
  std::map<check_id, checksum_outcome> done_;
  std::thread worker_;  ///< last: starts once every member above is ready
};

}  // namespace pgdrill
