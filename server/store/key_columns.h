#ifndef CHAT_SERVER_STORE_KEY_COLUMNS_H_
#define CHAT_SERVER_STORE_KEY_COLUMNS_H_

// How an ApiKey is kept in SQL columns, shared by the SQLite and PostgreSQL
// stores (and the checks the memory store applies too, so all three accept
// the same keys).

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/store/key_store.h"

namespace chat::store {

// kInvalidArgument if `key` cannot be stored and read back exactly: a NUL
// byte in a text field (PostgreSQL TEXT cannot hold one, and libpq takes
// parameters as C strings), or an allowed model that is empty or holds a
// newline (the column joins the names with newlines).
absl::Status ValidateApiKey(const ApiKey& key);

// The allowed_models column: the names joined with '\n'; "" for none.
std::string JoinModels(const std::vector<std::string>& models);
std::vector<std::string> SplitModels(absl::string_view column);

// The budget_period column: "", "day" or "month".
absl::string_view BudgetPeriodName(BudgetPeriod period);
// kInternal for any other text: the row was not written by chatd.
absl::StatusOr<BudgetPeriod> ParseBudgetPeriod(absl::string_view column);

}  // namespace chat::store

#endif  // CHAT_SERVER_STORE_KEY_COLUMNS_H_
