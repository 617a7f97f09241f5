#include "server/service/api_key.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace chat {
namespace {

constexpr size_t kSha256Bytes = 32;

absl::StatusOr<std::string> RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()),
                 static_cast<int>(raw.size())) != 1) {
    return absl::InternalError("the random number generator failed");
  }
  return absl::BytesToHexString(raw);  // Lowercase.
}

std::array<unsigned char, kSha256Bytes> Sha256(absl::string_view data) {
  std::array<unsigned char, kSha256Bytes> digest{};
  unsigned int length = 0;
  // EVP_Digest fails only when OpenSSL is unusable (allocation failure);
  // the zero digest left then matches no stored hash of a real secret.
  EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(),
             nullptr);
  return digest;
}

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<GeneratedApiKey> GenerateApiKey(absl::string_view tenant,
                                               absl::string_view name,
                                               absl::Time created_at,
                                               absl::Time expires_at,
                                               const store::KeyLimits& limits) {
  absl::StatusOr<std::string> id = RandomHex(kApiKeyIdHexDigits / 2);
  if (!id.ok()) return id.status();
  absl::StatusOr<std::string> secret = RandomHex(kApiKeySecretHexDigits / 2);
  if (!secret.ok()) return secret.status();
  GeneratedApiKey key;
  key.plaintext = absl::StrCat(kApiKeyPrefix, *id, "_", *secret);
  key.record.id = *std::move(id);
  key.record.tenant = std::string(tenant);
  key.record.name = std::string(name);
  key.record.secret_hash = HashSecret(*secret);
  key.record.created_at = created_at;
  key.record.expires_at = expires_at;
  key.record.limits = limits;
  return key;
}

absl::StatusOr<ParsedApiKey> ParseApiKey(absl::string_view key) {
  const absl::Status invalid = absl::NotFoundError("invalid API key");
  if (key.size() != kApiKeyPrefix.size() + kApiKeyIdHexDigits + 1 +
                        kApiKeySecretHexDigits ||
      !absl::StartsWith(key, kApiKeyPrefix)) {
    return invalid;
  }
  key.remove_prefix(kApiKeyPrefix.size());
  absl::string_view id = key.substr(0, kApiKeyIdHexDigits);
  if (key[kApiKeyIdHexDigits] != '_') return invalid;
  absl::string_view secret = key.substr(kApiKeyIdHexDigits + 1);
  if (!IsLowerHex(id) || !IsLowerHex(secret)) return invalid;
  return ParsedApiKey{std::string(id), std::string(secret)};
}

std::string HashSecret(absl::string_view secret) {
  std::array<unsigned char, kSha256Bytes> digest = Sha256(secret);
  return absl::BytesToHexString(absl::string_view(
      reinterpret_cast<const char*>(digest.data()), digest.size()));
}

bool VerifySecret(absl::string_view secret, const store::ApiKey& record) {
  // Compare the hex digests, which are equally long whatever was presented.
  const std::string presented = HashSecret(secret);
  if (record.secret_hash.size() != presented.size()) return false;
  return CRYPTO_memcmp(presented.data(), record.secret_hash.data(),
                       presented.size()) == 0;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  std::array<unsigned char, kSha256Bytes> da = Sha256(a);
  std::array<unsigned char, kSha256Bytes> db = Sha256(b);
  return CRYPTO_memcmp(da.data(), db.data(), kSha256Bytes) == 0;
}

bool IsApiKeyId(absl::string_view id) {
  return id.size() == kApiKeyIdHexDigits && IsLowerHex(id);
}

absl::StatusOr<GeneratedApiKey> CreateStoredApiKey(
    store::KeyStore& keys, absl::string_view tenant, absl::string_view name,
    absl::Time now, absl::Time expires_at, const store::KeyLimits& limits) {
  // 48 random bits: a collision is rare, and three in a row means the
  // generator is broken.
  constexpr int kAttempts = 3;
  absl::Status last;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    absl::StatusOr<GeneratedApiKey> key =
        GenerateApiKey(tenant, name, now, expires_at, limits);
    if (!key.ok()) return key.status();
    last = keys.CreateKey(key->record);
    if (last.ok()) return key;
    if (!absl::IsAlreadyExists(last)) return last;
  }
  return absl::InternalError(
      absl::StrCat("no free key id after ", kAttempts, " attempts"));
}

}  // namespace chat
