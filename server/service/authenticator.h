#ifndef CHAT_SERVER_SERVICE_AUTHENTICATOR_H_
#define CHAT_SERVER_SERVICE_AUTHENTICATOR_H_

// Who a call is: the tenant, key and limits behind the API key it carries,
// or an anonymous caller where the deployment allows one. Every answer that
// refuses a call is one of two fixed messages, so a refusal never tells an
// unknown key from a revoked, expired or malformed one, and never echoes it.

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/thread_pool.h"
#include "grpcpp/server_context.h"
#include "server/store/key_store.h"

namespace chat {

inline constexpr char kAnonymousTenant[] = "default";
inline constexpr char kMissingApiKey[] = "missing API key";
inline constexpr char kInvalidApiKey[] = "invalid API key";
inline constexpr char kMissingAdminKey[] = "missing admin key";
inline constexpr char kInvalidAdminKey[] = "invalid admin key";

// The caller a call was authenticated as.
struct Caller {
  std::string tenant;
  // The public id of the key used; empty for an anonymous caller.
  std::string key_id;
  // The key's limits; none for an anonymous caller.
  store::KeyLimits limits;
};

// What authentication reads from a call.
struct CallCredentials {
  // The key presented in `authorization: Bearer <key>` (preferred) or
  // `x-api-key: <key>`; nullopt when neither header is there (or is empty).
  // An `authorization` header of another scheme presents "", which no key
  // matches.
  std::optional<std::string> key;
  // The peer is loopback, and so is every address in x-forwarded-for
  // (chat-gateway sets it to its HTTP client's address). A call through the
  // in-process channel (chat-server's own HTTP port, --http_listen) has no
  // peer address: it counts as loopback only if it carries x-forwarded-for
  // and every address there is loopback, so the HTTP client's address is
  // what is judged.
  bool from_loopback = false;
};

// Reads the credentials of a call from its metadata and peer.
CallCredentials CredentialsOf(const grpc::ServerContextBase& context);

// The peer of a call chat-server's own HTTP port makes without gRPC
// (ChatServiceImpl::ChatLocal): judged as an in-process call.
inline constexpr char kLocalCallPeer[] = "inproc";

// The credentials of such a call, from the metadata the gateway would have
// sent with it.
CallCredentials LocalCallCredentials(
    const std::vector<std::pair<std::string, std::string>>& metadata);

// Whether gRPC's peer string ("ipv4:127.0.0.1:5555", "ipv6:[::1]:5555") is
// a loopback address.
bool IsLoopbackPeer(absl::string_view peer);

// Whether gRPC's peer string is that of a call through
// grpc::Server::InProcessChannel: gRPC 1.51 gives it "unknown" (the client
// side reads "inproc"). chat-server listens only on TCP, whose peers are
// always "ipv4:..." or "ipv6:...".
bool IsInProcessPeer(absl::string_view peer);

struct AuthenticatorOptions {
  // Serve calls without a key (as tenant "default") from anywhere.
  bool allow_anonymous = false;
  // The server listens on loopback only: then, while the store holds no
  // active key, calls without a key from loopback are served.
  bool listener_is_loopback = false;
  // The admin key; empty: no call is an admin call.
  std::string admin_key;
  // How long a key looked up in the store (or found absent), and whether any
  // active key exists, is believed: a revoked key stops working within this.
  absl::Duration cache_ttl = absl::Seconds(2);
  // Most key ids remembered, counted apart for ids found and ids the store
  // does not have: the bound on memory a stream of made-up ids costs, which
  // never pushes out a real key.
  size_t max_cache_entries = 10000;
  // The time; tests pass a fake one.
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

// Decides who each call is. Thread-safe. Store lookups run on `pool`, never
// on the caller's thread.
class Authenticator {
 public:
  using Done = std::function<void(absl::StatusOr<Caller>)>;

  // `keys` and `pool` must outlive this object and every Authenticate call's
  // `done`.
  Authenticator(store::KeyStore* keys, ThreadPool* pool,
                AuthenticatorOptions options);
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // Calls `done` exactly once with the caller, or UNAUTHENTICATED
  // ("missing API key" / "invalid API key"), or UNAVAILABLE if the store
  // cannot be read. When the cache answers, `done` runs on this thread before
  // Authenticate returns; otherwise on a pool thread after the lookup.
  void Authenticate(const CallCredentials& credentials, Done done);

  // OK if the call presents the admin key (compared in constant time);
  // UNAUTHENTICATED otherwise. Never blocks.
  absl::Status CheckAdmin(const CallCredentials& credentials) const;

  // Whether a call without a key from another host is served.
  bool anonymous_remote_allowed() const { return options_.allow_anonymous; }

  // Forgets what the cache holds about key `id` and whether active keys
  // exist, so a change this process made to the store shows here at once
  // (other replicas see it within cache_ttl).
  void Forget(absl::string_view id);

 private:
  struct CacheEntry {
    // nullopt: the store has no key with this id.
    std::optional<store::ApiKey> key;
    absl::Time fetched_at;
  };

  // A call waiting for a store lookup of its key's id.
  struct Waiter {
    std::string secret;
    Done done;
  };
  // One store read of an id in flight, and every call waiting for it.
  // `waiters` is written under mu_, only while the lookup is in pending_.
  struct PendingLookup {
    std::vector<Waiter> waiters;
  };

  // The caller `secret` makes of `entry` at `now`.
  static absl::StatusOr<Caller> Decide(const CacheEntry& entry,
                                       absl::string_view secret,
                                       absl::Time now);
  // What the cache knows about `id` at `now`, if fresh.
  std::optional<CacheEntry> CachedEntry(const std::string& id, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads key `id` from the store (blocking), caches the answer unless
  // Forget(id) ran meanwhile, and answers every waiter of `lookup`.
  void RunLookup(const std::string& id, std::shared_ptr<PendingLookup> lookup);
  // Caches `entry` for `id`, within max_cache_entries.
  void Remember(const std::string& id, const CacheEntry& entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether active keys exist, from the store (blocking), cached.
  absl::StatusOr<bool> FetchHasActiveKeys();
  absl::StatusOr<Caller> AnonymousAnswer(absl::StatusOr<bool> has_active_keys);

  store::KeyStore* const keys_;
  ThreadPool* const pool_;
  const AuthenticatorOptions options_;

  absl::Mutex mu_;
  // Ids the store has, and ids it does not (made-up ones, in a flood), apart
  // so that filling one never evicts the other.
  absl::flat_hash_map<std::string, CacheEntry> present_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, CacheEntry> absent_ ABSL_GUARDED_BY(mu_);
  // Ids being read from the store; a call for one of them waits for that
  // read instead of starting another.
  absl::flat_hash_map<std::string, std::shared_ptr<PendingLookup>> pending_
      ABSL_GUARDED_BY(mu_);
  std::optional<bool> has_active_keys_ ABSL_GUARDED_BY(mu_);
  absl::Time has_active_keys_at_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat

#endif  // CHAT_SERVER_SERVICE_AUTHENTICATOR_H_
