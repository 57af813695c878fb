// Constants of QEMU 7.2's migration stream and COLO protocol, as Understudy reads and writes
// them. The byte grammar, with values seen on the wire, is in shared/notes/qemu-colo-stream.md;
// QEMU's own definitions are in migration/savevm.{c,h}, migration/ram.c and
// qapi/migration.json (COLOMessage). All multi-byte integers in the stream are big-endian.
#ifndef UNDERSTUDY_CHECKPOINT_QEMU_STREAM_FORMAT_H_
#define UNDERSTUDY_CHECKPOINT_QEMU_STREAM_FORMAT_H_

#include <cstdint>
#include <string_view>

namespace understudy::checkpoint::qemu_stream {

inline constexpr uint32_t kFileMagic = 0x5145564d;  // "QEVM"
inline constexpr uint32_t kFileVersion = 3;

// Section types (one byte).
enum SectionType : uint8_t {
  kEof = 0x00,
  kSectionStart = 0x01,
  kSectionPart = 0x02,
  kSectionEnd = 0x03,
  kSectionFull = 0x04,
  kSubsection = 0x05,
  kVmDescription = 0x06,
  kConfiguration = 0x07,
  kCommand = 0x08,
  kSectionFooter = 0x7e,
};

// QEMU_VM_COMMAND numbers (be16). Only ENABLE_COLO appears in a COLO stream by default.
inline constexpr uint16_t kCommandEnableColo = 8;

// RAM record flags: the low bits of each record's be64 header; the rest is the page offset.
inline constexpr uint64_t kRamFlagMask = 0xfff;  // below the 4 KiB target page
inline constexpr uint64_t kRamFlagFull = 0x01;    // obsolete, never valid
inline constexpr uint64_t kRamFlagZero = 0x02;    // one fill byte follows
inline constexpr uint64_t kRamFlagMemSize = 0x04;  // block list follows
inline constexpr uint64_t kRamFlagPage = 0x08;     // 4096 bytes follow
inline constexpr uint64_t kRamFlagEos = 0x10;      // end of this section's records
inline constexpr uint64_t kRamFlagContinue = 0x20;  // same block as the previous record
inline constexpr uint64_t kRamFlagXbzrle = 0x40;
inline constexpr uint64_t kRamFlagHook = 0x80;
inline constexpr uint64_t kRamFlagCompressPage = 0x100;
inline constexpr uint64_t kRamFlagMultifdFlush = 0x200;

inline constexpr uint32_t kTargetPageSize = 4096;
inline constexpr std::string_view kRamSectionName = "ram";
inline constexpr uint32_t kRamSectionVersion = 4;

// The configuration subsection that announces migration capabilities (x-ignore-shared).
inline constexpr std::string_view kCapabilitiesSubsection = "configuration/capabilities";
inline constexpr std::string_view kIgnoreSharedCapability = "x-ignore-shared";

// COLO messages (be32), qapi COLOMessage. S = secondary (us on the primary host), P = QEMU.
enum class ColoMessage : uint32_t {
  kCheckpointReady = 0,    // S→P once, after the initial precopy is loaded
  kCheckpointRequest = 1,  // P→S: a checkpoint is about to start
  kCheckpointReply = 2,    // S→P: go ahead (QEMU stops the VM after this)
  kVmstateSend = 3,        // P→S: the live RAM section and the device state follow
  kVmstateSize = 4,        // P→S: be64 size, then that many bytes of device state
  kVmstateReceived = 5,    // S→P
  kVmstateLoaded = 6,      // S→P: QEMU resumes the VM
};
inline constexpr uint32_t kColoMessageCount = 7;

std::string_view ColoMessageName(ColoMessage message);

}  // namespace understudy::checkpoint::qemu_stream

#endif  // UNDERSTUDY_CHECKPOINT_QEMU_STREAM_FORMAT_H_
