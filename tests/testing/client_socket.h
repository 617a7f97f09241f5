#ifndef CHAT_TESTS_TESTING_CLIENT_SOCKET_H_
#define CHAT_TESTS_TESTING_CLIENT_SOCKET_H_

#include <string>

#include "absl/time/time.h"

namespace chat::testing {

// A TCP socket connected to 127.0.0.1:`port` from the local address
// `source` (127.0.0.2, ...: another client to a server's per-client caps; a
// non-loopback address of this host: a caller off loopback), or -1. With a
// `receive_timeout`, a read waits at most that long (so a test cannot hang
// on a server that never answers); by default reads block.
int ConnectFrom(const std::string& source, int port,
                absl::Duration receive_timeout = absl::ZeroDuration());

}  // namespace chat::testing

#endif  // CHAT_TESTS_TESTING_CLIENT_SOCKET_H_
