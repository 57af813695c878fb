// The messages the arbiter exchanges with etcd's v3 JSON gateway, as pure functions: the
// requests it sends (range, compare-and-swap transaction) and the parsing of etcd's replies.
//
// etcd's replies are input like any other: whoever can write the key (or answer on etcd's
// port) must not be able to end an agent with a field of an unexpected type. Every parser
// returns kCorruption naming the field for anything malformed, never throws, and is fuzzed
// (failover/fuzz/etcd_reply_fuzzer.cc).
//
// The gateway (grpc-gateway) writes int64 fields as JSON strings and bytes fields (keys and
// values) as base64.
#ifndef UNDERSTUDY_FAILOVER_ETCD_REPLY_H_
#define UNDERSTUDY_FAILOVER_ETCD_REPLY_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "failover/arbiter.h"

namespace understudy::failover {

// POST /v3/kv/range for `key`.
std::string EtcdRangeRequest(const std::string& key);

// POST /v3/kv/txn: put {"owner","mode"} into `key` iff its mod_revision is `expected_revision`
// (0: the key does not exist).
std::string EtcdCompareAndSwapRequest(const std::string& key, uint64_t expected_revision, const std::string& owner,
                                      const std::string& mode);

// The ownership record in a range reply for `key` (revision 0 and empty fields when the key
// does not exist). The record's value must be a JSON object whose "owner" and "mode", when
// present, are strings.
Result<OwnershipRecord> ParseEtcdRangeReply(std::string_view body, const std::string& key);

// Whether a txn reply says the comparison held (the put was applied).
Result<bool> ParseEtcdTxnReply(std::string_view body);

// The store's revision after a put (the header's "revision"), for tests and tools that write
// the key directly.
Result<uint64_t> ParseEtcdPutReply(std::string_view body);

}  // namespace understudy::failover

#endif  // UNDERSTUDY_FAILOVER_ETCD_REPLY_H_
