#ifndef CHAT_GATEWAY_HTTP_TLS_CONTEXT_H_
#define CHAT_GATEWAY_HTTP_TLS_CONTEXT_H_

// The HTTPS side of HttpServer: a server TLS context read from PEM files.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "boost/asio/ssl/context.hpp"

namespace chat::gateway {

// Reads `cert_file` (the certificate chain, leaf first) and `key_file` (its
// private key, unencrypted) into a server context: TLS 1.2 and later, ALPN
// `http/1.1` chosen when the client offers it. INVALID_ARGUMENT naming
// --tls_cert or --tls_key when a file cannot be read or parsed, or the key
// does not match the certificate. Messages name files and OpenSSL's reason,
// never the key's content.
absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> LoadServerTlsContext(
    const std::string& cert_file, const std::string& key_file);

// The context's leaf certificate for a log line: subject, serial (hex) and
// expiry, e.g. "subject=/CN=localhost serial=1A2B expires=Nov 30 ... GMT".
std::string DescribeCertificate(boost::asio::ssl::context& context);

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_HTTP_TLS_CONTEXT_H_
