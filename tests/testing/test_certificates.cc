#include "tests/testing/test_certificates.h"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/testing/server_process.h"

namespace chat::testing {

absl::StatusOr<TestPki> MakeTestPki(const std::string& dir,
                                    const std::string& name,
                                    const std::string& server_alt_names) {
  const std::string p = absl::StrCat(dir, "/", name);
  TestPki pki;
  pki.ca_cert = p + "-ca.pem";
  pki.server_cert = p + "-server.pem";
  pki.server_key = p + "-server.key";
  pki.client_cert = p + "-client.pem";
  pki.client_key = p + "-client.key";
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1";
  // `set -e`: the first failing step fails the whole script.
  const std::string script = absl::StrCat(
      "set -e\n", "printf 'subjectAltName=", server_alt_names, "\\n",
      "extendedKeyUsage=serverAuth\\n' > ", p, "-server.ext\n",
      "printf 'extendedKeyUsage=clientAuth\\n' > ", p, "-client.ext\n",
      "openssl req -x509 ", key, " -nodes -days 1 -subj '/CN=", name,
      " test CA' -keyout ", p, "-ca.key -out ", pki.ca_cert, "\n",
      "openssl req ", key, " -nodes -subj '/CN=localhost' -keyout ",
      pki.server_key, " -out ", p, "-server.csr\n",
      "openssl x509 -req -days 1 -in ", p, "-server.csr -CA ", pki.ca_cert,
      " -CAkey ", p, "-ca.key -CAcreateserial -extfile ", p,
      "-server.ext -out ", pki.server_cert, "\n", "openssl req ", key,
      " -nodes -subj '/CN=", name, " client' -keyout ", pki.client_key,
      " -out ", p, "-client.csr\n", "openssl x509 -req -days 1 -in ", p,
      "-client.csr -CA ", pki.ca_cert, " -CAkey ", p,
      "-ca.key -CAcreateserial -extfile ", p, "-client.ext -out ",
      pki.client_cert, "\n");
  std::string output;
  absl::StatusOr<int> code = RunCommand({"/bin/sh", "-c", script}, &output);
  if (!code.ok()) return code.status();
  if (*code != 0) {
    return absl::InternalError(absl::StrCat("openssl failed: ", output));
  }
  return pki;
}

std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

}  // namespace chat::testing
