#include "gateway/app/backend_channel.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "grpc/grpc.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace chat::gateway {
namespace {

bool IsIpv4Literal(absl::string_view address) {
  size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) return false;
  absl::string_view host = address.substr(0, colon);
  if (host.empty()) return false;
  for (char c : host) {
    if (!(absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '.'))
      return false;
  }
  return true;
}

bool IsIpv6Literal(absl::string_view address) {
  return !address.empty() && address.front() == '[';
}

// The gRPC target for one --backend entry.
std::string TargetOf(const std::string& address) {
  if (absl::StrContains(address, "://") || absl::StartsWith(address, "ipv4:") ||
      absl::StartsWith(address, "ipv6:") ||
      absl::StartsWith(address, "unix:")) {
    return address;  // Already a gRPC target URI.
  }
  if (IsIpv4Literal(address)) return absl::StrCat("ipv4:", address);
  if (IsIpv6Literal(address)) return absl::StrCat("ipv6:", address);
  return absl::StrCat("dns:///", address);
}

// The PEM file `path` given to --`flag`. Says nothing of the contents: a key
// is a secret.
absl::StatusOr<std::string> ReadPemFile(absl::string_view flag,
                                        const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, ": cannot read '", path, "': ", std::strerror(errno)));
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  if (contents.str().find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": '", path, "' holds no PEM block"));
  }
  return contents.str();
}

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

BioPtr MemoryBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// An encrypted key would make OpenSSL prompt on the terminal; refusing the
// passphrase makes it fail instead.
int NoPassword(char*, int, int, void*) { return 0; }

// The first certificate in `pem`, or null if it holds none that parses.
X509Ptr FirstCertificate(const std::string& pem) {
  BioPtr bio = MemoryBio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassword, nullptr));
  ERR_clear_error();  // OpenSSL queues errors per thread; leave none.
  return cert;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> BackendTargets(
    absl::string_view backends) {
  std::vector<std::string> addresses;
  for (absl::string_view a :
       absl::StrSplit(backends, ',', absl::SkipWhitespace())) {
    addresses.emplace_back(absl::StripAsciiWhitespace(a));
  }
  if (addresses.empty()) {
    return absl::InvalidArgumentError("--backend names no address");
  }
  if (addresses.size() > 1) {
    bool all_v4 = true, all_v6 = true;
    for (const std::string& a : addresses) {
      all_v4 = all_v4 && IsIpv4Literal(a);
      all_v6 = all_v6 && IsIpv6Literal(a);
    }
    // Fixed addresses: one channel, balanced by gRPC's round_robin.
    if (all_v4)
      return std::vector<std::string>{
          absl::StrCat("ipv4:", absl::StrJoin(addresses, ","))};
    if (all_v6)
      return std::vector<std::string>{
          absl::StrCat("ipv6:", absl::StrJoin(addresses, ","))};
  }
  // A name each: gRPC 1.51's resolvers give a channel one name, so each
  // entry gets a channel of its own (each resolving its name again as it
  // changes) and BackendSet balances over them.
  std::vector<std::string> targets;
  targets.reserve(addresses.size());
  for (const std::string& a : addresses) targets.push_back(TargetOf(a));
  return targets;
}

std::string BackendServiceConfig(absl::string_view health_service) {
  return absl::StrCat(R"({"loadBalancingConfig":[{"round_robin":{}}],)",
                      R"("healthCheckConfig":{"serviceName":")", health_service,
                      R"("}})");
}

absl::StatusOr<BackendTlsOptions> LoadBackendTls(const BackendTlsFiles& files) {
  BackendTlsOptions tls;
  if (files.ca_path.empty()) {
    if (!files.client_cert_path.empty() || !files.client_key_path.empty() ||
        !files.server_name.empty()) {
      return absl::InvalidArgumentError(
          "--backend_client_cert, --backend_client_key and "
          "--backend_tls_server_name need --backend_ca");
    }
    return tls;
  }
  if (files.client_cert_path.empty() != files.client_key_path.empty()) {
    return absl::InvalidArgumentError(
        files.client_cert_path.empty()
            ? "--backend_client_key needs --backend_client_cert"
            : "--backend_client_cert needs --backend_client_key");
  }
  absl::StatusOr<std::string> ca = ReadPemFile("backend_ca", files.ca_path);
  if (!ca.ok()) return ca.status();
  if (FirstCertificate(*ca) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--backend_ca: '", files.ca_path, "' holds no PEM certificate"));
  }
  tls.root_certs = *std::move(ca);
  if (!files.client_cert_path.empty()) {
    absl::StatusOr<std::string> cert =
        ReadPemFile("backend_client_cert", files.client_cert_path);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key =
        ReadPemFile("backend_client_key", files.client_key_path);
    if (!key.ok()) return key.status();
    // Checked here because gRPC would only fail each handshake later (and
    // a reload must not swap in a set that cannot work). Errors name the
    // files, never the key's contents.
    X509Ptr leaf = FirstCertificate(*cert);
    if (leaf == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("--backend_client_cert: '", files.client_cert_path,
                       "' holds no PEM certificate"));
    }
    BioPtr key_bio = MemoryBio(*key);
    PkeyPtr pkey(
        PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassword, nullptr));
    ERR_clear_error();
    if (pkey == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("--backend_client_key: '", files.client_key_path,
                       "' holds no unencrypted PEM private key"));
    }
    const bool match = X509_check_private_key(leaf.get(), pkey.get()) == 1;
    ERR_clear_error();
    if (!match) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--backend_client_key: the key in '", files.client_key_path,
          "' does not match the certificate in --backend_client_cert '",
          files.client_cert_path, "'"));
    }
    tls.client_cert_chain = *std::move(cert);
    tls.client_key = *std::move(key);
  }
  tls.server_name = files.server_name;
  return tls;
}

std::string DescribeBackendTls(const BackendTlsOptions& tls) {
  if (tls.root_certs.empty()) return "plaintext";
  if (tls.client_cert_chain.empty()) return "TLS, no client certificate";
  X509Ptr cert = FirstCertificate(tls.client_cert_chain);
  if (cert == nullptr) return "TLS, client certificate unreadable";
  std::string out = "TLS, client certificate subject=";
  char name[512];
  X509_NAME_oneline(X509_get_subject_name(cert.get()), name, sizeof(name));
  out += name;
  if (BIGNUM* serial =
          ASN1_INTEGER_to_BN(X509_get_serialNumber(cert.get()), nullptr)) {
    if (char* hex = BN_bn2hex(serial)) {
      absl::StrAppend(&out, " serial=", hex);
      OPENSSL_free(hex);
    }
    BN_free(serial);
  }
  return out;
}

void PollBackendConnectionsOften() {
  setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "200",
         /*overwrite=*/0);
}

namespace {

std::shared_ptr<grpc::Channel> MakeChannelToTarget(
    const std::string& target, const BackendTlsOptions& tls) {
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(BackendServiceConfig("chat.v1.ChatService"));
  args.SetMaxReceiveMessageSize(64 << 20);
  // gRPC's defaults (1 s growing by 1.6x up to 120 s) leave a backend that
  // restarted unused for as long as it was gone; capped at 1 s, it is used
  // within about a second whatever the outage lasted.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              kBackendInitialReconnectBackoffMs);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, kBackendMaxReconnectBackoffMs);
  // In 1.51 this is the deadline of one connection attempt (default 20 s),
  // not a wait between attempts: a refused connection fails at once anyway,
  // and an address that swallows packets (a replaced container's) is given
  // up after this long.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, kBackendConnectTimeoutMs);
  // round_robin asks the resolver again whenever a backend's connection
  // fails or drops; the default cooldown of 30 s between DNS lookups kept a
  // replaced container's old address that long.
  args.SetInt(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS,
              kBackendDnsMinIntervalMs);
  // An idle channel drops its connections and health watches, and /readyz
  // would then read "not ready" from a gateway merely left alone.
  args.SetInt(GRPC_ARG_CLIENT_IDLE_TIMEOUT_MS, INT_MAX);
  if (tls.root_certs.empty()) {
    return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(),
                                     args);
  }
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = tls.root_certs;
  ssl.pem_cert_chain = tls.client_cert_chain;
  ssl.pem_private_key = tls.client_key;
  if (!tls.server_name.empty()) {
    args.SetSslTargetNameOverride(tls.server_name);
  }
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(ssl), args);
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeBackendChannel(
    absl::string_view backends, const BackendTlsOptions& tls) {
  absl::StatusOr<std::vector<std::string>> targets = BackendTargets(backends);
  if (!targets.ok()) return targets.status();
  if (targets->size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--backend=", backends,
                     " names several backends that need a channel each"));
  }
  return MakeChannelToTarget(targets->front(), tls);
}

absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> MakeBackendChannels(
    absl::string_view backends, const BackendTlsOptions& tls) {
  absl::StatusOr<std::vector<std::string>> targets = BackendTargets(backends);
  if (!targets.ok()) return targets.status();
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  channels.reserve(targets->size());
  for (const std::string& target : *targets) {
    channels.push_back(MakeChannelToTarget(target, tls));
  }
  return channels;
}

absl::StatusOr<std::vector<BackendChannel>> MakeBackends(
    absl::string_view backends, const BackendTlsOptions& tls) {
  absl::StatusOr<std::vector<std::string>> targets = BackendTargets(backends);
  if (!targets.ok()) return targets.status();
  std::vector<BackendChannel> out;
  out.reserve(targets->size());
  for (const std::string& target : *targets) {
    BackendChannel backend;
    backend.target = target;
    backend.channel = MakeChannelToTarget(target, tls);
    // "dns:" is what TargetOf makes of a name, and the scheme a user may
    // write with a DNS server; other schemes resolve nothing that changes.
    if (absl::StartsWith(target, "dns:")) {
      backend.remake = [target, tls] {
        return MakeChannelToTarget(target, tls);
      };
    }
    out.push_back(std::move(backend));
  }
  return out;
}

}  // namespace chat::gateway
