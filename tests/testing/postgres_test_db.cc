#include "tests/testing/postgres_test_db.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace chat::testing {

std::string PostgresTestDsn() {
  const char* dsn = std::getenv("CHAT_TEST_POSTGRES_DSN");
  return dsn == nullptr ? "" : dsn;
}

bool PostgresRequired() {
  const char* required = std::getenv("CHAT_TEST_REQUIRE_POSTGRES");
  return required != nullptr && std::string(required) == "1";
}

absl::StatusOr<std::string> MakeFreshPostgresSchema() {
  const std::string dsn = PostgresTestDsn();
  if (dsn.empty())
    return absl::FailedPreconditionError("CHAT_TEST_POSTGRES_DSN is not set");
  static std::atomic<int> counter{0};
  const std::string schema =
      absl::StrCat("t_", getpid(), "_", absl::ToUnixMicros(absl::Now()), "_",
                   counter.fetch_add(1));
  PGconn* conn = PQconnectdb(dsn.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string error = PQerrorMessage(conn);
    PQfinish(conn);
    return absl::UnavailableError(
        absl::StrCat("cannot reach the test PostgreSQL: ", error));
  }
  PGresult* result =
      PQexec(conn, absl::StrCat("CREATE SCHEMA ", schema).c_str());
  const bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
  std::string error = PQerrorMessage(conn);
  PQclear(result);
  PQfinish(conn);
  if (!ok)
    return absl::InternalError(absl::StrCat("CREATE SCHEMA failed: ", error));
  // Later keywords override earlier ones in a key=value string.
  return absl::StrCat(dsn, " options='-c search_path=", schema, "'");
}

}  // namespace chat::testing
