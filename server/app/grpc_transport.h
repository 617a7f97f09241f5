#ifndef CHAT_SERVER_APP_GRPC_TRANSPORT_H_
#define CHAT_SERVER_APP_GRPC_TRANSPORT_H_

// How chat-server's gRPC port is exposed: TLS, and the limits that bound what
// one client can make the server hold (memory, streams, idle connections).

#include <cstdint>

#include "absl/time/time.h"
#include "grpcpp/server_builder.h"
#include "server/service/tls_server_credentials.h"

namespace chat {

struct GrpcTransportOptions {
  // cert_path empty: plaintext (and key_path, client_ca_path empty too).
  TlsFiles tls;
  // Cap on the memory gRPC's transport may use for connections and calls,
  // through a grpc::ResourceQuota; 0: no cap.
  int64_t max_memory_bytes = 0;
  // HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection; 0: gRPC's default
  // (no limit).
  int max_concurrent_streams = 0;
  // Connections with no call for this long are closed (GOAWAY); 0: never.
  absl::Duration max_connection_idle = absl::ZeroDuration();
};

// Applies `options`' limits, and fixed keepalive enforcement, to `builder`.
// TLS is not applied here: the port's credentials come from
// ReloadableTlsCredentials.
void ApplyTransportLimits(const GrpcTransportOptions& options,
                          grpc::ServerBuilder* builder);

}  // namespace chat

#endif  // CHAT_SERVER_APP_GRPC_TRANSPORT_H_
