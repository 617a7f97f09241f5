#include "common/net_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace chat {
namespace {

// Whether `port` is what may follow a host: nothing, or ':' and digits.
bool IsPortSuffix(absl::string_view port) {
  if (port.empty()) return true;
  if (!absl::ConsumePrefix(&port, ":") || port.empty()) return false;
  return std::all_of(port.begin(), port.end(), absl::ascii_isdigit);
}

}  // namespace

bool IsLoopbackHost(absl::string_view host) {
  host = absl::StripAsciiWhitespace(host);
  if (absl::StartsWith(host, "[")) {
    const size_t close = host.find(']');
    if (close == absl::string_view::npos) return false;
    if (!IsPortSuffix(host.substr(close + 1))) return false;
    host = host.substr(1, close - 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    // An IPv4 address or a name with a port; bare IPv6 has two colons or
    // more.
    const size_t colon = host.find(':');
    if (!IsPortSuffix(host.substr(colon))) return false;
    host = host.substr(0, colon);
  }
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;
  const std::string address(host);
  in_addr v4{};
  if (inet_pton(AF_INET, address.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, address.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

}  // namespace chat
