// Checksumming streams: a table far larger than the runner may use keeps its memory flat.
#include <sys/resource.h>

#include "support.hpp"

using namespace pgdrill;
using testkit::psql;

TEST(checksum_memory, stays_flat_on_a_table_larger_than_the_runner_may_use) {
  // About 400 MB of table text; the checksum process runs with its address space capped at
  // 256 MB and must still finish, and its peak RSS must stay small.
  auto server = testkit::start_server();
  psql(*server, "CREATE TABLE big AS SELECT i AS id, repeat(md5(i::text), 12) AS payload FROM generate_series(1, 1000000) i");
  auto table_bytes = std::stoll(psql(*server, "SELECT pg_table_size('big')"));
  EXPECT_GT(table_bytes, 300LL << 20);
  // prlimit from util-linux caps the child's address space; the runner does the work.
  command capped("/usr/bin/prlimit", {"--as=268435456", "--", PGDRILL_RUNNER_PATH, "checksum", "public.big"});
  capped.with_env(server->admin().libpq_env());
  auto result = run(capped, run_options::within(std::chrono::minutes(10)));
  ASSERT_TRUE(result.ok()) << result.describe() << result.err_tail;
  EXPECT_NE(result.out.find("public.big rows=1000000 checksum="), std::string::npos) << result.out;
  rusage children{};
  ::getrusage(RUSAGE_CHILDREN, &children);
  long peak_kib = children.ru_maxrss;  // the largest reaped child: the runner (psql is smaller)
  EXPECT_LT(peak_kib, 64L * 1024) << "peak RSS " << peak_kib << " KiB while checksumming " << (table_bytes >> 20) << " MiB";
}
