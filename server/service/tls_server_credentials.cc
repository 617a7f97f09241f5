#include "server/service/tls_server_credentials.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpc/grpc.h"

namespace chat {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// Refuses encrypted keys instead of letting OpenSSL prompt on the terminal.
int NoPassword(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) {
  return 0;
}

absl::StatusOr<std::string> ReadFile(absl::string_view flag,
                                     const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, ": cannot read '", path, "': ", std::strerror(errno)));
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": cannot read '", path, "'"));
  }
  return contents.str();
}

BioPtr MemoryBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// The certificates in `pem`, first to last; empty if none parses.
std::vector<X509Ptr> ParseCertificates(const std::string& pem) {
  std::vector<X509Ptr> certs;
  BioPtr bio = MemoryBio(pem);
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certs.emplace_back(cert);
  }
  ERR_clear_error();  // The loop ends on a "no start line" error.
  return certs;
}

}  // namespace

absl::StatusOr<TlsMaterial> LoadTlsMaterial(const TlsFiles& files) {
  TlsMaterial material;
  absl::StatusOr<std::string> cert = ReadFile("tls_cert", files.cert_path);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadFile("tls_key", files.key_path);
  if (!key.ok()) return key.status();

  std::vector<X509Ptr> chain = ParseCertificates(*cert);
  if (chain.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls_cert: '", files.cert_path, "' holds no PEM certificate"));
  }
  BioPtr key_bio = MemoryBio(*key);
  PkeyPtr pkey(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassword, nullptr));
  ERR_clear_error();
  if (pkey == nullptr) {
    // Never the file's contents: it is a secret.
    return absl::InvalidArgumentError(
        absl::StrCat("--tls_key: '", files.key_path,
                     "' holds no unencrypted PEM private key"));
  }
  const bool match = X509_check_private_key(chain.front().get(), pkey.get());
  ERR_clear_error();
  if (!match) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls_key: the key in '", files.key_path,
                     "' does not match the certificate in --tls_cert '",
                     files.cert_path, "'"));
  }
  material.cert_chain = *std::move(cert);
  material.private_key = *std::move(key);

  if (!files.client_ca_path.empty()) {
    absl::StatusOr<std::string> ca =
        ReadFile("tls_client_ca", files.client_ca_path);
    if (!ca.ok()) return ca.status();
    if (ParseCertificates(*ca).empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tls_client_ca: '", files.client_ca_path,
                       "' holds no PEM certificate"));
    }
    material.client_ca = *std::move(ca);
  }
  return material;
}

namespace {

// grpc::ServerCredentials over a C core grpc_server_credentials. gRPC 1.51's
// C++ API has no constructor for SSL credentials with a certificate config
// fetcher, but ServerCredentials' one job for a server is AddPortToServer,
// which the C API does with the credentials we built.
class CoreServerCredentials final : public grpc::ServerCredentials {
 public:
  // Takes ownership of `creds`.
  explicit CoreServerCredentials(grpc_server_credentials* creds)
      : creds_(creds) {}
  ~CoreServerCredentials() override { grpc_server_credentials_release(creds_); }

  void SetAuthMetadataProcessor(
      const std::shared_ptr<grpc::AuthMetadataProcessor>& /*processor*/)
      override {
    // Not used by chat-server: authentication is done by the service.
  }

 private:
  int AddPortToServer(const std::string& addr, grpc_server* server) override {
    return grpc_server_add_http2_port(server, addr.c_str(), creds_);
  }

  grpc_server_credentials* const creds_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ReloadableTlsCredentials>>
ReloadableTlsCredentials::Create(TlsFiles files) {
  absl::StatusOr<TlsMaterial> material = LoadTlsMaterial(files);
  if (!material.ok()) return material.status();
  return std::unique_ptr<ReloadableTlsCredentials>(
      new ReloadableTlsCredentials(std::move(files), *std::move(material)));
}

ReloadableTlsCredentials::ReloadableTlsCredentials(TlsFiles files,
                                                   TlsMaterial material)
    : files_(std::move(files)), material_(std::move(material)) {
  const grpc_ssl_client_certificate_request_type request =
      files_.client_ca_path.empty()
          ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
          : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  grpc_ssl_server_credentials_options* options =
      grpc_ssl_server_credentials_create_options_using_config_fetcher(
          request, &ReloadableTlsCredentials::FetchConfig, this);
  // Takes ownership of `options`.
  grpc_server_credentials* creds =
      grpc_ssl_server_credentials_create_with_options(options);
  credentials_ = std::make_shared<CoreServerCredentials>(creds);
}

ReloadableTlsCredentials::~ReloadableTlsCredentials() = default;

absl::Status ReloadableTlsCredentials::Reload() {
  absl::StatusOr<TlsMaterial> material = LoadTlsMaterial(files_);
  if (!material.ok()) return material.status();
  absl::MutexLock lock(&mu_);
  material_ = *std::move(material);
  pending_ = true;
  return absl::OkStatus();
}

int ReloadableTlsCredentials::generation() const {
  absl::MutexLock lock(&mu_);
  return generation_;
}

grpc_ssl_certificate_config_reload_status ReloadableTlsCredentials::FetchConfig(
    void* self, grpc_ssl_server_certificate_config** config) {
  return static_cast<ReloadableTlsCredentials*>(self)->Fetch(config);
}

grpc_ssl_certificate_config_reload_status ReloadableTlsCredentials::Fetch(
    grpc_ssl_server_certificate_config** config) {
  absl::MutexLock lock(&mu_);
  if (!pending_) return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
  grpc_ssl_pem_key_cert_pair pair = {material_.private_key.c_str(),
                                     material_.cert_chain.c_str()};
  // gRPC 1.51 asserts (and Debian's build aborts) when a fetched config has
  // no root certificates, though it only uses them to verify client
  // certificates. Without --tls_client_ca clients are not asked for one
  // (GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE), so the server's own chain is
  // a harmless stand-in. Copies the strings.
  *config = grpc_ssl_server_certificate_config_create(
      material_.client_ca.empty() ? material_.cert_chain.c_str()
                                  : material_.client_ca.c_str(),
      &pair, 1);
  pending_ = false;
  ++generation_;
  return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
}

}  // namespace chat
