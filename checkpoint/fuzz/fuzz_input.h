// The layout of one input of the QemuStreamReader fuzzer: a few control bytes that choose the
// reader's options and how the stream is cut into Feed() calls, then the stream itself.
// The fuzzer decodes it; the seed corpus generator encodes it. Both share this header so a
// seed means what the generator meant.
//
//   byte 0       flags: bit 0 set → require_vmdesc_cross_check = false (streams whose VM
//                description lists no devices are then split by footers alone);
//                bit 1 set → small size limits (kSmallLimitBytes), to reach the limit checks;
//                bit 2 set → the visitor fails its callback number (flags >> 3) (0..31), to
//                reach the reader's handling of visitor errors.
//   byte 1       n: the number of chunk codes that follow, taken modulo kMaxChunkCodes + 1.
//   n bytes      chunk codes, used in a cycle to size successive Feed() calls:
//                  0          everything that is left
//                  1..191     that many bytes
//                  192..254   (code - 191) * 1021 bytes (1 KiB to 64 KiB, off page boundaries)
//                  255        an empty Feed()
//                With n = 0, or only 255 codes, the whole stream goes in one Feed().
//   the rest     the migration stream bytes.
//
// Thread safety: pure functions on values.
#ifndef UNDERSTUDY_CHECKPOINT_FUZZ_FUZZ_INPUT_H_
#define UNDERSTUDY_CHECKPOINT_FUZZ_FUZZ_INPUT_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace understudy::checkpoint::fuzz {

inline constexpr uint8_t kFlagNoVmdescCrossCheck = 0x01;
inline constexpr uint8_t kFlagSmallLimits = 0x02;
inline constexpr uint8_t kFlagVisitorFails = 0x04;
inline constexpr int kVisitorFailureShift = 3;  // flags >> 3: which callback fails
inline constexpr uint32_t kSmallLimitBytes = 64u << 10;
inline constexpr size_t kMaxChunkCodes = 32;

inline constexpr uint8_t kChunkRest = 0;
inline constexpr uint8_t kChunkEmpty = 255;

struct FuzzInput {
  uint8_t flags = 0;
  std::vector<uint8_t> chunk_codes;
  std::span<const std::byte> stream;
};

// Nullopt when `data` is too short to hold the control bytes.
inline std::optional<FuzzInput> DecodeFuzzInput(std::span<const std::byte> data) {
  if (data.size() < 2) return std::nullopt;
  FuzzInput input;
  input.flags = static_cast<uint8_t>(data[0]);
  size_t count = static_cast<uint8_t>(data[1]) % (kMaxChunkCodes + 1);
  if (data.size() < 2 + count) return std::nullopt;
  for (size_t i = 0; i < count; ++i) input.chunk_codes.push_back(static_cast<uint8_t>(data[2 + i]));
  input.stream = data.subspan(2 + count);
  return input;
}

// The size of the next Feed() for `code` when `remaining` stream bytes are left (never more).
inline size_t ChunkSize(uint8_t code, size_t remaining) {
  size_t size;
  if (code == kChunkRest) {
    size = remaining;
  } else if (code == kChunkEmpty) {
    size = 0;
  } else if (code < 192) {
    size = code;
  } else {
    size = static_cast<size_t>(code - 191) * 1021;
  }
  return std::min(size, remaining);
}

// REQUIRES: chunk_codes.size() <= kMaxChunkCodes.
inline std::string EncodeFuzzInput(uint8_t flags, const std::vector<uint8_t>& chunk_codes,
                                   std::span<const std::byte> stream) {
  std::string out;
  out.push_back(static_cast<char>(flags));
  out.push_back(static_cast<char>(chunk_codes.size()));
  for (uint8_t code : chunk_codes) out.push_back(static_cast<char>(code));
  out.append(reinterpret_cast<const char*>(stream.data()), stream.size());
  return out;
}

}  // namespace understudy::checkpoint::fuzz

#endif  // UNDERSTUDY_CHECKPOINT_FUZZ_FUZZ_INPUT_H_
