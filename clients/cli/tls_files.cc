#include "clients/cli/tls_files.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace chat::cli {
namespace {

// The whole of `path`, or empty if it cannot be read or is empty.
std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  if (in) contents << in.rdbuf();
  return in ? contents.str() : std::string();
}

// An encrypted key would make OpenSSL ask for its passphrase on the
// terminal; answering nothing makes the read fail instead.
int RefusePassphrase(char*, int, int, void*) { return 0; }

using BioPtr = std::unique_ptr<BIO, int (*)(BIO*)>;
using CertPtr = std::unique_ptr<X509, void (*)(X509*)>;
using KeyPtr = std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)>;

BioPtr ReadOnlyBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                BIO_free);
}

// The first certificate in `pem`; null if none parses. Like every OpenSSL
// call here, it leaves the thread's error queue empty.
CertPtr FirstCertificate(const std::string& pem) {
  CertPtr cert(PEM_read_bio_X509(ReadOnlyBio(pem).get(), nullptr,
                                 RefusePassphrase, nullptr),
               X509_free);
  ERR_clear_error();
  return cert;
}

// The first unencrypted private key in `pem`; null if none.
KeyPtr FirstPrivateKey(const std::string& pem) {
  KeyPtr key(PEM_read_bio_PrivateKey(ReadOnlyBio(pem).get(), nullptr,
                                     RefusePassphrase, nullptr),
             EVP_PKEY_free);
  ERR_clear_error();
  return key;
}

absl::Status Invalid(absl::string_view flag, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, " ", problem));
}

// A CA or certificate file: readable and holding a PEM certificate.
absl::StatusOr<std::string> ReadCertificates(absl::string_view flag,
                                             const std::string& path) {
  std::string text = ReadWholeFile(path);
  if (text.empty())
    return Invalid(flag, absl::StrCat("cannot read '", path, "'"));
  if (FirstCertificate(text) == nullptr) {
    return Invalid(flag, absl::StrCat("'", path, "' holds no PEM certificate"));
  }
  return text;
}

}  // namespace

absl::StatusOr<TlsFiles> LoadTlsFiles(const CliOptions& options) {
  TlsFiles files;
  if (!options.ca_file.empty()) {
    absl::StatusOr<std::string> roots =
        ReadCertificates("ca_file", options.ca_file);
    if (!roots.ok()) return roots.status();
    files.root_certs = *std::move(roots);
  }
  if (options.client_cert.empty()) return files;
  absl::StatusOr<std::string> chain =
      ReadCertificates("client_cert", options.client_cert);
  if (!chain.ok()) return chain.status();
  // Neither the key's contents nor its path: the key is the secret, and its
  // path says where to find it.
  std::string key = ReadWholeFile(options.client_key);
  if (key.empty()) return Invalid("client_key", "cannot read its file");
  KeyPtr pkey = FirstPrivateKey(key);
  if (pkey == nullptr) {
    return Invalid("client_key", "holds no unencrypted PEM private key");
  }
  const bool match =
      X509_check_private_key(FirstCertificate(*chain).get(), pkey.get()) == 1;
  ERR_clear_error();
  if (!match) {
    return Invalid("client_key",
                   "is not the key of --client_cert's certificate");
  }
  files.cert_chain = *std::move(chain);
  files.private_key = std::move(key);
  return files;
}

}  // namespace chat::cli
