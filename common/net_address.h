#ifndef CHAT_COMMON_NET_ADDRESS_H_
#define CHAT_COMMON_NET_ADDRESS_H_

// Facts about network addresses that both binaries decide on: whether a
// listener or a peer is loopback. One definition, so chat-server and
// chat-gateway never disagree about the same address.

#include "absl/strings/string_view.h"

namespace chat {

// Whether `host` names only loopback: an IPv4 address in 127.0.0.0/8, ::1, an
// IPv4-mapped ::ffff:127.x.y.z, or "localhost" (any case; RFC 6761 keeps it
// on loopback). Accepts surrounding whitespace, brackets around an IPv6
// address, and a ":port" after an IPv4 address, a name or "[...]". An empty
// host, 0.0.0.0 or :: (every interface), any other name and anything
// malformed are not loopback.
bool IsLoopbackHost(absl::string_view host);

}  // namespace chat

#endif  // CHAT_COMMON_NET_ADDRESS_H_
