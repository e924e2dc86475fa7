// Per-test databases: copies of a template on a drill's own server, isolated from each other and
// the template, dropped after use, and a clear error when the template cannot be copied.

#include <thread>

#include "support.hpp"

using namespace pgdrill;

namespace {

// A server with a template database `shop` of 1,000 customers (the demo seed).
struct template_server {
  std::unique_ptr<local_server> server = testkit::start_server();

  template_server() {
    testkit::psql(*server, "CREATE DATABASE shop");
    testkit::psql(*server, testkit::read_file(std::filesystem::path(PGDRILL_SOURCE_DIR) / "ci" / "demo-seed.sql"), "shop");
  }

  std::string clone_databases() const {
    return testkit::psql(*server, "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname LIKE 'pgdrill_clone_%'");
  }
};

long long customers(const endpoint& database) {
  pqxx::connection connection(database.conninfo());
  return pqxx::nontransaction(connection).exec("SELECT count(*) FROM customers")[0][0].as<long long>();
}

}  // namespace

TEST(clones, each_copy_is_isolated_from_the_others_and_the_template) {
  template_server shop;
  clone_pool pool(*shop.server, "shop");
  auto first = pool.acquire();
  auto second = pool.acquire();
  EXPECT_NE(first.name(), second.name());
  {
    pqxx::connection connection(first.target().conninfo());
    pqxx::nontransaction(connection).exec("TRUNCATE customers CASCADE");
  }
  EXPECT_EQ(customers(first.target()), 0);
  EXPECT_EQ(customers(second.target()), 1000) << "a write in one copy is invisible in another";
  EXPECT_EQ(customers(shop.server->admin().with_database("shop")), 1000) << "and in the template";
}

TEST(clones, a_released_copy_is_dropped_and_the_pool_drops_the_rest) {
  template_server shop;
  std::string released;
  {
    clone_pool pool(*shop.server, "shop", clone_options{3, clone_strategy::file_copy});
    {
      auto used = pool.acquire();
      released = used.name();
      pqxx::connection left_open(used.target().conninfo());  // a test that forgot to close: FORCE ends it
      EXPECT_EQ(customers(used.target()), 1000);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (shop.clone_databases().find(released) != std::string::npos && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(shop.clone_databases().find(released), std::string::npos) << "dropped in the background after release";
    EXPECT_NE(shop.clone_databases(), "\n") << "copies made ahead wait in the pool";
  }
  EXPECT_EQ(shop.clone_databases(), "\n") << "the pool drops the copies nobody took";
}

TEST(clones, drop_waits_until_the_copy_is_gone) {
  template_server shop;
  clone_pool pool(*shop.server, "shop");
  auto copy = pool.acquire();
  auto name = copy.name();
  copy.drop();
  EXPECT_EQ(shop.clone_databases().find(name), std::string::npos);
}

TEST(clones, a_copy_outliving_its_pool_is_still_dropped) {
  template_server shop;
  std::optional<database_clone> kept;
  {
    clone_pool pool(*shop.server, "shop", clone_options{1, clone_strategy::wal_log});
    kept.emplace(pool.acquire());
  }
  EXPECT_EQ(customers(kept->target()), 1000) << "WAL_LOG copies too";
  kept.reset();
  EXPECT_EQ(shop.clone_databases(), "\n");
}

// A template in use fails the acquire() that needed the copy, saying why; once the session is gone
// the next acquire() gets a copy (one test lost, not the rest of the suite).
TEST(clones, a_template_in_use_cannot_be_copied_says_why_and_the_pool_recovers) {
  template_server shop;
  auto busy = std::make_unique<pqxx::connection>(shop.server->admin().with_database("shop").conninfo());
  clone_pool pool(*shop.server, "shop", clone_options{1, clone_strategy::file_copy});
  try {
    pool.acquire();
    FAIL() << "a template with a session cannot be copied";
  } catch (const could_not_verify& failure) {
    EXPECT_NE(std::string(failure.what()).find("other sessions stay connected"), std::string::npos) << failure.what();
  }
  busy.reset();
  auto copy = pool.acquire();
  EXPECT_EQ(customers(copy.target()), 1000);
}

TEST(clones, a_missing_template_is_the_servers_error) {
  template_server shop;
  clone_pool pool(*shop.server, "no_such_database");
  EXPECT_THROW(pool.acquire(), pqxx::sql_error);
}
