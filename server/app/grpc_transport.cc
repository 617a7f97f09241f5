#include "server/app/grpc_transport.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "grpcpp/resource_quota.h"

namespace chat {
namespace {

int ClampToInt(int64_t value) {
  return static_cast<int>(
      std::min<int64_t>(value, std::numeric_limits<int>::max()));
}

}  // namespace

void ApplyTransportLimits(const GrpcTransportOptions& options,
                          grpc::ServerBuilder* builder) {
  if (options.max_memory_bytes > 0) {
    // gRPC's memory accounting: under pressure it shrinks its read buffers
    // and sheds work. It does not bound a rapid reset flood in 1.51 (see
    // bench/RESULTS.md); it is a backstop, set above normal use.
    grpc::ResourceQuota quota("chat-server");
    quota.Resize(static_cast<size_t>(options.max_memory_bytes));
    builder->SetResourceQuota(quota);
  }
  if (options.max_concurrent_streams > 0) {
    builder->AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                                options.max_concurrent_streams);
  }
  if (options.max_connection_idle > absl::ZeroDuration()) {
    builder->AddChannelArgument(
        GRPC_ARG_MAX_CONNECTION_IDLE_MS,
        ClampToInt(absl::ToInt64Milliseconds(options.max_connection_idle)));
  }
  // Keepalive enforcement, stated rather than left to gRPC's defaults: a
  // client may ping at most every 5 minutes when no call is open (gRPC's
  // own clients do not ping unless configured), and the third ping too soon
  // closes the connection with ENHANCE_YOUR_CALM, so a ping flood cannot
  // keep the server answering pings.
  builder->AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5 * 60 * 1000);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
}

}  // namespace chat
