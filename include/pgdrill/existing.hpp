// The existing-server provider: a server the user names (a CI service container, a staging
// server); the drill restores into a scratch database it creates and drops only that.
#pragma once

#include <memory>
#include <string>
#include <tuple>

#include <pqxx/pqxx>

#include <pgdrill/detail/sql.hpp>
#include <pgdrill/error.hpp>
#include <pgdrill/provider.hpp>
#include <pgdrill/workspace.hpp>

namespace pgdrill {

/// A borrowed server. Creates `pgdrill_scratch_<owner>_<random>` marked with a comment, and on
/// stop drops that database only, after checking the mark: it never drops what it did not create.
class existing_server final : public server {
 public:
  /// Connect and create the scratch database; could_not_verify when the server cannot be used.
  static std::unique_ptr<existing_server> attach(const endpoint& target) {
    std::unique_ptr<existing_server> server(new existing_server(target));
    try {
      std::tie(server->major_, server->version_) = server_version_of(target);
      pqxx::connection connection(target.conninfo());
      std::string name = "pgdrill_scratch_" + owner_tag() + "_" + detail::random_suffix();
      for (char& c : name)
        if (c == '-') c = '_';
      pqxx::nontransaction tx(connection);
      tx.exec("CREATE DATABASE " + detail::quote_ident(name));
      server->scratch_ = name;
      tx.exec("COMMENT ON DATABASE " + detail::quote_ident(name) + " IS " + detail::quote_literal(server->mark()));
    } catch (const pqxx::failure& failure) {
      throw could_not_verify("cannot use the existing server " + target.describe() + ": " + failure.what());
    }
    return server;
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
    return "existing PostgreSQL " + version_ + " at " + admin_.describe() + ", scratch database " + scratch_;
  }
  bool shared() const override { return true; }
  endpoint restore_target(const std::string& /*source_encoding: the scratch database exists already*/) override {
    return admin_.with_database(scratch_);
  }
  const std::string& scratch_database() const noexcept { return scratch_; }

  /// Drop the scratch database (forcing other sessions off it); safe to call twice.
  void stop() override {
    if (scratch_.empty()) return;
    std::string name = std::exchange(scratch_, std::string());
    pqxx::connection connection(admin_.conninfo());
    pqxx::nontransaction tx(connection);
    auto comment = tx.exec("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = " + tx.quote(name));
    if (comment.empty()) return;  // already gone
    if (comment[0][0].is_null() || comment[0][0].c_str() != mark_for(name))
      throw provisioning_error("refusing to drop database " + name + ": it does not carry this drill's mark");
    tx.exec("DROP DATABASE " + detail::quote_ident(name) + (major_ >= 13 ? " WITH (FORCE)" : ""));
  }

 private:
  explicit existing_server(endpoint target) : admin_(std::move(target)) {}
  std::string mark() const { return mark_for(scratch_); }
  static std::string mark_for(const std::string& name) { return "pgdrill scratch database " + name + "; dropped after the drill"; }

  endpoint admin_;
  std::string scratch_;
  int major_ = 0;
  std::string version_;
};

}  // namespace pgdrill
