#ifndef CHAT_SERVER_STORE_KEY_STORE_H_
#define CHAT_SERVER_STORE_KEY_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace chat::store {

// The period a token budget covers; it resets at the start of each UTC day
// or calendar month.
enum class BudgetPeriod { kNone, kDay, kMonth };

// What one API key may use. Zero (or empty) means "no limit of this kind".
struct KeyLimits {
  int64_t requests_per_minute = 0;
  int64_t tokens_per_minute = 0;
  // Concurrent ChatStream calls.
  int64_t max_streams = 0;
  // Ceiling on one turn's max_tokens.
  int64_t max_tokens = 0;
  // Models the key may ask for; empty: any.
  std::vector<std::string> allowed_models;
  // Tokens (input + output) per `budget_period`.
  int64_t budget_tokens = 0;
  BudgetPeriod budget_period = BudgetPeriod::kNone;
};

// A stored API key. The key itself (`chatd_<id>_<secret>`) is shown once at
// creation and never stored: only a hash of its secret is.
struct ApiKey {
  // Public: safe to log and to show; names the key to support and in usage.
  std::string id;
  std::string tenant;
  // A label chosen by whoever created the key ("web", "ci").
  std::string name;
  // Lowercase hex SHA-256 of the secret part.
  std::string secret_hash;
  absl::Time created_at;
  // InfiniteFuture(): never expires.
  absl::Time expires_at = absl::InfiniteFuture();
  // InfiniteFuture(): not revoked.
  absl::Time revoked_at = absl::InfiniteFuture();
  KeyLimits limits;
};

// API keys shared by every replica on one store. Thread-safe; calls block on
// I/O. Times are kept at microsecond precision.
class KeyStore {
 public:
  virtual ~KeyStore() = default;

  // Stores `key`. kAlreadyExists if its id is taken; nothing is written.
  virtual absl::Status CreateKey(const ApiKey& key) = 0;

  // kNotFound if no key has this id (revoked keys are still found).
  virtual absl::StatusOr<ApiKey> GetKey(absl::string_view id) = 0;

  // Every key of `tenant` (every key if `tenant` is empty), revoked ones
  // included, oldest first (ties by id).
  virtual absl::StatusOr<std::vector<ApiKey>> ListKeys(
      absl::string_view tenant) = 0;

  // Marks the key revoked at `now`. Returns false if no key has this id; a
  // key already revoked keeps its first revocation time and returns true.
  virtual absl::StatusOr<bool> RevokeKey(absl::string_view id,
                                         absl::Time now) = 0;

  // Whether any key exists that is neither revoked nor expired at `now`.
  virtual absl::StatusOr<bool> HasActiveKeys(absl::Time now) = 0;
};

}  // namespace chat::store

#endif  // CHAT_SERVER_STORE_KEY_STORE_H_
