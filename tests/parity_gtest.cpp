// The scenario named by PGDRILL_PARITY_SCENARIO as GoogleTest tests, exactly as a user writes
// them; parity_test.cpp runs this binary and compares its outcomes with `pgdrill run`'s.
#include <cstdlib>

#include <pgdrill/gtest.hpp>

PGDRILL_SCENARIO_TESTS(parity, std::getenv("PGDRILL_PARITY_SCENARIO") ? std::getenv("PGDRILL_PARITY_SCENARIO") : "");
