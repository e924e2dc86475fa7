// What every provider yields: a ready server handle with an endpoint, a version and a lifetime.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <pgdrill/error.hpp>
#include <pgdrill/process.hpp>

namespace pgdrill {

/// Where to connect. The password is only ever handed to libpq (in-process) or to a child's
/// environment (PGPASSWORD), never to argv, logs or messages.
struct endpoint {
  std::string host;  ///< host name, or a unix socket directory
  int port = 5432;
  std::string user;
  std::string dbname = "postgres";
  std::string password;

  /// Same server, another database.
  endpoint with_database(std::string name) const {
    endpoint other = *this;
    other.dbname = std::move(name);
    return other;
  }

  /// A libpq connection string, password included: for in-process connections only.
  std::string conninfo() const {
    std::string text = "host=" + quote(host) + " port=" + std::to_string(port) + " user=" + quote(user) +
                       " dbname=" + quote(dbname) + " application_name=pgdrill";
    if (!password.empty()) text += " password=" + quote(password);
    return text;
  }

  /// For messages and reports: no password.
  std::string describe() const {
    return user + "@" + host + ":" + std::to_string(port) + "/" + dbname + (password.empty() ? "" : " (password set)");
  }

  /// The libpq environment for child tools (psql, pg_restore, pg_dump).
  std::vector<std::pair<std::string, std::string>> libpq_env() const {
    std::vector<std::pair<std::string, std::string>> env{
        {"PGHOST", host}, {"PGPORT", std::to_string(port)}, {"PGUSER", user}, {"PGDATABASE", dbname},
        {"PGAPPNAME", "pgdrill"}, {"PGCONNECT_TIMEOUT", "30"}};
    if (!password.empty()) env.emplace_back("PGPASSWORD", password);
    return env;
  }

  /// Variables to remove from a child's environment so the user's own libpq settings
  /// (PGSERVICE, PGPASSFILE, PGOPTIONS, ...) cannot redirect a drill.
  static std::vector<std::string> foreign_libpq_env() {
    return {"PGSERVICE", "PGSERVICEFILE", "PGPASSFILE", "PGOPTIONS", "PGHOSTADDR", "PGPASSWORD",
            "PGSSLMODE", "PGREQUIRESSL", "PGTARGETSESSIONATTRS", "DATABASE_URL"};
  }

 private:
  static std::string quote(const std::string& value) {
    std::string text = "'";
    for (char c : value) {
      if (c == '\'' || c == '\\') text += '\\';
      text += c;
    }
    return text + "'";
  }
};

/// A throwaway (or borrowed) server. Move-only through unique_ptr; the destructor tears down
/// without throwing, `stop()` does the same but reports what went wrong and is safe to call twice.
class server {
 public:
  virtual ~server() = default;
  /// Superuser endpoint (database "postgres" on a fresh server).
  virtual const endpoint& admin() const = 0;
  virtual int major_version() const = 0;
  virtual std::string version() const = 0;
  /// "local", "container", "existing".
  virtual std::string provider() const = 0;
  /// One line for people: what and where, no secrets.
  virtual std::string describe() const = 0;
  virtual void stop() = 0;
};

/// Readiness: a real connection (authentication included) within a deadline, polled at an
/// interval; each poll first checks the server is still alive, and a failure carries the
/// server's own diagnostics (its log).
struct wait_strategy {
  std::chrono::milliseconds deadline{60000};
  std::chrono::milliseconds interval{25};
};

namespace detail {

// One connection attempt; empty when it succeeded, libpq's message otherwise.
inline std::string try_connect(const endpoint& target) {
  PGconn* connection = PQconnectdb((target.conninfo() + " connect_timeout=5").c_str());
  std::string message = PQstatus(connection) == CONNECTION_OK ? "" : PQerrorMessage(connection);
  if (PQstatus(connection) != CONNECTION_OK && message.empty()) message = "connection failed";
  PQfinish(connection);
  return message;
}

}  // namespace detail

inline void wait_until_ready(const endpoint& target, const wait_strategy& strategy,
                             const std::function<bool()>& alive, const std::function<std::string()>& diagnostics) {
  auto deadline = std::chrono::steady_clock::now() + strategy.deadline;
  while (true) {
    signals::throw_if_interrupted();
    if (!alive()) throw provisioning_error("server exited before it was ready\n" + diagnostics());
    std::string last_error = detail::try_connect(target);
    if (last_error.empty()) return;
    if (std::chrono::steady_clock::now() >= deadline)
      throw provisioning_error("server not ready after " + std::to_string(strategy.deadline.count() / 1000) +
                               "s at " + target.describe() + "; last connection error: " + last_error + "\n" +
                               diagnostics());
    std::this_thread::sleep_for(strategy.interval);
  }
}

}  // namespace pgdrill
