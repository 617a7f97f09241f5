#ifndef CHAT_TESTS_TESTING_FAKE_UPSTREAM_H_
#define CHAT_TESTS_TESTING_FAKE_UPSTREAM_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "tests/testing/server_process.h"

namespace chat::testing {

// The fake LLM upstream (tests/fake_upstream/server.mjs, which speaks the
// Anthropic and OpenAI wire formats) as a child process on loopback, and its
// control endpoints. Requests are grouped by a key, the part of the model
// name after '@'.
class FakeUpstream {
 public:
  // Starts `dir`/server.mjs with `node`; with `tls` it serves HTTPS (and
  // HTTP/2) with `dir`/tls/cert.pem. kFailedPrecondition when `node` is empty
  // (configure found no Node): callers skip.
  // `extra_args` go to server.mjs (e.g. "--tls-http1", "--max-streams=10").
  static absl::StatusOr<std::unique_ptr<FakeUpstream>> Start(
      const std::string& node, const std::string& dir, bool tls = false,
      const std::vector<std::string>& extra_args = {});

  // "http://127.0.0.1:PORT" (https with tls).
  const std::string& base_url() const { return base_url_; }
  // The certificate a client must trust in tls mode.
  const std::string& cert_file() const { return cert_file_; }
  std::string Log() const { return process_->Log(); }

  // What the fake saw for `key`: attempts, completed, closed_early, ...
  nlohmann::json Stats(const std::string& key) const;
  // Connection-level figures: connections_opened, http2_sessions, ...
  nlohmann::json ServerStats() const;
  // Lets requests held by the `hold` behaviour go on.
  void Release(const std::string& key) const;

 private:
  FakeUpstream(std::unique_ptr<ServerProcess> process, std::string base_url,
               std::string cert_file)
      : process_(std::move(process)),
        base_url_(std::move(base_url)),
        cert_file_(std::move(cert_file)) {}

  // A blocking call to a control endpoint; the body, "" on failure.
  std::string Call(const std::string& path_and_query, bool post) const;

  std::unique_ptr<ServerProcess> process_;
  std::string base_url_;
  std::string cert_file_;
};

}  // namespace chat::testing

#endif  // CHAT_TESTS_TESTING_FAKE_UPSTREAM_H_
