#include "gateway/http/tls_context.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "boost/asio/ssl/error.hpp"

namespace chat::gateway {
namespace ssl = boost::asio::ssl;

namespace {

// ALPN (RFC 7301): the server speaks HTTP/1.1 only. A client that offers
// only other protocols (h2) gets no ALPN answer rather than a failed
// handshake, and may still speak HTTP/1.1.
int SelectHttp11(SSL*, const unsigned char** out, unsigned char* out_length,
                 const unsigned char* offered, unsigned int offered_length,
                 void*) {
  static const unsigned char kHttp11[] = {8,   'h', 't', 't', 'p',
                                          '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_length, kHttp11, sizeof(kHttp11),
                            offered,
                            offered_length) == OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

absl::Status CheckReadable(absl::string_view flag, const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, " cannot read '", path, "': ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<ssl::context>> LoadServerTlsContext(
    const std::string& cert_file, const std::string& key_file) {
  if (absl::Status s = CheckReadable("tls_cert", cert_file); !s.ok()) return s;
  if (absl::Status s = CheckReadable("tls_key", key_file); !s.ok()) return s;
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  context->set_options(ssl::context::default_workarounds |
                       ssl::context::no_compression |
                       ssl::context::single_dh_use);
  // An encrypted key would make OpenSSL prompt on the terminal; an empty
  // passphrase makes it fail instead.
  context->set_password_callback(
      [](std::size_t, ssl::context::password_purpose) {
        return std::string();
      });
  SSL_CTX_set_alpn_select_cb(native, SelectHttp11, nullptr);

  absl::Status status;
  boost::system::error_code ec;
  context->use_certificate_chain_file(cert_file, ec);
  if (ec) {
    status = absl::InvalidArgumentError(
        absl::StrCat("--tls_cert '", cert_file,
                     "' is not a PEM certificate chain (", ec.message(), ")"));
  } else if (context->use_private_key_file(key_file, ssl::context::pem, ec);
             ec) {
    // OpenSSL checks the key against the certificate as it loads it.
    if (ec.category() == boost::asio::error::get_ssl_category() &&
        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) ==
            X509_R_KEY_VALUES_MISMATCH) {
      status = absl::InvalidArgumentError(absl::StrCat(
          "--tls_key '", key_file,
          "' does not match the certificate of --tls_cert '", cert_file, "'"));
    } else {
      status = absl::InvalidArgumentError(absl::StrCat(
          "--tls_key '", key_file, "' is not an unencrypted PEM private key (",
          ec.message(), ")"));
    }
  } else if (SSL_CTX_check_private_key(native) != 1) {
    status = absl::InvalidArgumentError(absl::StrCat(
        "--tls_key '", key_file,
        "' does not match the certificate of --tls_cert '", cert_file, "'"));
  }
  // OpenSSL queues its errors per thread; leave none for the next caller.
  ERR_clear_error();
  if (!status.ok()) return status;
  return context;
}

std::string DescribeCertificate(ssl::context& context) {
  X509* cert = SSL_CTX_get0_certificate(context.native_handle());
  if (cert == nullptr) return "no certificate";
  std::string out = "subject=";
  char name[512];
  X509_NAME_oneline(X509_get_subject_name(cert), name, sizeof(name));
  out += name;
  if (BIGNUM* serial =
          ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(serial)) {
      absl::StrAppend(&out, " serial=", hex);
      OPENSSL_free(hex);
    }
    BN_free(serial);
  }
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    if (ASN1_TIME_print(bio, X509_get0_notAfter(cert)) == 1) {
      char* data = nullptr;
      const long length = BIO_get_mem_data(bio, &data);
      absl::StrAppend(&out, " expires=",
                      absl::string_view(data, static_cast<size_t>(length)));
    }
    BIO_free(bio);
  }
  return out;
}

}  // namespace chat::gateway
