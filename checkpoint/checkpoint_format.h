// Constants of Understudy's checkpoint format, version 1. The format is specified, with byte
// tables and a worked example, in checkpoint/FORMAT.md; change both together.
#ifndef UNDERSTUDY_CHECKPOINT_CHECKPOINT_FORMAT_H_
#define UNDERSTUDY_CHECKPOINT_CHECKPOINT_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace understudy::checkpoint::format {

inline constexpr uint32_t kMagic = 0x50435355;  // "USCP" read as little-endian
inline constexpr uint16_t kVersion = 1;
inline constexpr size_t kHeaderBytes = 32;
inline constexpr size_t kSectionHeaderBytes = 12;
inline constexpr uint32_t kMaxSectionBytes = 256u << 20;
// A writer puts at most this many bytes of one output stream into one output section (an
// epoch's output larger than this spans several sections at consecutive stream offsets), and
// starts a new disk_writes section once one reaches it: no section of either comes near
// kMaxSectionBytes, however much an epoch carries.
inline constexpr uint32_t kChunkSectionBytes = 16u << 20;
inline constexpr uint32_t kPageBytes = 4096;
// The largest RAM block, and the largest sum of all blocks, a ram_blocks section may announce:
// 1 TiB, far above any VM this appliance protects; a reader refuses more before allocating.
// (The secondary bounds the image further by the VM definition's memory.)
inline constexpr uint64_t kMaxRamBytes = uint64_t{1} << 40;

inline constexpr uint32_t kHeaderFlagFull = 1u << 0;
inline constexpr uint16_t kSectionFlagIgnorable = 1u << 0;

// Section types. Numbers are never reused.
enum class SectionType : uint16_t {
  kMachineDefinition = 1,
  kStreamInfo = 2,
  kRamBlocks = 3,
  kPages = 4,
  kDeviceState = 5,
  kOutput = 6,
  kDiskWrites = 7,
  kCommit = 0x7fff,
};

enum class PageEncoding : uint8_t {
  kRaw = 0,
  kZero = 1,
  kLz4 = 2,
  kXorLz4 = 3,
};

std::string_view SectionTypeName(uint16_t type);
std::string_view PageEncodingName(PageEncoding encoding);

}  // namespace understudy::checkpoint::format

#endif  // UNDERSTUDY_CHECKPOINT_CHECKPOINT_FORMAT_H_
