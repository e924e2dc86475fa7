// The existing-server provider: a server the user names (a CI service container, a staging
// server). The drill restores into a scratch database it creates, as a role of its own that owns
// that database and nothing else, and removes both; what a killed drill left, the next drill on
// that server (or `pgdrill gc --server`) removes.
#pragma once

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <pqxx/pqxx>

#include <pgdrill/detail/sql.hpp>
#include <pgdrill/detail/text.hpp>
#include <pgdrill/error.hpp>
#include <pgdrill/provider.hpp>
#include <pgdrill/workspace.hpp>

namespace pgdrill {

namespace detail {

// The comment that marks a database or role as a drill's own: its name (a mark copied onto
// another object does not match it) and the run that created it, for the sweeps.
inline std::string drill_mark(const char* kind, const std::string& name, const run_owner& owner) {
  return std::string("pgdrill ") + kind + " " + name + ", created by " + owner.text() + "; dropped after the drill";
}

// The run that created `name` according to its comment; empty when the comment is not a mark of it.
inline std::optional<run_owner> marked_owner(const char* kind, const std::string& name, const pqxx::field& comment) {
  static const std::regex mark(R"(^pgdrill (\S+) (\S+), created by (.+); dropped after the drill$)");
  std::smatch match;
  std::string text = comment.is_null() ? "" : comment.c_str();
  if (!std::regex_match(text, match, mark) || match[1] != kind || match[2] != name) return std::nullopt;
  return run_owner::parse(match[3]);
}

// Names and comments (`name`, `comment`) of the databases or roles (`kind`) that `condition`, SQL
// over those two columns, selects: how sweeps and teardown read the marks.
inline std::string marked_objects_query(const char* kind, const std::string& condition) {
  const bool database = std::string(kind) == "database";
  return std::string("SELECT name, comment FROM (SELECT ") +
         (database ? "datname AS name, shobj_description(oid, 'pg_database') AS comment FROM pg_database"
                   : "rolname AS name, shobj_description(oid, 'pg_authid') AS comment FROM pg_roles") +
         ") AS objects WHERE " + condition;
}

// The password's verifier as the server stores it, computed here by libpq, so the password itself
// never travels in SQL (a server logging its statements would log it).
inline std::string password_verifier(const endpoint& admin, const std::string& role, const std::string& password) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> connection(PQconnectdb(admin.conninfo().c_str()), PQfinish);
  char* verifier = PQstatus(connection.get()) == CONNECTION_OK
                       ? PQencryptPasswordConn(connection.get(), password.c_str(), role.c_str(), nullptr)
                       : nullptr;
  if (!verifier) throw could_not_verify("cannot compute the password of the drill's role on " + admin.describe());
  std::string text = verifier;
  PQfreemem(verifier);
  return text;
}

// Ends every session on `database` this role may end, then drops it, retrying while sessions
// (or an autovacuum worker, which DROP DATABASE stops by itself) are still leaving. Needs no
// superuser: a session of another role this role may not end makes the drop fail after 30 s.
inline void drop_database_when_free(pqxx::connection& connection, const std::string& database) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (true) {
    auto sessions = pqxx::nontransaction(connection).exec("SELECT pid FROM pg_stat_activity WHERE datname = " +
                                                          quote_literal(database) + " AND pid <> pg_backend_pid()");
    for (const auto& row : sessions) {
      try {
        pqxx::nontransaction(connection).exec("SELECT pg_terminate_backend(" + std::string(row[0].c_str()) + ")");
      } catch (const pqxx::sql_error&) {  // not ours to end: the drop below says so if it stays
      }
    }
    try {
      pqxx::nontransaction(connection).exec("DROP DATABASE IF EXISTS " + quote_ident(database));
      return;
    } catch (const pqxx::sql_error& failure) {
      if (failure.sqlstate() != "55006" || std::chrono::steady_clock::now() > deadline) throw;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// Roll back the prepared transactions left in `database` (a backup's PREPARE TRANSACTION), which
// would keep it from being dropped: listed on `admin_connection` (a session of `admin`), rolled
// back from a session on that database, as `owner` (the role that prepared them, which may end its
// own) when given, else as `admin`.
inline void roll_back_prepared(pqxx::connection& admin_connection, const endpoint& admin, const std::string& database,
                               const std::optional<endpoint>& owner) {
  auto prepared = pqxx::nontransaction(admin_connection)
                      .exec("SELECT gid FROM pg_catalog.pg_prepared_xacts WHERE database = " + quote_literal(database));
  if (prepared.empty()) return;
  pqxx::connection connection(owner ? owner->conninfo() : admin.with_database(database).conninfo());
  for (const auto& row : prepared) pqxx::nontransaction(connection).exec("ROLLBACK PREPARED " + quote_literal(row[0].c_str()));
}

}  // namespace detail

/// Limits the teardown's statements on a shared server: it never waits on a lock without end
/// (a prepared transaction's, another session's).
constexpr const char* bounded_teardown_settings = "SET lock_timeout = '10s'; SET statement_timeout = '60s'";

/// A borrowed server. Creates `pgdrill_scratch_<owner>_<random>` and `pgdrill_restore_<owner>_<random>`:
/// a login role without any attribute, owner of the scratch database, that the restore and the
/// checks run as. Both carry a mark naming this run; stop() drops them after checking it, so the
/// drill never drops what it did not create.
class existing_server final : public server {
 public:
  /// Sweep what killed drills left, then create the scratch database and the drill's role;
  /// could_not_verify when the server cannot be used. When the drill's role cannot be made or may
  /// not log in, could_not_verify says what to change, unless `restore_as_given_role` (then the
  /// given role restores, and never a superuser).
  static std::unique_ptr<existing_server> attach(const endpoint& target, bool restore_as_given_role = false) {
    std::unique_ptr<existing_server> server(new existing_server(target));
    server->restore_as_given_role_ = restore_as_given_role;
    try {
      std::tie(server->major_, server->version_) = server_version_of(target);
      reap_leftovers(target);
      pqxx::connection connection(target.conninfo());
      std::string tail = owner_tag() + "_" + detail::random_suffix();
      for (char& c : tail)
        if (c == '-') c = '_';
      server->create_restore_role(connection, "pgdrill_restore_" + tail);
      std::string name = "pgdrill_scratch_" + tail;
      std::string owner = server->restore_role_.empty() ? "" : " OWNER " + detail::quote_ident(server->restore_role_);
      pqxx::nontransaction(connection).exec("CREATE DATABASE " + detail::quote_ident(name) + owner);
      server->scratch_ = name;
      pqxx::nontransaction(connection).exec("COMMENT ON DATABASE " + detail::quote_ident(name) + " IS " +
                                            detail::quote_literal(detail::drill_mark("database", name, server->owner_)));
      if (!server->restore_role_.empty()) server->use_given_role_unless_restore_role_logs_in(connection);
    } catch (const pqxx::failure& failure) {
      throw could_not_verify("cannot use the existing server " + target.describe() + ": " + failure.what());
    }
    return server;
  }

  /// Drop the databases and roles of drills on this server whose run provably ended (killed on
  /// this machine); what runs elsewhere created stays.
  static std::vector<reaped_item> reap_leftovers(const endpoint& target) {
    try {
      return drop_what_ended_runs_left(target);
    } catch (const pqxx::failure& failure) {
      throw could_not_verify("cannot sweep the existing server " + target.describe() + ": " + failure.what());
    }
  }

  existing_server(const existing_server&) = delete;
  existing_server& operator=(const existing_server&) = delete;
  ~existing_server() override {
    try {
      stop();
    } catch (...) {  // the destructor must not throw; stop() already did all it could
    }
  }

  const endpoint& admin() const override { return admin_; }
  int major_version() const override { return major_; }
  std::string version() const override { return version_; }
  std::string provider() const override { return "existing"; }
  std::string describe() const override {
    return "existing PostgreSQL " + version_ + " at " + admin_.describe() + ", scratch database " + scratch_ +
           (restore_role_.empty() ? ", restored as the given role (" + why_given_role_ + ")" : ", restored as role " + restore_role_);
  }
  bool shared() const override { return true; }
  endpoint restore_target(const database_locale& /*the scratch database exists already*/) override {
    auto target = admin_.with_database(scratch_);
    return restore_role_.empty() ? target : target.as_role(restore_role_, restore_password_);
  }
  void create_role(const std::string& name) override {
    pqxx::connection connection(admin_.conninfo());
    try {
      pqxx::work tx(connection);  // the mark with the role: a kill in between leaves no unmarked role
      tx.exec("CREATE ROLE " + detail::quote_ident(name));
      tx.exec("COMMENT ON ROLE " + detail::quote_ident(name) + " IS " + detail::quote_literal(detail::drill_mark("role", name, owner_)));
      tx.commit();
    } catch (const pqxx::sql_error& failure) {
      if (failure.sqlstate() != "42710") throw;
      return;  // another drill made it meanwhile: there now, and not this drill's to drop
    }
    created_roles_.push_back(name);
  }
  const std::string& scratch_database() const noexcept { return scratch_; }
  const std::string& restore_role() const noexcept { return restore_role_; }

  /// Roll back the prepared transactions the backup left in the scratch database, drop it (ending
  /// the sessions on it), then the roles; every statement within bounded_teardown_settings' time.
  /// Safe to call twice; provisioning_error naming whatever it could not remove (the next
  /// drill's sweep tries again).
  void stop() override {
    if (scratch_.empty() && created_roles_.empty()) return;
    pqxx::connection connection(admin_.conninfo());
    pqxx::nontransaction(connection).exec(bounded_teardown_settings);
    std::vector<std::string> left;
    if (!scratch_.empty()) {
      std::optional<endpoint> restorer;  // who prepared the backup's transactions
      if (!restore_role_.empty()) restorer = restore_target({});
      std::string name = std::exchange(scratch_, std::string());
      if (!carries_mark(connection, "database", name))
        throw provisioning_error("refusing to drop database " + name + ": it does not carry this drill's mark");
      try {
        detail::roll_back_prepared(connection, admin_, name, restorer);
        detail::drop_database_when_free(connection, name);
      } catch (const std::exception& failure) {
        left.push_back("database " + name + " (" + failure.what() + ")");
      }
    }
    while (!created_roles_.empty()) {  // the drill's own role last: it owned the database
      std::string role = created_roles_.back();
      created_roles_.pop_back();
      if (!carries_mark(connection, "role", role))
        throw provisioning_error("refusing to drop role " + role + ": it does not carry this drill's mark");
      try {
        pqxx::nontransaction(connection).exec("DROP ROLE IF EXISTS " + detail::quote_ident(role));
      } catch (const pqxx::sql_error& failure) {
        left.push_back("role " + role + " (" + failure.what() + ")");
      }
    }
    if (!left.empty())
      throw provisioning_error("left on the shared server, for the next drill's sweep or `pgdrill gc --server`: " + detail::join(left, "; "));
  }

 private:
  explicit existing_server(endpoint target) : admin_(std::move(target)), owner_(run_owner::of_this_run()) {}

  // What a leftover that cannot be removed costs is a line in the list, not the drill.
  static std::vector<reaped_item> drop_what_ended_runs_left(const endpoint& target) {
    std::vector<reaped_item> reaped;
    pqxx::connection connection(target.conninfo());
    pqxx::nontransaction(connection).exec(bounded_teardown_settings);
    auto listed = [&](const std::string& sql) { return pqxx::nontransaction(connection).exec(sql); };
    auto remove = [&](const std::string& what, const std::function<void()>& drop) {
      try {
        drop();
        reaped.push_back({what});
      } catch (const std::exception& failure) {
        reaped.push_back({"could not remove " + what + ": " + failure.what()});
      }
    };
    for (const auto& row : listed(detail::marked_objects_query("database", "name LIKE 'pgdrill\\_scratch\\_%'"))) {
      auto owner = detail::marked_owner("database", row[0].c_str(), row[1]);
      if (!owner || !owner->provably_gone()) continue;
      const std::string name = row[0].c_str();
      remove("database " + name + " (run " + owner->tag + " is gone)", [&] {
        detail::roll_back_prepared(connection, target, name, std::nullopt);
        detail::drop_database_when_free(connection, name);
      });
    }
    for (const auto& row : listed(detail::marked_objects_query("role", "comment LIKE 'pgdrill role %'"))) {
      auto owner = detail::marked_owner("role", row[0].c_str(), row[1]);
      if (!owner || !owner->provably_gone()) continue;
      const std::string name = row[0].c_str();
      remove("role " + name + " (run " + owner->tag + " is gone)",
             [&] { pqxx::nontransaction(connection).exec("DROP ROLE IF EXISTS " + detail::quote_ident(name)); });
    }
    return reaped;
  }

  // A role with no attribute at all (no superuser, no CREATEDB, no CREATEROLE), marked in the same
  // transaction. Only when the given role may create roles; otherwise the restore runs as the
  // given role, as the description says. A non-superuser joins the role so it may give it the
  // database (and end its sessions at teardown).
  void create_restore_role(pqxx::connection& connection, const std::string& role) {
    auto rights = pqxx::nontransaction(connection).exec("SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user");
    bool superuser = rights[0][0].as<bool>(), may_create_roles = rights[0][1].as<bool>();
    if (!superuser && !may_create_roles) {
      use_given_role("it may not create roles", "grant it CREATEROLE (ALTER ROLE " + admin_.user + " CREATEROLE), or connect as a role that has it",
                     superuser);
      return;
    }
    std::string password = detail::random_secret();
    std::string verifier = detail::password_verifier(admin_, role, password);
    pqxx::work tx(connection);
    tx.exec("CREATE ROLE " + detail::quote_ident(role) + " LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD " +
            detail::quote_literal(verifier));
    tx.exec("COMMENT ON ROLE " + detail::quote_ident(role) + " IS " + detail::quote_literal(detail::drill_mark("role", role, owner_)));
    if (!superuser) tx.exec("GRANT " + detail::quote_ident(role) + " TO CURRENT_USER");
    tx.commit();
    created_roles_.push_back(role);
    restore_role_ = role;
    restore_password_ = password;
  }

  // pg_hba.conf may let only some roles in (peer authentication on a socket): then the restore
  // runs as the given role, and the description says why.
  void use_given_role_unless_restore_role_logs_in(pqxx::connection& connection) {
    std::string refused = detail::try_connect(restore_target({}));
    if (refused.empty()) return;
    auto superuser = pqxx::nontransaction(connection).exec("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")[0][0].as<bool>();
    use_given_role("the drill's own role may not log in: " + refused.substr(0, refused.find('\n')),
                   "let roles named pgdrill_restore_* log in to the scratch databases with a password (pg_hba.conf: host all "
                   "/^pgdrill_restore_ all scram-sha-256, or local all /^pgdrill_restore_ scram-sha-256 for a socket)",
                   superuser);
    pqxx::nontransaction(connection).exec("ALTER DATABASE " + detail::quote_ident(scratch_) + " OWNER TO CURRENT_USER");
    pqxx::nontransaction(connection).exec("DROP ROLE " + detail::quote_ident(restore_role_));
    created_roles_.erase(std::find(created_roles_.begin(), created_roles_.end(), restore_role_));
    restore_role_.clear();
    restore_password_.clear();
  }

  // The drill's own role cannot be used (`why`): could_not_verify saying how to make it usable
  // (`remedy`), unless the scenario opted into restoring as the given role, which must then not
  // be a superuser. The teardown of what attach() made so far runs with the handle.
  void use_given_role(const std::string& why, const std::string& remedy, bool superuser) {
    if (!restore_as_given_role_)
      throw could_not_verify("the existing provider restores as a role of its own, and here it cannot: " + why + ". " + remedy +
                             "; or set \"existing\": {\"restore_as_given_role\": true} in the scenario (--restore-as-given-role) "
                             "to restore as " + admin_.user + ", which must not be a superuser");
    if (superuser)
      throw could_not_verify("the existing provider never restores a backup as a superuser (" + why + ", and the given role " +
                             admin_.user + " is one): a backup's SQL would act on the whole server. " + remedy);
    why_given_role_ = why;
  }

  bool carries_mark(pqxx::connection& connection, const char* kind, const std::string& name) const {
    pqxx::nontransaction tx(connection);
    auto marked = tx.exec(detail::marked_objects_query(kind, "name = " + tx.quote(name)));
    if (marked.empty()) return true;  // already gone: dropping IF EXISTS is harmless
    auto owner = detail::marked_owner(kind, name, marked[0][1]);
    return owner && owner->tag == owner_.tag && owner->host == owner_.host;
  }

  endpoint admin_;
  run_owner owner_;
  std::string scratch_;
  std::string restore_role_, restore_password_;
  std::string why_given_role_;  ///< when the restore runs as the given role
  bool restore_as_given_role_ = false;  ///< the scenario allows it when the drill's role cannot be used
  std::vector<std::string> created_roles_;  ///< the drill's role first, then the scenario's roles
  int major_ = 0;
  std::string version_;
};

}  // namespace pgdrill
