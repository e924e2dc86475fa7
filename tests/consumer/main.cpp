// Uses the library the way a user's program would: parse a scenario, find PostgreSQL.
#include <iostream>

#include <pgdrill/pgdrill.hpp>

int main() {
  auto plan = pgdrill::parse_scenario(
      nlohmann::json::parse(R"({"name": "consumer", "backup": {"file": "x.dump"},
        "assertions": [{"type": "row_count", "table": "t", "equals": 1}]})"),
      "/", "inline");
  auto tools = pgdrill::find_binaries(pgdrill::binary_search::from_environment());
  std::cout << "scenario " << plan.name << " with PostgreSQL " << tools.major << "\n";
  return 0;
}
