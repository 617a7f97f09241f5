#ifndef CHAT_TESTS_TESTING_TEST_CERTIFICATES_H_
#define CHAT_TESTS_TESTING_TEST_CERTIFICATES_H_

// Certificates made with the openssl command at test time, so no key is
// checked in and none expires: a CA, a server certificate for localhost and
// 127.0.0.1, and a client certificate, all signed by that CA.

#include <string>

#include "absl/status/statusor.h"

namespace chat::testing {

// Paths of PEM files.
struct TestPki {
  std::string ca_cert;
  std::string server_cert;
  std::string server_key;
  std::string client_cert;
  std::string client_key;
};

// Makes a CA named `name` and its server and client certificates (EC P-256,
// valid for a day) in `dir`, files prefixed with `name`. The server
// certificate's subjectAltName is `server_alt_names` (openssl's syntax), so a
// test can make one that names neither localhost nor 127.0.0.1. Errors carry
// openssl's output.
absl::StatusOr<TestPki> MakeTestPki(
    const std::string& dir, const std::string& name,
    const std::string& server_alt_names = "DNS:localhost,IP:127.0.0.1");

// The contents of `path` ("" if unreadable).
std::string ReadTextFile(const std::string& path);

}  // namespace chat::testing

#endif  // CHAT_TESTS_TESTING_TEST_CERTIFICATES_H_
