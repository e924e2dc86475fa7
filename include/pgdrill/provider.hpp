// What every provider yields: a ready server handle with an endpoint, a version and a lifetime.
#pragma once

#include <libpq-fe.h>

#include <pqxx/pqxx>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>  // optional minimum major of client tools
#include <functional>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <pgdrill/binaries.hpp>
#include <pgdrill/detail/sql.hpp>
#include <pgdrill/detail/text.hpp>
#include <pgdrill/error.hpp>
#include <pgdrill/process.hpp>

namespace pgdrill {

/// Where to connect. The password is only ever handed to libpq (in-process) or to a child's
/// environment (PGPASSWORD), never to argv, logs or messages.
struct endpoint {
  /// One libpq setting as the user gave it: its conninfo keyword and its environment variable.
  struct setting {
    std::string keyword, variable, value;
  };

  std::string host;  ///< host name, or a unix socket directory
  int port = 5432;
  std::string user;
  std::string dbname = "postgres";  ///< empty: whatever libpq resolves (a server the user named)
  std::string password;
  /// A server the user named (endpoint_from_conninfo): their libpq environment applies, and
  /// `given` holds every setting of their connection string except the password (service,
  /// passfile, sslmode, options, ...), handed to libpq and the tools unchanged so libpq resolves
  /// them as it would for the user. False for a server pgdrill started.
  bool named_by_user = false;
  std::vector<setting> given;

  /// A server pgdrill started itself: none of the user's libpq settings apply to it.
  static endpoint of_started_server(std::string host, int port, std::string user, std::string password) {
    endpoint started;
    started.host = std::move(host);
    started.port = port;
    started.user = std::move(user);
    started.password = std::move(password);
    return started;
  }

  /// Same server, another database.
  endpoint with_database(std::string name) const {
    endpoint other = *this;
    other.dbname = std::move(name);
    return other;
  }

  /// Same server and database, logged in as another role.
  endpoint as_role(const std::string& role, std::string role_password) const {
    endpoint other = *this;
    other.user = role;
    other.password = std::move(role_password);
    if (named_by_user) {
      auto& settings = other.given;
      settings.erase(std::remove_if(settings.begin(), settings.end(), [](const setting& item) { return item.keyword == "user"; }),
                     settings.end());
      settings.push_back({"user", "PGUSER", role});
    }
    return other;
  }

  /// A libpq connection string, password included: for in-process connections only.
  std::string conninfo() const {
    std::string text;
    if (!named_by_user) {
      text = "host=" + quote(host) + " port=" + std::to_string(port) + " user=" + quote(user);
    } else {
      for (const auto& item : given)
        if (item.keyword != "dbname") text += item.keyword + "=" + quote(item.value) + " ";
    }
    if (!dbname.empty()) text += " dbname=" + quote(dbname);
    text += " application_name=pgdrill";
    if (!password.empty()) text += " password=" + quote(password);
    return text;
  }

  /// For messages and reports: no password. A server the user named is shown as they named it.
  std::string describe() const {
    std::string text;
    if (!named_by_user) text = user + "@" + host + ":" + std::to_string(port) + "/" + dbname;
    for (const auto& item : given)
      if (item.keyword != "dbname") text += (text.empty() ? "" : " ") + item.keyword + "=" + item.value;
    if (named_by_user) text += (text.empty() ? "" : " ") + (dbname.empty() ? std::string("(libpq's defaults)") : "dbname=" + dbname);
    return text + (password.empty() ? "" : " (password set)");
  }

  /// The libpq environment for child tools (psql, pg_restore, pg_dump).
  std::vector<std::pair<std::string, std::string>> libpq_env() const {
    std::vector<std::pair<std::string, std::string>> env;
    if (!named_by_user) env = {{"PGHOST", host}, {"PGPORT", std::to_string(port)}, {"PGUSER", user}};
    for (const auto& item : given)
      if (item.keyword != "dbname") env.emplace_back(item.variable, item.value);
    if (!dbname.empty()) env.emplace_back("PGDATABASE", dbname);
    env.insert(env.end(), {{"PGAPPNAME", "pgdrill"}, {"PGCONNECT_TIMEOUT", "30"}});
    if (!password.empty()) env.emplace_back("PGPASSWORD", password);
    return env;
  }

  /// Point a child tool at this endpoint through its environment. A server pgdrill started gets
  /// none of the user's own libpq settings (they could redirect the drill); a server the user
  /// named keeps them all (PGPASSFILE, PGSERVICE, ~/.pgpass, SSL files), as the user's own tools would.
  void apply_to(command& tool) const {
    tool.with_env(libpq_env());
    if (!named_by_user) return;
    if (tool.inherits == command::inheritance::tools) tool.inheriting(command::inheritance::tools_and_libpq);
    auto files = credential_files();
    tool.reads.insert(tool.reads.end(), files.begin(), files.end());
  }

  /// The files libpq may read to reach a server the user named, those that exist: what their
  /// settings name (passfile, SSL certificates and keys, service file) and the defaults in $HOME.
  std::vector<std::filesystem::path> credential_files() const {
    static const std::vector<std::pair<std::string, std::string>> named{  // conninfo keyword ("": none), variable
        {"passfile", "PGPASSFILE"}, {"sslcert", "PGSSLCERT"}, {"sslkey", "PGSSLKEY"},
        {"sslrootcert", "PGSSLROOTCERT"}, {"sslcrl", "PGSSLCRL"}, {"", "PGSERVICEFILE"}};
    std::vector<std::filesystem::path> candidates;
    for (const auto& [keyword, variable] : named) {
      if (const char* value = std::getenv(variable.c_str()); value && *value) candidates.emplace_back(value);
      for (const auto& item : given)
        if (!keyword.empty() && item.keyword == keyword) candidates.emplace_back(item.value);
    }
    if (const char* home = std::getenv("HOME"); home && *home)
      for (const char* file : {".pgpass", ".pg_service.conf", ".postgresql/postgresql.crt", ".postgresql/postgresql.key",
                               ".postgresql/root.crt", ".postgresql/root.crl"})
        candidates.push_back(std::filesystem::path(home) / file);
    std::vector<std::filesystem::path> existing;
    std::error_code ignored;
    for (auto& file : candidates)
      if (std::filesystem::is_regular_file(file, ignored)) existing.push_back(std::move(file));
    return existing;
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

namespace detail {

// The passwords a connection string or URL carries, as written, even when it does not parse:
// libpq quotes the token it stumbles on, and in a URL that may be the password itself.
inline std::vector<std::string> passwords_in_conninfo(const std::string& conninfo) {
  static const std::regex url_user(R"(^\s*postgres(?:ql)?://([^/?#]*)@)");
  static const std::regex url_query(R"([?&]password=([^&#]*))");
  static const std::regex keyword(R"((?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'?|[^\s]+))");
  std::vector<std::string> found;
  std::smatch match;
  if (std::regex_search(conninfo, match, url_user))
    if (auto userinfo = match[1].str(); userinfo.find(':') != std::string::npos) found.push_back(userinfo.substr(userinfo.find(':') + 1));
  for (const auto* pattern : {&url_query, &keyword})
    for (std::sregex_iterator at(conninfo.begin(), conninfo.end(), *pattern), end; at != end; ++at) {
      std::string value = (*at)[1].str();
      found.push_back(value);
      if (value.size() >= 2 && value.front() == '\'') found.push_back(value.substr(1, value.size() - 2));
    }
  return found;
}

// libpq's parse error without the words of the string it quotes ("missing \"=\" after \"hunter2\"" for
// a password typed without its keyword): only its own "=" stays.
inline std::string without_quoted_words(const std::string& message) {
  std::string text;
  for (std::size_t at = 0; at < message.size();) {
    auto open = message.find('"', at), close = open == std::string::npos ? open : message.find('"', open + 1);
    if (close == std::string::npos) return text + message.substr(at);
    auto quoted = message.substr(open, close - open + 1);
    text += message.substr(at, open - at) + (quoted == "\"=\"" ? quoted : "(a part not shown: it may be a secret)");
    at = close + 1;
  }
  return text;
}

// `text` with every one of `secrets` replaced by asterisks.
inline std::string redacted(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& secret : secrets)
    for (std::size_t at; !secret.empty() && (at = text.find(secret)) != std::string::npos;) text.replace(at, secret.size(), "********");
  return text;
}

}  // namespace detail

/// An endpoint from a libpq connection string or URL ("host=db user=app", "postgresql://..."),
/// with libpq's own defaults (PGHOST, PGUSER, PGPASSWORD, ~/.pgpass is left to libpq) filling
/// what it leaves out; an empty string means the environment alone (DATABASE_URL when set).
/// Throws usage_error for a malformed string, quoting libpq's reason but never the string.
inline endpoint endpoint_from_conninfo(std::string conninfo) {
  if (conninfo.empty())
    if (const char* url = std::getenv("DATABASE_URL"); url && *url) conninfo = url;
  char* problem = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> given(PQconninfoParse(conninfo.c_str(), &problem),
                                                                     PQconninfoFree);
  if (!given) {
    std::string reason = detail::without_quoted_words(
        detail::redacted(problem ? problem : "cannot parse", detail::passwords_in_conninfo(conninfo)));
    PQfreemem(problem);
    throw usage_error("invalid connection string: " + reason);
  }
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> defaults(PQconndefaults(), PQconninfoFree);
  auto value = [&](const char* keyword) -> std::string {
    for (auto* options : {given.get(), defaults.get()})
      for (auto* option = options; option && option->keyword; ++option)
        if (std::string(option->keyword) == keyword && option->val && *option->val) return option->val;
    return "";
  };
  endpoint result;
  for (auto* option = given.get(); option && option->keyword; ++option) {
    std::string keyword = option->keyword;
    if (!option->val || !*option->val || keyword == "password") continue;
    for (auto* known = defaults.get(); known && known->keyword; ++known)
      if (keyword == known->keyword && known->envvar) result.given.push_back({keyword, known->envvar, option->val});
  }
  result.named_by_user = true;
  result.host = value("host");
  if (result.host.empty()) result.host = value("hostaddr");
  if (result.host.empty()) result.host = "/var/run/postgresql";
  std::string port = value("port");
  result.port = port.empty() ? 5432 : std::atoi(port.c_str());
  result.user = value("user");
  // Only as given: otherwise libpq resolves it (PGDATABASE, a service's dbname, the user name).
  result.dbname.clear();
  for (const auto& item : result.given)
    if (item.keyword == "dbname") result.dbname = item.value;
  result.password = value("password");
  return result;
}

/// A server's version as libpq reports it: {major, "major.minor"} (e.g. {15, "15.18"}).
inline std::pair<int, std::string> server_version_of(const endpoint& target) {
  int number = pqxx::connection(target.conninfo()).server_version();
  return {number / 10000, std::to_string(number / 10000) + "." + std::to_string(number % 10000)};
}

/// The source database's encoding and default locale, as far as the backup (or its manifest)
/// tells: the restore database is made like it, so text sorts and compares as at the source.
struct database_locale {
  std::string encoding;        ///< "UTF8", "SQL_ASCII", ...; empty when unknown
  std::string provider;        ///< "libc", "icu" or "builtin"; empty when unknown
  std::string collate, ctype;  ///< the libc locales (an ICU database's too)
  std::string locale;          ///< the ICU or builtin locale

  bool known() const { return !provider.empty(); }
  /// "libc C.UTF-8", "icu de-DE", as the manifest's collations name a database default.
  std::string describe() const { return provider + " " + (provider == "libc" ? collate : locale); }
  /// The locale a describe() text names (a libc one for both collate and ctype); unknown when
  /// the text is not one.
  static database_locale described(const std::string& text) {
    database_locale parsed;
    auto space = text.find(' ');
    if (space == std::string::npos) return parsed;
    parsed.provider = text.substr(0, space);
    (parsed.provider == "libc" ? parsed.collate : parsed.locale) = text.substr(space + 1);
    if (parsed.provider == "libc") parsed.ctype = parsed.collate;
    return parsed;
  }
};

namespace detail {

// CREATE DATABASE options that make a database like `source` on a server of `major`: nothing when
// the source's locale is unknown or C (the server's own), template0 and the source's encoding
// and locale otherwise; a SQL_ASCII database's bytes are valid in no other encoding.
inline std::string database_options_like(const database_locale& source, int major) {
  if (source.encoding == "SQL_ASCII") return " TEMPLATE template0 ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'";
  auto is_c = [](const std::string& name) { return name.empty() || name == "C" || name == "POSIX"; };
  if (!source.known() || (source.provider == "libc" && is_c(source.collate) && is_c(source.ctype))) return "";
  std::string options = " TEMPLATE template0";
  if (!source.encoding.empty()) options += " ENCODING " + quote_literal(source.encoding);
  if (!source.collate.empty()) options += " LC_COLLATE " + quote_literal(source.collate);
  if (!source.ctype.empty()) options += " LC_CTYPE " + quote_literal(source.ctype);
  if (source.provider == "libc") return options;
  int needs = source.provider == "icu" ? 15 : 17;
  if (major < needs)
    throw could_not_verify("the source database's default collation is " + source.describe() + ", which PostgreSQL " +
                           std::to_string(major) + " cannot make: drill on PostgreSQL " + std::to_string(needs) + " or newer");
  return options + " LOCALE_PROVIDER " + source.provider + (source.provider == "icu" ? " ICU_LOCALE " : " BUILTIN_LOCALE ") +
         quote_literal(source.locale);
}

}  // namespace detail

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
  /// The pg_restore and psql that restore into this server: by default the host's, at least
  /// `min_major`; a local server answers with its own installation's tools.
  virtual pg_binaries client_tools(binary_search search, std::optional<int> min_major) const {
    search.required = {"pg_restore", "psql"};
    return find_binaries(search, min_major);
  }
  /// The pid on this host of the server process the server itself calls `server_pid`
  /// (pg_backend_pid(), postmaster.pid): 0 when its processes are not this host's.
  virtual pid_t host_pid_of(pid_t server_pid) const {
    (void)server_pid;
    return 0;
  }
  /// A server other work shares (existing provider): the drill leaves nothing on it but what it
  /// created and drops.
  virtual bool shared() const { return false; }
  /// Create a role the backup needs and the server lacks (the scenario's `roles`); a shared
  /// server marks it and drops it at stop().
  virtual void create_role(const std::string& name) {
    pqxx::connection connection(admin().conninfo());
    pqxx::nontransaction(connection).exec("CREATE ROLE " + detail::quote_ident(name));
  }
  /// The empty database to restore into, like the source's (detail::database_options_like). A
  /// throwaway server creates `pgdrill_restore`; could_not_verify, saying what to install, when
  /// it cannot provide the source's locale. A shared one has its own uniquely named scratch database.
  virtual endpoint restore_target(const database_locale& source) {
    pqxx::connection connection(admin().conninfo());
    try {
      pqxx::nontransaction(connection).exec("CREATE DATABASE pgdrill_restore" + detail::database_options_like(source, major_version()));
    } catch (const pqxx::sql_error& failure) {
      if (!source.known()) throw;
      throw could_not_verify("the drill's server (" + describe() + ") cannot make a database like the source's (" +
                             source.describe() + (source.encoding.empty() ? "" : ", " + source.encoding) + "): " +
                             detail::trim(failure.what()) + "; install that locale where the server runs (" +
                             (source.provider == "libc" ? "Debian's locales-all, or localedef" : "a PostgreSQL built with ICU") +
                             "), or drill in an image that has it");
    }
    return admin().with_database("pgdrill_restore");
  }
};

/// Readiness: a real connection (authentication included) within a deadline, polled every 2 ms
/// at first, the pause doubling up to `interval`; each poll first checks the server is still alive, and a failure carries the
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
  // A cached server is ready in tens of milliseconds: look often at first, then every `interval`.
  auto pause = std::min(strategy.interval, std::chrono::milliseconds(2));
  while (true) {
    signals::throw_if_interrupted();
    if (!alive()) throw provisioning_error("server exited before it was ready\n" + diagnostics());
    std::string last_error = detail::try_connect(target);
    if (last_error.empty()) return;
    if (std::chrono::steady_clock::now() >= deadline)
      throw provisioning_error("server not ready after " + std::to_string(strategy.deadline.count() / 1000) +
                               "s at " + target.describe() + "; last connection error: " + last_error + "\n" +
                               diagnostics());
    std::this_thread::sleep_for(pause);
    pause = std::min(strategy.interval, pause * 2);
  }
}

}  // namespace pgdrill
