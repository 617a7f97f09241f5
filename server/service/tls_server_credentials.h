#ifndef CHAT_SERVER_SERVICE_TLS_SERVER_CREDENTIALS_H_
#define CHAT_SERVER_SERVICE_TLS_SERVER_CREDENTIALS_H_

// TLS for chat-server's gRPC port, with certificates that can be replaced
// while the server runs (on SIGHUP) without closing any connection.
//
// gRPC 1.51's C++ API offers two ways to change certificates: the
// experimental FileWatcherCertificateProvider, which polls the files on its
// own timer (so a half-written pair can be picked up, and SIGHUP could not be
// the trigger), and the C core's "certificate config fetcher", which the SSL
// server security connector calls before every new handshake. We use the
// latter: Reload() reads and validates the files, and only a complete,
// matching set is handed to the fetcher. Handshakes already done keep their
// session; only new connections see the new certificate.

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpc/grpc_security.h"
#include "grpcpp/security/server_credentials.h"

namespace chat {

// Where the server's TLS material lives. `client_ca_path` empty: clients are
// not asked for a certificate; otherwise they must present one signed by a
// CA in that file (mutual TLS).
struct TlsFiles {
  std::string cert_path;
  std::string key_path;
  std::string client_ca_path;
};

// The PEM contents of a TlsFiles, validated.
struct TlsMaterial {
  std::string cert_chain;
  std::string private_key;
  std::string client_ca;
};

// Reads `files` and checks that the certificate chain and the key parse, that
// the key belongs to the first certificate, and that the client CA file (if
// any) holds at least one certificate. INVALID_ARGUMENT naming the flag
// (--tls_cert, --tls_key, --tls_client_ca) and the path, never the key's
// contents.
absl::StatusOr<TlsMaterial> LoadTlsMaterial(const TlsFiles& files);

// Server credentials whose certificate, key and client CA can be replaced
// while the server runs. Thread-safe. Must outlive every grpc::Server that
// listens with credentials().
class ReloadableTlsCredentials {
 public:
  // Loads `files` (see LoadTlsMaterial) and builds the credentials.
  static absl::StatusOr<std::unique_ptr<ReloadableTlsCredentials>> Create(
      TlsFiles files);

  ReloadableTlsCredentials(const ReloadableTlsCredentials&) = delete;
  ReloadableTlsCredentials& operator=(const ReloadableTlsCredentials&) = delete;
  ~ReloadableTlsCredentials();

  // For ServerBuilder::AddListeningPort.
  std::shared_ptr<grpc::ServerCredentials> credentials() const {
    return credentials_;
  }

  // Re-reads the files. On success the next handshake uses them; on error
  // the current ones stay in use and the error says why (as LoadTlsMaterial).
  absl::Status Reload();

  // How many times gRPC has taken a new certificate config (1 after the
  // server started; +1 after the first handshake following each Reload()).
  int generation() const;

 private:
  explicit ReloadableTlsCredentials(TlsFiles files, TlsMaterial material);

  // grpc_ssl_server_certificate_config_callback, called by gRPC before each
  // handshake; `self` is `this`. NEW with a config when a Reload() (or the
  // construction) has not been fetched yet, else UNCHANGED.
  static grpc_ssl_certificate_config_reload_status FetchConfig(
      void* self, grpc_ssl_server_certificate_config** config);
  grpc_ssl_certificate_config_reload_status Fetch(
      grpc_ssl_server_certificate_config** config);

  const TlsFiles files_;
  std::shared_ptr<grpc::ServerCredentials> credentials_;

  mutable absl::Mutex mu_;
  TlsMaterial material_ ABSL_GUARDED_BY(mu_);
  // True from construction and from each successful Reload() until gRPC has
  // fetched the new material.
  bool pending_ ABSL_GUARDED_BY(mu_) = true;
  int generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace chat

#endif  // CHAT_SERVER_SERVICE_TLS_SERVER_CREDENTIALS_H_
