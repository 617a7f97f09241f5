#ifndef CHAT_GATEWAY_APP_AUTH_POLICY_H_
#define CHAT_GATEWAY_APP_AUTH_POLICY_H_

// The gateway's safe default: it does not open chat-server to a network
// while chat-server answers callers that carry no API key. chat-server
// decides who a caller is; the gateway only asks it, once, at start-up.

#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gateway/app/backend_set.h"

namespace chat::gateway {

// Whether API keys (and everything else) go to chat-server unencrypted over
// a network: some address in `backend` (--backend: HOST:PORT, or several
// comma-separated) is not loopback, and `backend_tls` (--backend_ca set) is
// false. main warns once at start when so.
bool KeysCrossNetworkInClear(absl::string_view backend, bool backend_tls);

// Asks chat-server (chat.admin.v1.AdminService/GetAuthPolicy, each attempt
// on the channel `backends` picks: a READY one if any) whether it would serve
// a caller with no API key from another host, waiting for one to come up and
// retrying for up to `wait`. Every replica shares the store that holds the
// keys, so one answer speaks for all. `stop_requested` is asked
// about once a second while it waits (main's stop signals are blocked, so a
// SIGTERM during a long wait would otherwise go unnoticed).
// - OK: it would not (it requires API keys).
// - FAILED_PRECONDITION: it would, or it has no AdminService (it predates
//   API keys, so it serves everyone); the message says what to do.
// - UNAVAILABLE: no answer within `wait` (the last error in the message).
// - CANCELLED: `stop_requested` said so before an answer came.
absl::Status CheckBackendAuthPolicy(
    BackendSet& backends, absl::Duration wait,
    const std::function<bool()>& stop_requested = [] { return false; });

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_APP_AUTH_POLICY_H_
