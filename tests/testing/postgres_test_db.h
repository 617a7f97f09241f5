#ifndef CHAT_TESTS_TESTING_POSTGRES_TEST_DB_H_
#define CHAT_TESTS_TESTING_POSTGRES_TEST_DB_H_

#include <string>

#include "absl/status/statusor.h"

namespace chat::testing {

// The PostgreSQL server tests may use: CHAT_TEST_POSTGRES_DSN, a libpq
// key=value connection string (scripts/test.sh starts a throw-away cluster
// and sets it). Empty when unset.
std::string PostgresTestDsn();

// True when CHAT_TEST_REQUIRE_POSTGRES=1 (CI): a missing server is then a
// failure rather than a skipped test.
bool PostgresRequired();

// Creates a new, empty schema on the test server and returns a key=value
// connection string whose search_path is that schema, so every test (or every
// group of replicas in one test) starts from nothing without creating a
// database.
absl::StatusOr<std::string> MakeFreshPostgresSchema();

}  // namespace chat::testing

#endif  // CHAT_TESTS_TESTING_POSTGRES_TEST_DB_H_
