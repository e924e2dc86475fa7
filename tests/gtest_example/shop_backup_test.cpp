// Restore drills as ordinary GoogleTest tests. SHOP_BACKUP_DIR names the directory holding the
// backups (written by `pgdrill dump`, manifest beside each); the newest one is drilled.
#include <cstdlib>

#include <pgdrill/gtest.hpp>

namespace {

std::filesystem::path backup_dir() {
  const char* dir = std::getenv("SHOP_BACKUP_DIR");
  return dir ? dir : "backups";
}

// The backup is restored once for the whole suite; every test gets its own copy of the restored
// database, so a test may write without disturbing the next.
class shop_backup : public pgdrill::testing::restored_backup<shop_backup> {
 protected:
  static void SetUpTestSuite() { restore(backup_dir(), {}, {}, "shop_*.dump"); }
};

TEST_F(shop_backup, has_every_table) { EXPECT_TRUE(tables_present({"customers", "orders"}, /*non_empty=*/true)); }

TEST_F(shop_backup, every_customer_came_back) { EXPECT_TRUE(row_count_is("customers", 1000)); }

TEST_F(shop_backup, orders_within_expected_bounds) { EXPECT_TRUE(row_count_between("orders", 4000, 6000)); }

TEST_F(shop_backup, row_counts_and_content_match_the_manifest) {
  ASSERT_NE(backup_manifest(), nullptr) << "pgdrill dump writes a manifest beside the backup";
  EXPECT_TRUE(row_counts_match_manifest());
  EXPECT_TRUE(checksums_match_manifest());
}

TEST_F(shop_backup, no_order_lost_its_customer) {
  EXPECT_TRUE(query_returns_no_rows(
      "SELECT o.id FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL"));
}

TEST_F(shop_backup, revenue_is_positive) { EXPECT_TRUE(query_returns("SELECT sum(amount) FROM orders", 0, ">")); }

TEST_F(shop_backup, queries_of_your_own) {
  // db() is a libpqxx connection to the restored database, for anything the helpers do not cover.
  pqxx::nontransaction tx(db());
  EXPECT_EQ(tx.exec("SELECT count(DISTINCT customer_id) FROM orders")[0][0].as<int>(), 1000);
}

}  // namespace

// Every assertion of a scenario file as its own test, named after the assertion.
PGDRILL_SCENARIO_TESTS(shop_scenario, std::getenv("SHOP_SCENARIO") ? std::getenv("SHOP_SCENARIO") : "shop.json");
