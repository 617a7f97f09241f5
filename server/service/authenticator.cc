#include "server/service/authenticator.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"
#include "common/net_address.h"
#include "server/service/api_key.h"

namespace chat {
namespace {

absl::string_view ToView(const grpc::string_ref& s) {
  return absl::string_view(s.data(), s.size());
}
absl::string_view ToView(const std::string& s) { return s; }

absl::Status Unauthenticated(const char* message) {
  return absl::UnauthenticatedError(message);
}

Caller AnonymousCaller() {
  Caller caller;
  caller.tenant = kAnonymousTenant;
  return caller;
}

}  // namespace

bool IsLoopbackPeer(absl::string_view peer) {
  if (absl::ConsumePrefix(&peer, "ipv4:") ||
      absl::ConsumePrefix(&peer, "ipv6:")) {
    return IsLoopbackHost(peer);
  }
  return false;  // unix:, or a transport we do not know.
}

bool IsInProcessPeer(absl::string_view peer) {
  return peer == "unknown" || peer == "inproc";
}

namespace {

// CredentialsOf for gRPC's metadata or the embedded gateway's pairs.
template <typename Metadata>
CallCredentials CredentialsFrom(const Metadata& metadata,
                                absl::string_view peer) {
  CallCredentials credentials;
  std::optional<std::string> bearer;
  std::optional<std::string> api_key;
  const bool in_process = IsInProcessPeer(peer);
  bool from_loopback = in_process || IsLoopbackPeer(peer);
  bool forwarded = false;
  for (const auto& [name, value] : metadata) {
    const absl::string_view key = ToView(name);
    const absl::string_view text = absl::StripAsciiWhitespace(ToView(value));
    if (key == "authorization") {
      if (text.empty() || bearer.has_value()) continue;
      absl::string_view token = text;
      if (token.size() > 7 &&
          absl::EqualsIgnoreCase(token.substr(0, 7), "bearer ")) {
        bearer = std::string(absl::StripAsciiWhitespace(token.substr(7)));
      } else {
        bearer = "";  // Another scheme: presented, and matches nothing.
      }
    } else if (key == "x-api-key") {
      if (!text.empty() && !api_key.has_value()) api_key = std::string(text);
    } else if (key == "x-forwarded-for") {
      forwarded = true;
      for (absl::string_view hop : absl::StrSplit(text, ',')) {
        if (!IsLoopbackHost(hop)) from_loopback = false;
      }
    }
  }
  credentials.key = bearer.has_value() ? std::move(bearer) : std::move(api_key);
  // In-process calls come from the embedded gateway, which always names its
  // HTTP client there ("unknown" if it cannot tell); one that does not is
  // from nowhere we know.
  if (in_process && !forwarded) from_loopback = false;
  credentials.from_loopback = from_loopback;
  return credentials;
}

}  // namespace

CallCredentials CredentialsOf(const grpc::ServerContextBase& context) {
  return CredentialsFrom(context.client_metadata(), context.peer());
}

CallCredentials LocalCallCredentials(
    const std::vector<std::pair<std::string, std::string>>& metadata) {
  return CredentialsFrom(metadata, kLocalCallPeer);
}

Authenticator::Authenticator(store::KeyStore* keys, ThreadPool* pool,
                             AuthenticatorOptions options)
    : keys_(keys), pool_(pool), options_(std::move(options)) {}

void Authenticator::Authenticate(const CallCredentials& credentials,
                                 Done done) {
  const absl::Time now = options_.clock();
  if (!credentials.key.has_value()) {
    if (options_.allow_anonymous) return done(AnonymousCaller());
    if (!options_.listener_is_loopback || !credentials.from_loopback) {
      return done(Unauthenticated(kMissingApiKey));
    }
    std::optional<bool> known;
    {
      absl::MutexLock lock(&mu_);
      if (has_active_keys_.has_value() &&
          now - has_active_keys_at_ < options_.cache_ttl) {
        known = has_active_keys_;
      }
    }
    if (known.has_value()) return done(AnonymousAnswer(*known));
    pool_->Schedule([this, done = std::move(done)] {
      done(AnonymousAnswer(FetchHasActiveKeys()));
    });
    return;
  }

  absl::StatusOr<ParsedApiKey> parsed = ParseApiKey(*credentials.key);
  if (!parsed.ok()) return done(Unauthenticated(kInvalidApiKey));
  std::optional<CacheEntry> cached;
  std::shared_ptr<PendingLookup> new_lookup;
  {
    absl::MutexLock lock(&mu_);
    cached = CachedEntry(parsed->id, now);
    if (!cached.has_value()) {
      std::shared_ptr<PendingLookup>& lookup = pending_[parsed->id];
      if (lookup == nullptr) {
        lookup = std::make_shared<PendingLookup>();
        new_lookup = lookup;
      }
      lookup->waiters.push_back({parsed->secret, std::move(done)});
    }
  }
  if (cached.has_value()) return done(Decide(*cached, parsed->secret, now));
  if (new_lookup != nullptr) {
    pool_->Schedule([this, id = std::move(parsed->id),
                     lookup = std::move(new_lookup)]() mutable {
      RunLookup(id, std::move(lookup));
    });
  }
}

std::optional<Authenticator::CacheEntry> Authenticator::CachedEntry(
    const std::string& id, absl::Time now) {
  for (const auto* cache : {&present_, &absent_}) {
    auto it = cache->find(id);
    if (it != cache->end() &&
        now - it->second.fetched_at < options_.cache_ttl) {
      return it->second;
    }
  }
  return std::nullopt;
}

absl::StatusOr<Caller> Authenticator::Decide(const CacheEntry& entry,
                                             absl::string_view secret,
                                             absl::Time now) {
  if (!entry.key.has_value()) return Unauthenticated(kInvalidApiKey);
  const store::ApiKey& key = *entry.key;
  // Every check runs, so the answer's timing does not tell which failed.
  const bool secret_ok = VerifySecret(secret, key);
  const bool live = key.revoked_at > now && key.expires_at > now;
  if (!secret_ok || !live) return Unauthenticated(kInvalidApiKey);
  return Caller{key.tenant, key.id, key.limits};
}

void Authenticator::RunLookup(const std::string& id,
                              std::shared_ptr<PendingLookup> lookup) {
  absl::StatusOr<store::ApiKey> key = keys_->GetKey(id);
  CacheEntry entry;
  entry.fetched_at = options_.clock();
  absl::Status failure;
  if (key.ok()) {
    entry.key = *std::move(key);
  } else if (!absl::IsNotFound(key.status())) {
    // The id is public; the store's message may carry a database address.
    LogError("cannot read API key ", id, ": ", key.status().ToString());
    failure = absl::UnavailableError("cannot check the API key now; try again");
  }
  std::vector<Waiter> waiters;
  {
    absl::MutexLock lock(&mu_);
    auto it = pending_.find(id);
    // Not ours any more: Forget(id) ran during the read, whose answer may
    // predate the change, so it answers its waiters but is not cached.
    if (it != pending_.end() && it->second == lookup) {
      pending_.erase(it);
      if (failure.ok()) Remember(id, entry);
    }
    waiters = std::move(lookup->waiters);
  }
  const absl::Time now = options_.clock();
  for (Waiter& waiter : waiters) {
    if (!failure.ok()) {
      waiter.done(failure);
    } else {
      waiter.done(Decide(entry, waiter.secret, now));
    }
  }
}

void Authenticator::Remember(const std::string& id, const CacheEntry& entry) {
  auto& cache = entry.key.has_value() ? present_ : absent_;
  auto& other = entry.key.has_value() ? absent_ : present_;
  other.erase(id);
  if (cache.size() >= options_.max_cache_entries) {
    // Drop what is stale; if every entry is fresh, start this map over: for
    // absent ids (a flood of made-up ones) that costs one more lookup per
    // made-up id, and real keys, in the other map, stay.
    absl::erase_if(cache, [&](const auto& item) {
      return entry.fetched_at - item.second.fetched_at >= options_.cache_ttl;
    });
    if (cache.size() >= options_.max_cache_entries) cache.clear();
  }
  cache[id] = entry;
}

absl::StatusOr<bool> Authenticator::FetchHasActiveKeys() {
  const absl::Time now = options_.clock();
  absl::StatusOr<bool> active = keys_->HasActiveKeys(now);
  if (!active.ok()) {
    LogError("cannot read API keys: ", active.status().ToString());
    return absl::UnavailableError("cannot check API keys now; try again");
  }
  absl::MutexLock lock(&mu_);
  has_active_keys_ = *active;
  has_active_keys_at_ = now;
  return *active;
}

absl::StatusOr<Caller> Authenticator::AnonymousAnswer(
    absl::StatusOr<bool> has_active_keys) {
  if (!has_active_keys.ok()) return has_active_keys.status();
  if (*has_active_keys) return Unauthenticated(kMissingApiKey);
  return AnonymousCaller();
}

absl::Status Authenticator::CheckAdmin(
    const CallCredentials& credentials) const {
  if (!credentials.key.has_value()) return Unauthenticated(kMissingAdminKey);
  if (options_.admin_key.empty() ||
      !ConstantTimeEquals(*credentials.key, options_.admin_key)) {
    return Unauthenticated(kInvalidAdminKey);
  }
  return absl::OkStatus();
}

void Authenticator::Forget(absl::string_view id) {
  absl::MutexLock lock(&mu_);
  const std::string key_id(id);
  present_.erase(key_id);
  absent_.erase(key_id);
  // A read already running keeps its waiters but caches nothing; the next
  // call starts a fresh one.
  pending_.erase(key_id);
  has_active_keys_.reset();
}

}  // namespace chat
