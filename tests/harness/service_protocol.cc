#include "tests/harness/service_protocol.h"

#include "common/byte_order.h"

namespace understudy::testing {
namespace {

const std::byte* Bytes(const uint8_t* at) { return reinterpret_cast<const std::byte*>(at); }

}  // namespace

std::array<uint8_t, kServiceRequestBytes> EncodeServiceRequest(uint32_t client_id, uint32_t request_no, uint32_t op) {
  std::array<uint8_t, kServiceRequestBytes> request{};
  std::byte* at = reinterpret_cast<std::byte*>(request.data());
  StoreLittleEndian<uint32_t>(at, kServiceRequestMagic);
  StoreLittleEndian<uint32_t>(at + 4, client_id);
  StoreLittleEndian<uint32_t>(at + 8, request_no);
  StoreLittleEndian<uint32_t>(at + 12, op);
  return request;
}

std::optional<ServiceReply> DecodeServiceReply(std::span<const uint8_t> datagram) {
  if (datagram.size() != kServiceReplyBytes) return std::nullopt;
  const uint8_t* at = datagram.data();
  if (LoadLittleEndian<uint32_t>(Bytes(at)) != kServiceReplyMagic) return std::nullopt;
  ServiceReply reply;
  reply.client_id = LoadLittleEndian<uint32_t>(Bytes(at + 4));
  reply.request_no = LoadLittleEndian<uint32_t>(Bytes(at + 8));
  reply.status = static_cast<ReplyStatus>(LoadLittleEndian<uint32_t>(Bytes(at + 12)));
  reply.value = LoadLittleEndian<uint64_t>(Bytes(at + 16));
  return reply;
}

std::string ReplyStatusName(ReplyStatus status) {
  switch (status) {
    case ReplyStatus::kOk:
      return "ok";
    case ReplyStatus::kStale:
      return "stale";
    case ReplyStatus::kGap:
      return "gap";
    case ReplyStatus::kInvalid:
      return "invalid";
  }
  return "status " + std::to_string(static_cast<uint32_t>(status));
}

std::optional<ReplyStatus> ParseReplyStatusName(const std::string& name) {
  for (ReplyStatus status : {ReplyStatus::kOk, ReplyStatus::kStale, ReplyStatus::kGap, ReplyStatus::kInvalid}) {
    if (name == ReplyStatusName(status)) return status;
  }
  return std::nullopt;
}

}  // namespace understudy::testing
