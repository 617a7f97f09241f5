#include "server/store/key_columns.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace chat::store {
namespace {

bool HasNul(absl::string_view text) {
  return absl::StrContains(text, absl::string_view("\0", 1));
}

}  // namespace

absl::Status ValidateApiKey(const ApiKey& key) {
  // Names the field, never its value: the hash is not the secret, but a
  // caller's mistake could put the key itself in any of these.
  const struct {
    const char* field;
    const std::string& value;
  } texts[] = {{"id", key.id},
               {"tenant", key.tenant},
               {"name", key.name},
               {"secret_hash", key.secret_hash}};
  for (const auto& [field, value] : texts) {
    if (HasNul(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("key ", field, " must not contain a NUL byte"));
    }
  }
  for (const std::string& model : key.limits.allowed_models) {
    if (model.empty() || HasNul(model) || absl::StrContains(model, '\n')) {
      return absl::InvalidArgumentError(
          "an allowed model name must be non-empty, without newlines or NUL "
          "bytes");
    }
  }
  return absl::OkStatus();
}

std::string JoinModels(const std::vector<std::string>& models) {
  return absl::StrJoin(models, "\n");
}

std::vector<std::string> SplitModels(absl::string_view column) {
  if (column.empty()) return {};
  return absl::StrSplit(column, '\n');
}

absl::string_view BudgetPeriodName(BudgetPeriod period) {
  switch (period) {
    case BudgetPeriod::kNone:
      return "";
    case BudgetPeriod::kDay:
      return "day";
    case BudgetPeriod::kMonth:
      return "month";
  }
  return "";  // Unreachable: the switch names every BudgetPeriod.
}

absl::StatusOr<BudgetPeriod> ParseBudgetPeriod(absl::string_view column) {
  if (column.empty()) return BudgetPeriod::kNone;
  if (column == "day") return BudgetPeriod::kDay;
  if (column == "month") return BudgetPeriod::kMonth;
  return absl::InternalError(
      absl::StrCat("stored key has an unknown budget_period \"", column, "\""));
}

}  // namespace chat::store
