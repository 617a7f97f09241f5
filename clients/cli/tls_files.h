#ifndef CHAT_CLIENTS_CLI_TLS_FILES_H_
#define CHAT_CLIENTS_CLI_TLS_FILES_H_

// The PEM files of chat-cli's TLS flags, read and checked before any
// connection. gRPC would take a CA file with no certificate, a key that is
// not a key or a key of another certificate, and fail only at the handshake,
// as UNAVAILABLE ("empty address list"), which tells a script to retry what
// is a mistake in the flags; checked here they exit 2 naming the flag.

#include <string>

#include "absl/status/statusor.h"
#include "clients/cli/cli_options.h"

namespace chat::cli {

// What gRPC's SslCredentialsOptions takes.
struct TlsFiles {
  std::string root_certs;   // --ca_file; empty: the system's CAs.
  std::string cert_chain;   // --client_cert; empty: no client certificate.
  std::string private_key;  // --client_key. Never printed.
};

// Reads --ca_file, --client_cert and --client_key of `options` (each may be
// empty). INVALID_ARGUMENT naming the flag when a file cannot be read, a CA
// or certificate file holds no PEM certificate, the key file holds no
// unencrypted PEM private key, or the key is not the certificate's. Messages
// name the CA and certificate files but neither the key file nor any file's
// contents.
absl::StatusOr<TlsFiles> LoadTlsFiles(const CliOptions& options);

}  // namespace chat::cli

#endif  // CHAT_CLIENTS_CLI_TLS_FILES_H_
