// TestPki: certificates for TLS tests, made with OpenSSL's API in a scratch directory —
// including the kinds a real deployment must refuse (another CA, expired).
#ifndef UNDERSTUDY_TRANSPORT_TESTING_TEST_PKI_H_
#define UNDERSTUDY_TRANSPORT_TESTING_TEST_PKI_H_

#include <string>

#include "common/status.h"
#include "transport/channel.h"

namespace understudy::transport::testing {

struct CertificateFiles {
  std::string cert_file;
  std::string key_file;
};

class TestPki {
 public:
  // Creates a CA named `ca_name` in `directory` (which must exist).
  static Result<TestPki> Create(const std::string& directory, const std::string& ca_name);

  // A certificate for `host` signed by this CA, valid from now + `valid_from_days` to now +
  // `valid_to_days` (negative values lie in the past: an expired certificate).
  Result<CertificateFiles> Issue(const std::string& host, int valid_from_days = -1, int valid_to_days = 30) const;

  const std::string& ca_file() const { return ca_cert_file_; }
  // TlsOptions for `host` under this CA.
  Result<TlsOptions> OptionsFor(const std::string& host) const;

 private:
  std::string directory_;
  std::string ca_name_;
  std::string ca_cert_file_;
  std::string ca_key_file_;
};

}  // namespace understudy::transport::testing

#endif  // UNDERSTUDY_TRANSPORT_TESTING_TEST_PKI_H_
