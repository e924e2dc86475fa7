// The GoogleTest harness as users run it, all tests in one process: each test writes into its own
// copy of the restored database and sees only its own write, in whatever order the tests run;
// the copy of a finished test is dropped; share_one_database() gives every test the restored one.

#include <thread>

#include "support.hpp"

namespace {

// Names of the copies that exist now.
std::string copies_on(const pgdrill::endpoint& server) {
  pqxx::connection connection(server.with_database("postgres").conninfo());
  return pqxx::nontransaction(connection).exec("SELECT coalesce(string_agg(datname, ','), '') FROM pg_database WHERE datname LIKE 'pgdrill_clone_%'")[0][0]
      .c_str();
}

class per_test : public pgdrill::testing::restored_backup<per_test> {
 protected:
  static void SetUpTestSuite() {
    backup_ = std::make_unique<pgdrill::testkit::demo_backup>("clones");
    restore(backup_->file);
  }
  static void TearDownTestSuite() {
    restored_backup::TearDownTestSuite();
    backup_.reset();
  }

  // Every test deletes the orders of 100 customers: with shared data the second would find none.
  void deletes_its_own_rows() {
    EXPECT_NE(endpoint().dbname, restored().dbname) << "a copy, not the restored database";
    auto deleted = pqxx::nontransaction(db()).exec("DELETE FROM orders WHERE customer_id <= 100").affected_rows();
    EXPECT_GT(deleted, 0U) << "another test's delete is visible";
    EXPECT_TRUE(query_returns("SELECT count(*) FROM orders WHERE customer_id <= 100", 0));
    EXPECT_TRUE(checksums_match_manifest("customers")) << "the copy holds the backup's data";
    databases_used_.push_back(endpoint().dbname);
  }

  static inline std::unique_ptr<pgdrill::testkit::demo_backup> backup_;
  static inline std::vector<std::string> databases_used_;
};

TEST_F(per_test, first_writer_sees_only_its_write) { deletes_its_own_rows(); }
TEST_F(per_test, second_writer_sees_only_its_write) { deletes_its_own_rows(); }

// Checks that read with connections of their own (schema objects, amcheck, full reads) read this
// test's copy too, not the restored database: a view added here fails the schema comparison.
TEST_F(per_test, checks_with_their_own_connections_read_this_tests_copy) {
  EXPECT_TRUE(check(pgdrill::schema_objects_assertion{}));
  pqxx::nontransaction(db()).exec("CREATE VIEW added_by_this_test AS SELECT 1 AS one");
  auto after = check(pgdrill::schema_objects_assertion{});
  EXPECT_FALSE(after) << "the view in this test's copy went unseen";
  EXPECT_NE(std::string(after.message()).find("view"), std::string::npos) << after.message();
}

TEST_F(per_test, copies_of_finished_tests_are_dropped) {
  ASSERT_FALSE(databases_used_.empty()) << "run the whole suite in one process";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto any_left = [&] {
    auto copies = copies_on(endpoint());
    for (const auto& name : databases_used_)
      if (copies.find(name) != std::string::npos) return true;
    return false;
  };
  while (any_left() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(any_left()) << copies_on(endpoint());
}

class shared : public pgdrill::testing::restored_backup<shared> {
 protected:
  static void SetUpTestSuite() {
    backup_ = std::make_unique<pgdrill::testkit::demo_backup>("shared");
    share_one_database();
    restore(backup_->file);
  }
  static void TearDownTestSuite() {
    restored_backup::TearDownTestSuite();
    backup_.reset();
  }
  static inline std::unique_ptr<pgdrill::testkit::demo_backup> backup_;
};

TEST_F(shared, every_test_uses_the_restored_database) {
  EXPECT_EQ(endpoint().dbname, restored().dbname);
  EXPECT_EQ(copies_on(endpoint()), "");
}

}  // namespace
