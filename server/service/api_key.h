#ifndef CHAT_SERVER_SERVICE_API_KEY_H_
#define CHAT_SERVER_SERVICE_API_KEY_H_

// The format of API keys: `chatd_<id>_<secret>`, with a 12-hex-digit public
// id (6 random bytes) and a 64-hex-digit secret (32 random bytes). Only the
// SHA-256 of the secret is stored, so a copy of the store grants nothing.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/store/key_store.h"

namespace chat {

inline constexpr absl::string_view kApiKeyPrefix = "chatd_";
inline constexpr size_t kApiKeyIdHexDigits = 12;
inline constexpr size_t kApiKeySecretHexDigits = 64;

// A key just made: `plaintext` is shown once and never stored.
struct GeneratedApiKey {
  std::string plaintext;
  store::ApiKey record;
};

// Makes a fresh key for `tenant` with random id and secret. INTERNAL if the
// system's random generator fails (never with a usable key).
absl::StatusOr<GeneratedApiKey> GenerateApiKey(absl::string_view tenant,
                                               absl::string_view name,
                                               absl::Time created_at,
                                               absl::Time expires_at,
                                               const store::KeyLimits& limits);

// A presented key split into its parts.
struct ParsedApiKey {
  std::string id;
  std::string secret;
};

// Splits `key`. NOT_FOUND ("invalid API key") unless it has exactly the
// generated shape: a malformed key gets the same answer as an unknown one.
absl::StatusOr<ParsedApiKey> ParseApiKey(absl::string_view key);

// Lowercase hex SHA-256 of `secret`, as ApiKey::secret_hash holds it.
std::string HashSecret(absl::string_view secret);

// Whether `secret` hashes to `record.secret_hash`, compared in constant time.
bool VerifySecret(absl::string_view secret, const store::ApiKey& record);

// Whether `a` equals `b`, in a time that depends on neither's contents nor on
// where they differ (both are hashed, then compared with CRYPTO_memcmp).
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// Whether `id` has the shape of a key id (12 lowercase hex digits).
bool IsApiKeyId(absl::string_view id);

// Generates a key and stores it in `keys`, trying a fresh id should the
// random one be taken. The stored record and the plaintext key.
absl::StatusOr<GeneratedApiKey> CreateStoredApiKey(
    store::KeyStore& keys, absl::string_view tenant, absl::string_view name,
    absl::Time now, absl::Time expires_at, const store::KeyLimits& limits);

}  // namespace chat

#endif  // CHAT_SERVER_SERVICE_API_KEY_H_
