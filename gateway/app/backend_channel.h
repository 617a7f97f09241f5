#ifndef CHAT_GATEWAY_APP_BACKEND_CHANNEL_H_
#define CHAT_GATEWAY_APP_BACKEND_CHANNEL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/channel.h"

namespace chat::gateway {

// The gRPC target for `--backend`: one address ("127.0.0.1:50051",
// "localhost:50051") or several comma-separated IP addresses, which become
// one "ipv4:a,b" / "ipv6:a,b" target so gRPC balances over all of them.
// INVALID_ARGUMENT for an empty list, or several names that need DNS (a
// DNS name is one target; give it several A records instead).
absl::StatusOr<std::string> BackendTarget(absl::string_view backends);

// The service config the channel uses: round_robin over every address, and
// gRPC's client-side health checking (grpc.health.v1 Watch on
// `health_service`) so that a replica answering NOT_SERVING, as chat-server
// does from SIGTERM on, gets no new calls.
std::string BackendServiceConfig(absl::string_view health_service);

// A channel to chat-server with that target and service config.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeBackendChannel(
    absl::string_view backends);

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_APP_BACKEND_CHANNEL_H_
