#ifndef CHAT_GATEWAY_APP_BACKEND_CHANNEL_H_
#define CHAT_GATEWAY_APP_BACKEND_CHANNEL_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/channel.h"

namespace chat::gateway {

// The gRPC targets for `--backend`, one per channel the gateway opens: one
// address ("127.0.0.1:50051", "localhost:50051", or a gRPC target URI such
// as "dns://10.0.0.2:53/chat:50051") is one target; several comma-separated
// IP addresses (all IPv4 or all IPv6) are one "ipv4:a,b" / "ipv6:a,b"
// target, so gRPC balances over them on one channel; several entries of
// which any is a DNS name (replica-a:50051,replica-b:50051, or a mix of
// names and IPs) are one target each, balanced by BackendSet. INVALID_ARGUMENT
// for a list that names no address.
absl::StatusOr<std::vector<std::string>> BackendTargets(
    absl::string_view backends);

// The service config the channel uses: round_robin over every address, and
// gRPC's client-side health checking (grpc.health.v1 Watch on
// `health_service`) so that a replica answering NOT_SERVING, as chat-server
// does from SIGTERM on, gets no new calls.
std::string BackendServiceConfig(absl::string_view health_service);

// TLS to chat-server. `root_certs` empty: plaintext.
struct BackendTlsOptions {
  // PEM CAs that sign chat-server's certificate.
  std::string root_certs;
  // PEM client certificate chain and key, for chat-server's mutual TLS;
  // both empty or both set.
  std::string client_cert_chain;
  std::string client_key;
  // The name to verify chat-server's certificate against instead of the
  // --backend host (needed when connecting by IP to a certificate for a
  // DNS name). Empty: the host.
  std::string server_name;
};

// Paths of the PEM files (as given to --backend_ca, --backend_client_cert,
// --backend_client_key) and the server name override.
struct BackendTlsFiles {
  std::string ca_path;
  std::string client_cert_path;
  std::string client_key_path;
  std::string server_name;
};

// Reads `files` into options. INVALID_ARGUMENT naming the flag and the path
// (never a key's contents) for an unreadable file, a CA or client
// certificate file with no PEM certificate, a key file with no unencrypted
// PEM key or a key that does not match the client certificate, a client
// certificate without its key (or the reverse), or client files or a server
// name without --backend_ca. All paths empty: plaintext options. Used at
// start and again on each SIGHUP, so that a bad set is refused before any
// channel is built with it.
absl::StatusOr<BackendTlsOptions> LoadBackendTls(const BackendTlsFiles& files);

// For a log line: "plaintext", "TLS, no client certificate", or "TLS, client
// certificate subject=/CN=... serial=1A2B".
std::string DescribeBackendTls(const BackendTlsOptions& tls);

// How the backend channel reconnects and re-resolves (see
// MakeBackendChannel): a backend that comes back is used within about
// kBackendMaxReconnectBackoffMs, and a DNS name is looked up again at most
// every kBackendDnsMinIntervalMs after a connection fails.
inline constexpr int kBackendInitialReconnectBackoffMs = 100;
inline constexpr int kBackendMaxReconnectBackoffMs = 1000;
inline constexpr int kBackendConnectTimeoutMs = 5000;
inline constexpr int kBackendDnsMinIntervalMs = 1000;

// gRPC 1.51 notices a connection or health change on a channel with no call
// in flight only when its backup poller runs, every 5 s by default: a
// backend that came back, and /readyz, would lag that long. Sets the
// interval to 200 ms unless GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS is
// already set. Call first thing in main, before gRPC starts.
void PollBackendConnectionsOften();

// A channel to chat-server for `backends` (a --backend value that makes one
// target, see BackendTargets), over TLS if `tls.root_certs` is set,
// reconnecting as the constants above say, and never going idle (so its
// state says whether a backend is SERVING). Each channel runs its own health
// watches (the service config's healthCheckConfig), so a channel built on
// SIGHUP to replace another watches the replicas afresh with the new
// credentials. INVALID_ARGUMENT if `backends` makes several targets (use
// MakeBackendChannels).
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeBackendChannel(
    absl::string_view backends, const BackendTlsOptions& tls = {});

// One such channel per target of `backends` (BackendTargets), in order.
absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> MakeBackendChannels(
    absl::string_view backends, const BackendTlsOptions& tls = {});

// A backend channel, and for one that looks a DNS name up, how to make a
// fresh one like it. gRPC 1.51 waits 1 s, 1.6 s, 2.6 s, ... up to 120 s
// between failed lookups of a name (a replaced container's name gives
// NXDOMAIN until the new one is up) and ignores requests to look again
// meanwhile; grpc::experimental::ChannelResetConnectionBackoff does not
// reach the resolver in 1.51. A fresh channel looks the name up at once, so
// BackendSet replaces a channel that stays down with one.
struct BackendChannel {
  std::string target;  // As BackendTargets gives it, for log lines.
  std::shared_ptr<grpc::Channel> channel;
  // Null for a target that resolves no name (IP addresses, unix:).
  std::function<std::shared_ptr<grpc::Channel>()> remake;
  // False for grpc::Server::InProcessChannel, which has no connection to
  // start and no connectivity state to ask for.
  bool connects = true;
};

// MakeBackendChannels, each channel with its `remake`.
absl::StatusOr<std::vector<BackendChannel>> MakeBackends(
    absl::string_view backends, const BackendTlsOptions& tls = {});

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_APP_BACKEND_CHANNEL_H_
