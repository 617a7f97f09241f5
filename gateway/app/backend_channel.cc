#include "gateway/app/backend_channel.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace chat::gateway {
namespace {

bool IsIpv4Literal(absl::string_view address) {
  size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) return false;
  absl::string_view host = address.substr(0, colon);
  if (host.empty()) return false;
  for (char c : host) {
    if (!(absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '.'))
      return false;
  }
  return true;
}

bool IsIpv6Literal(absl::string_view address) {
  return !address.empty() && address.front() == '[';
}

}  // namespace

absl::StatusOr<std::string> BackendTarget(absl::string_view backends) {
  std::vector<std::string> addresses;
  for (absl::string_view a :
       absl::StrSplit(backends, ',', absl::SkipWhitespace())) {
    addresses.emplace_back(absl::StripAsciiWhitespace(a));
  }
  if (addresses.empty()) {
    return absl::InvalidArgumentError("--backend names no address");
  }
  if (addresses.size() == 1) {
    const std::string& a = addresses[0];
    if (a.find(":///") != std::string::npos || absl::StartsWith(a, "ipv4:") ||
        absl::StartsWith(a, "ipv6:") || absl::StartsWith(a, "unix:")) {
      return a;  // Already a gRPC target URI.
    }
    if (IsIpv4Literal(a)) return absl::StrCat("ipv4:", a);
    if (IsIpv6Literal(a)) return absl::StrCat("ipv6:", a);
    return absl::StrCat("dns:///", a);
  }
  bool all_v4 = true, all_v6 = true;
  for (const std::string& a : addresses) {
    all_v4 = all_v4 && IsIpv4Literal(a);
    all_v6 = all_v6 && IsIpv6Literal(a);
  }
  if (all_v4) return absl::StrCat("ipv4:", absl::StrJoin(addresses, ","));
  if (all_v6) return absl::StrCat("ipv6:", absl::StrJoin(addresses, ","));
  return absl::InvalidArgumentError(absl::StrCat(
      "--backend=", backends,
      ": several backends must all be IPv4 or all IPv6 addresses with ports"));
}

std::string BackendServiceConfig(absl::string_view health_service) {
  return absl::StrCat(R"({"loadBalancingConfig":[{"round_robin":{}}],)",
                      R"("healthCheckConfig":{"serviceName":")", health_service,
                      R"("}})");
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeBackendChannel(
    absl::string_view backends) {
  absl::StatusOr<std::string> target = BackendTarget(backends);
  if (!target.ok()) return target.status();
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(BackendServiceConfig("chat.v1.ChatService"));
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(*target, grpc::InsecureChannelCredentials(),
                                   args);
}

}  // namespace chat::gateway
