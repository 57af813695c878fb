#include "transport/testing/test_pki.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <memory>

namespace understudy::transport::testing {

namespace {

struct Deleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
  void operator()(X509* cert) const { X509_free(cert); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter>;
using CertPtr = std::unique_ptr<X509, Deleter>;

KeyPtr NewKey() { return KeyPtr(EVP_EC_gen("P-256")); }

Status WritePem(const std::string& path, EVP_PKEY* key, X509* cert) {
  FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) return Status::IOError("cannot write " + path);
  bool ok = key ? PEM_write_PrivateKey(file, key, nullptr, nullptr, 0, nullptr, nullptr) == 1
                : PEM_write_X509(file, cert) == 1;
  std::fclose(file);
  return ok ? Status::Ok() : Status::IOError("PEM write failed for " + path);
}

Result<KeyPtr> ReadKey(const std::string& path) {
  FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) return Status::IOError("cannot read " + path);
  KeyPtr key(PEM_read_PrivateKey(file, nullptr, nullptr, nullptr));
  std::fclose(file);
  if (!key) return Status::Corruption("bad key " + path);
  return key;
}

Result<CertPtr> ReadCert(const std::string& path) {
  FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) return Status::IOError("cannot read " + path);
  CertPtr cert(PEM_read_X509(file, nullptr, nullptr, nullptr));
  std::fclose(file);
  if (!cert) return Status::Corruption("bad certificate " + path);
  return cert;
}

void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX context;
  X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value);
  X509_add_ext(cert, extension, -1);
  X509_EXTENSION_free(extension);
}

CertPtr Build(const std::string& common_name, EVP_PKEY* subject_key, X509* issuer, EVP_PKEY* issuer_key,
              int from_days, int to_days, bool is_ca) {
  CertPtr cert(X509_new());
  static long serial = 1;
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), static_cast<long>(from_days) * 86400);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(to_days) * 86400);
  X509_set_pubkey(cert.get(), subject_key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509* issuer_cert = issuer ? issuer : cert.get();
  if (is_ca) {
    AddExtension(cert.get(), issuer_cert, NID_basic_constraints, "critical,CA:TRUE");
    AddExtension(cert.get(), issuer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExtension(cert.get(), issuer_cert, NID_subject_alt_name, ("DNS:" + common_name).c_str());
    AddExtension(cert.get(), issuer_cert, NID_ext_key_usage, "serverAuth,clientAuth");
  }
  X509_sign(cert.get(), issuer_key, EVP_sha256());
  return cert;
}

}  // namespace

Result<TestPki> TestPki::Create(const std::string& directory, const std::string& ca_name) {
  TestPki pki;
  pki.directory_ = directory;
  pki.ca_name_ = ca_name;
  pki.ca_cert_file_ = directory + "/" + ca_name + ".pem";
  pki.ca_key_file_ = directory + "/" + ca_name + ".key";
  KeyPtr key = NewKey();
  if (!key) return Status::Internal("EC key generation failed");
  CertPtr cert = Build(ca_name, key.get(), nullptr, key.get(), -1, 3650, /*is_ca=*/true);
  UNDERSTUDY_RETURN_IF_ERROR(WritePem(pki.ca_key_file_, key.get(), nullptr));
  UNDERSTUDY_RETURN_IF_ERROR(WritePem(pki.ca_cert_file_, nullptr, cert.get()));
  return pki;
}

Result<CertificateFiles> TestPki::Issue(const std::string& host, int valid_from_days, int valid_to_days) const {
  UNDERSTUDY_ASSIGN_OR_RETURN(KeyPtr ca_key, ReadKey(ca_key_file_));
  UNDERSTUDY_ASSIGN_OR_RETURN(CertPtr ca_cert, ReadCert(ca_cert_file_));
  KeyPtr key = NewKey();
  CertPtr cert = Build(host, key.get(), ca_cert.get(), ca_key.get(), valid_from_days, valid_to_days, /*is_ca=*/false);
  std::string stem = directory_ + "/" + ca_name_ + "-" + host + (valid_to_days < 0 ? "-expired" : "");
  CertificateFiles files{stem + ".pem", stem + ".key"};
  UNDERSTUDY_RETURN_IF_ERROR(WritePem(files.key_file, key.get(), nullptr));
  UNDERSTUDY_RETURN_IF_ERROR(WritePem(files.cert_file, nullptr, cert.get()));
  return files;
}

Result<TlsOptions> TestPki::OptionsFor(const std::string& host) const {
  UNDERSTUDY_ASSIGN_OR_RETURN(CertificateFiles files, Issue(host));
  TlsOptions options;
  options.ca_file = ca_cert_file_;
  options.cert_file = files.cert_file;
  options.key_file = files.key_file;
  return options;
}

}  // namespace understudy::transport::testing
