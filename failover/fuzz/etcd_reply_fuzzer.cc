// libFuzzer target for etcd's replies to the arbiter (failover/etcd_reply.h): whoever answers
// on etcd's port, or can write the ownership key, chooses these bytes. The first input byte
// picks the reply (0: range, 1: txn, 2: put); the rest is the reply's body. Errors are fine;
// an escaping exception (nlohmann's type_error ended both agents once, issue 16), a crash, or
// a broken promise below are not.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "failover/etcd_reply.h"
#include "tools/fuzz/fuzz_promise.h"

namespace {

using namespace understudy;

using fuzz::Require;

const std::string kKey = "/understudy/vms/web1/owner";

void CheckRange(std::string_view body) {
  Result<failover::OwnershipRecord> record = failover::ParseEtcdRangeReply(body, kKey);
  if (!record.ok()) {
    Require(record.status().code() == Status::Code::kCorruption, "a malformed range reply is kCorruption");
    return;
  }
  if (record->revision == 0) {
    Require(record->owner.empty() && record->mode.empty(), "an absent record has no owner and no mode");
  }
  // What a reply gave must be usable in the next request without throwing (e.g. valid UTF-8).
  std::string request = failover::EtcdCompareAndSwapRequest(kKey, record->revision, record->owner, record->mode);
  Require(!request.empty(), "a swap request is built from any accepted record");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      CheckRange(body);
      break;
    case 1: {
      Result<bool> won = failover::ParseEtcdTxnReply(body);
      Require(won.ok() || won.status().code() == Status::Code::kCorruption, "a malformed txn reply is kCorruption");
      break;
    }
    default: {
      Result<uint64_t> revision = failover::ParseEtcdPutReply(body);
      Require(!revision.ok() || *revision > 0, "an accepted put reply names a revision");
      Require(revision.ok() || revision.status().code() == Status::Code::kCorruption,
              "a malformed put reply is kCorruption");
      break;
    }
  }
  return 0;
}
