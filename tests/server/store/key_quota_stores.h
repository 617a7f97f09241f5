#ifndef CHAT_TESTS_SERVER_STORE_KEY_QUOTA_STORES_H_
#define CHAT_TESTS_SERVER_STORE_KEY_QUOTA_STORES_H_

// The stores key_store_test and quota_store_test run their contract on, and
// the fixture they share: each test gets a fresh, empty database (on
// PostgreSQL, a schema of its own) opened as one store, or as two store
// instances on the same database for the tests that two replicas (or two
// processes on one SQLite file) see each other's keys and counters.

#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/store/conversation_store.h"
#include "tests/testing/postgres_test_db.h"
#include "tests/testing/status_matchers.h"

namespace chat::testing {

using StoreList = std::vector<std::unique_ptr<store::ConversationStore>>;

struct KeyQuotaStoreFactory {
  std::string name;
  // Opens `count` store instances on one new, empty database; any files go
  // under `dir`.
  std::function<absl::StatusOr<StoreList>(const std::string& dir, int count)>
      open;
};

inline void PrintTo(const KeyQuotaStoreFactory& factory, std::ostream* os) {
  *os << factory.name;
}

inline absl::StatusOr<StoreList> OpenEach(const std::string& url, int count) {
  StoreList stores;
  for (int i = 0; i < count; ++i) {
    absl::StatusOr<std::unique_ptr<store::ConversationStore>> opened =
        store::OpenConversationStore(url);
    if (!opened.ok()) return opened.status();
    stores.push_back(*std::move(opened));
  }
  return stores;
}

inline KeyQuotaStoreFactory SqliteFileStores() {
  return {"SqliteFile", [](const std::string& dir, int count) {
            return OpenEach(absl::StrCat("sqlite:", dir, "/chat.db"), count);
          }};
}

inline KeyQuotaStoreFactory PostgresStores() {
  return {"Postgres",
          [](const std::string&, int count) -> absl::StatusOr<StoreList> {
            absl::StatusOr<std::string> conninfo = MakeFreshPostgresSchema();
            if (!conninfo.ok()) return conninfo.status();
            return OpenEach(absl::StrCat("postgres:", *conninfo), count);
          }};
}

// Every store, one instance each.
inline std::vector<KeyQuotaStoreFactory> AllKeyQuotaStores() {
  return {
      {"Memory",
       [](const std::string&, int count) { return OpenEach("memory", count); }},
      SqliteFileStores(),
      // Reads go to the writer connection when there are no readers.
      {"SqliteInMemory",
       [](const std::string&, int count) {
         return OpenEach("sqlite::memory:", count);
       }},
      PostgresStores(),
  };
}

// The stores that several instances can share.
inline std::vector<KeyQuotaStoreFactory> SharedKeyQuotaStores() {
  return {SqliteFileStores(), PostgresStores()};
}

inline std::string KeyQuotaStoreName(
    const ::testing::TestParamInfo<KeyQuotaStoreFactory>& info) {
  return info.param.name;
}

// Opens `instances()` stores on one fresh database before each test; skips
// PostgreSQL when CHAT_TEST_POSTGRES_DSN is unset (fails instead under
// CHAT_TEST_REQUIRE_POSTGRES=1), as conversation_store_test does.
class KeyQuotaStoreTest
    : public ::testing::TestWithParam<KeyQuotaStoreFactory> {
 protected:
  virtual int instances() const { return 1; }

  void SetUp() override {
    if (GetParam().name == "Postgres" && PostgresTestDsn().empty()) {
      if (PostgresRequired()) {
        GTEST_FAIL() << "CHAT_TEST_REQUIRE_POSTGRES=1 but "
                        "CHAT_TEST_POSTGRES_DSN is unset";
      }
      GTEST_SKIP() << "set CHAT_TEST_POSTGRES_DSN to run against PostgreSQL";
    }
    std::string pattern = ::testing::TempDir() + "key_quota_store.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << pattern;
    dir_ = pattern;
    absl::StatusOr<StoreList> stores = GetParam().open(dir_, instances());
    ASSERT_THAT(stores, IsOk());
    stores_ = *std::move(stores);
  }

  void TearDown() override {
    stores_.clear();
    if (dir_.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  store::ConversationStore& store(int i = 0) { return *stores_[i]; }

  std::string dir_;
  StoreList stores_;
};

// The same, with two instances on the one database.
class SharedKeyQuotaStoreTest : public KeyQuotaStoreTest {
 protected:
  int instances() const override { return 2; }
};

}  // namespace chat::testing

#endif  // CHAT_TESTS_SERVER_STORE_KEY_QUOTA_STORES_H_
