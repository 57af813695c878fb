// Byte-level tests of the QEMU stream reader on synthetic streams: each kind of damage gets
// its own, specific error naming the offset, and errors are sticky.
#include "checkpoint/qemu_stream_reader.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "checkpoint/qemu_stream_format.h"
#include "common/byte_order.h"

namespace understudy::checkpoint {
namespace {

namespace qs = qemu_stream;

// Builds a small but complete COLO stream: precopy with two devices, then checkpoints.
class SyntheticStream {
 public:
  std::string bytes;
  size_t precopy_end = 0;
  std::vector<size_t> checkpoint_starts;

  void Byte(uint8_t value) { bytes.push_back(static_cast<char>(value)); }
  void Be16(uint16_t value) { AppendBigEndian(bytes, value); }
  void Be32(uint32_t value) { AppendBigEndian(bytes, value); }
  void Be64(uint64_t value) { AppendBigEndian(bytes, value); }
  void Short(std::string_view text) {
    Byte(static_cast<uint8_t>(text.size()));
    bytes.append(text);
  }
  void Page(uint64_t offset, uint64_t flags, std::string_view block, char fill) {
    Be64(offset | flags);
    if (!(flags & qs::kRamFlagContinue)) Short(block);
    if (flags & qs::kRamFlagPage) bytes.append(4096, fill);
    if (flags & qs::kRamFlagZero) Byte(0);
  }
  // Device section with `data_size` bytes of fields; returns its vmdesc entry.
  nlohmann::json Device(uint32_t id, std::string_view name, size_t data_size, char fill) {
    Byte(qs::kSectionFull);
    Be32(id);
    Short(name);
    Be32(0);  // instance
    Be32(1);  // version
    bytes.append(data_size, fill);
    Byte(qs::kSectionFooter);
    Be32(id);
    return {{"name", name}, {"instance_id", 0}, {"fields", {{{"name", "data"}, {"type", "buffer"}, {"size", data_size}}}}};
  }
  std::string DeviceState() {
    std::string saved = std::move(bytes);
    bytes.clear();
    Device(3, "cpu", 40, 'c');
    Device(4, "serial", 12, 's');
    Byte(qs::kEof);
    std::string state = std::move(bytes);
    bytes = std::move(saved);
    return state;
  }

  static SyntheticStream Make(int checkpoints) {
    SyntheticStream s;
    s.Be32(qs::kFileMagic);
    s.Be32(qs::kFileVersion);
    s.Byte(qs::kConfiguration);
    s.Be32(13);
    s.bytes.append("pc-i440fx-7.2");
    s.Byte(qs::kCommand);
    s.Be16(qs::kCommandEnableColo);
    s.Be16(0);
    s.Byte(qs::kSectionStart);
    s.Be32(2);
    s.Short("ram");
    s.Be32(0);
    s.Be32(4);
    s.Be64((64 * 4096 + 16 * 4096) | qs::kRamFlagMemSize);
    s.Short("pc.ram");
    s.Be64(64 * 4096);
    s.Short("vga.vram");
    s.Be64(16 * 4096);
    s.Be64(qs::kRamFlagEos);
    s.Byte(qs::kSectionFooter);
    s.Be32(2);
    s.Byte(qs::kSectionPart);
    s.Be32(2);
    s.Page(0, qs::kRamFlagPage, "pc.ram", 'a');
    s.Page(4096, qs::kRamFlagZero | qs::kRamFlagContinue, "", 0);
    s.Page(0, qs::kRamFlagPage, "vga.vram", 'v');
    s.Be64(qs::kRamFlagEos);
    s.Byte(qs::kSectionFooter);
    s.Be32(2);
    s.Byte(qs::kSectionEnd);
    s.Be32(2);
    s.Be64(qs::kRamFlagEos);
    s.Byte(qs::kSectionFooter);
    s.Be32(2);
    nlohmann::json vmdesc = {{"devices", nlohmann::json::array()}};
    vmdesc["devices"].push_back(s.Device(3, "cpu", 40, 'c'));
    vmdesc["devices"].push_back(s.Device(4, "serial", 12, 's'));
    s.Byte(qs::kEof);
    s.Byte(qs::kVmDescription);
    // QEMU's opening is `{"page_size": 4096, ` (with a space), which the reader looks for.
    std::string json = "{\"page_size\": 4096, \"devices\":" + vmdesc["devices"].dump() + "}";
    s.Be32(static_cast<uint32_t>(json.size()));
    s.bytes.append(json);
    s.precopy_end = s.bytes.size();
    for (int i = 0; i < checkpoints; ++i) {
      s.checkpoint_starts.push_back(s.bytes.size());
      s.Be32(static_cast<uint32_t>(qs::ColoMessage::kCheckpointRequest));
      s.Be32(static_cast<uint32_t>(qs::ColoMessage::kVmstateSend));
      s.Byte(qs::kSectionEnd);
      s.Be32(2);
      s.Page(8192, qs::kRamFlagPage, "pc.ram", static_cast<char>('0' + i));
      s.Page(12288, qs::kRamFlagPage | qs::kRamFlagContinue, "", 'x');
      s.Be64(qs::kRamFlagEos);
      s.Byte(qs::kSectionFooter);
      s.Be32(2);
      s.Byte(qs::kEof);
      std::string state = s.DeviceState();
      s.Be32(static_cast<uint32_t>(qs::ColoMessage::kVmstateSize));
      s.Be64(state.size());
      s.bytes.append(state);
    }
    return s;
  }
};

struct Recorder : QemuStreamVisitor {
  int pages = 0, zero_pages = 0, device_states = 0, vmdescs = 0;
  std::vector<std::string> blocks;
  Status OnRamBlocks(const RamBlockList& list) override {
    for (const auto& block : list) blocks.push_back(block.id);
    return Status::Ok();
  }
  Status OnRamPage(uint32_t, uint64_t, std::span<const std::byte> page) override {
    EXPECT_EQ(page.size(), 4096u);
    ++pages;
    return Status::Ok();
  }
  Status OnRamZeroPage(uint32_t, uint64_t, uint8_t) override {
    ++zero_pages;
    return Status::Ok();
  }
  Status OnDeviceState(std::span<const std::byte>) override {
    ++device_states;
    return Status::Ok();
  }
  Status OnVmDescription(std::string_view, const std::vector<DeviceSectionSpan>& sections) override {
    EXPECT_EQ(sections.size(), 2u);
    ++vmdescs;
    return Status::Ok();
  }
};

std::span<const std::byte> Bytes(const std::string& text) { return std::as_bytes(std::span(text.data(), text.size())); }

void ExpectError(const std::string& bytes, Status::Code code, const std::string& expected) {
  Recorder recorder;
  QemuStreamReader reader(recorder);
  Status status = reader.Feed(Bytes(bytes));
  ASSERT_FALSE(status.ok()) << "expected: " << expected;
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_NE(status.message().find(expected), std::string::npos) << status;
  // Sticky: more input gets the same error back.
  EXPECT_EQ(reader.Feed(Bytes("more")).message(), status.message());
  EXPECT_EQ(reader.phase(), QemuStreamReader::Phase::kFailed);
}

TEST(QemuStreamReaderTest, ParsesTheSyntheticStream) {
  SyntheticStream s = SyntheticStream::Make(3);
  Recorder recorder;
  QemuStreamReader reader(recorder);
  ASSERT_TRUE(reader.Feed(Bytes(s.bytes)).ok()) << reader.Feed({});
  EXPECT_EQ(recorder.blocks, (std::vector<std::string>{"pc.ram", "vga.vram"}));
  EXPECT_EQ(recorder.pages, 2 + 3 * 2);
  EXPECT_EQ(recorder.zero_pages, 1);
  EXPECT_EQ(recorder.vmdescs, 1);
  EXPECT_EQ(recorder.device_states, 1 + 3);
  EXPECT_EQ(reader.checkpoints_completed(), 3u);
  EXPECT_EQ(reader.phase(), QemuStreamReader::Phase::kAwaitingCheckpoint);
}

TEST(QemuStreamReaderTest, ATruncatedStreamWaitsAndReportsNothingPartial) {
  SyntheticStream s = SyntheticStream::Make(2);
  for (size_t cut = 0; cut < s.bytes.size(); ++cut) {
    Recorder recorder;
    QemuStreamReader reader(recorder);
    ASSERT_TRUE(reader.Feed(Bytes(s.bytes.substr(0, cut))).ok()) << "cut at " << cut;
    // A checkpoint counts only once all of it has arrived: its end is the next one's start.
    uint64_t complete = 0;
    for (size_t i = 1; i < s.checkpoint_starts.size(); ++i) complete += s.checkpoint_starts[i] <= cut ? 1 : 0;
    EXPECT_EQ(reader.checkpoints_completed(), complete) << "cut at " << cut;
    if (cut < s.precopy_end) {
      EXPECT_EQ(recorder.vmdescs, 0) << "cut at " << cut;
      EXPECT_EQ(reader.phase(), QemuStreamReader::Phase::kPrecopy);
    }
    // Feeding the rest completes it exactly as in one piece.
    ASSERT_TRUE(reader.Feed(Bytes(s.bytes.substr(cut))).ok()) << "cut at " << cut;
    EXPECT_EQ(reader.checkpoints_completed(), 2u);
    EXPECT_EQ(recorder.device_states, 3);
  }
}

TEST(QemuStreamReaderTest, BadMagicAndVersion) {
  SyntheticStream s = SyntheticStream::Make(0);
  std::string damaged = s.bytes;
  damaged[0] = 'X';
  ExpectError(damaged, Status::Code::kCorruption, "not a QEMU migration stream: magic 0x5845564d at offset 0");
  damaged = s.bytes;
  damaged[7] = 2;
  ExpectError(damaged, Status::Code::kNotSupported, "QEMU migration stream version 2 at offset 4");
}

TEST(QemuStreamReaderTest, UnsupportedRamFlagsAreNamedWithTheirOffset) {
  SyntheticStream s = SyntheticStream::Make(0);
  // The PART section's first record header starts 5 bytes after its 02.
  size_t part = s.bytes.find(std::string("\x02\x00\x00\x00\x02", 5));
  ASSERT_NE(part, std::string::npos);
  size_t record = part + 5;
  for (auto [flag, name] : std::vector<std::pair<uint8_t, std::string>>{
           {0x40, "XBZRLE (0x40)"}, {0x80, "HOOK (RDMA migration) (0x80)"}, {0x01, "FULL (obsolete) (0x1)"}}) {
    std::string damaged = s.bytes;
    damaged[record + 7] = static_cast<char>(flag | 0x08);
    ExpectError(damaged, Status::Code::kNotSupported,
                "RAM record flag " + name + " at offset " + std::to_string(record) + " is not supported");
  }
  std::string damaged = s.bytes;
  damaged[record + 6] = 0x01;  // COMPRESS_PAGE (0x100)
  ExpectError(damaged, Status::Code::kNotSupported, "COMPRESS_PAGE (0x100)");
}

TEST(QemuStreamReaderTest, StructuralDamageIsCorruptionNamingWhat) {
  SyntheticStream s = SyntheticStream::Make(1);
  size_t part = s.bytes.find(std::string("\x02\x00\x00\x00\x02", 5));
  std::string damaged = s.bytes;
  damaged[part + 5 + 9] = 'X';  // "pc.ram" -> "Xc.ram"
  ExpectError(damaged, Status::Code::kCorruption, "unknown block 'Xc.ram'");

  damaged = s.bytes;
  damaged[part + 5 + 7] = 0x28;  // first record claims CONTINUE, but no block came before
  ExpectError(damaged, Status::Code::kCorruption, "CONTINUE but no previous block");

  damaged = s.bytes;
  damaged[part + 5 + 5] = 0x10;  // offset 0x100000, beyond the 256 KiB block
  ExpectError(damaged, Status::Code::kCorruption, "beyond block 'pc.ram'");

  damaged = s.bytes;
  size_t end = s.bytes.find(std::string("\x03\x00\x00\x00\x02", 5));
  damaged[end + 5 + 8 + 4] = 9;  // the END section's footer names section 9
  ExpectError(damaged, Status::Code::kCorruption, "missing footer for section 2");

  damaged = s.bytes;
  damaged[part] = 0x09;
  ExpectError(damaged, Status::Code::kCorruption, "unexpected section type 0x9 at offset " + std::to_string(part));

  damaged = s.bytes;
  damaged[part + 4] = 7;
  ExpectError(damaged, Status::Code::kCorruption, "SECTION_PART for unknown section id 7");
}

TEST(QemuStreamReaderTest, VmDescriptionThatDisagreesWithTheDevicesIsAnError) {
  SyntheticStream s = SyntheticStream::Make(0);
  std::string damaged = s.bytes;
  size_t size_field = damaged.find("\"size\":40");
  ASSERT_NE(size_field, std::string::npos);
  damaged.replace(size_field, 9, "\"size\":41");
  ExpectError(damaged, Status::Code::kCorruption, "device 'cpu': the VM description's sizes end at offset");
}

TEST(QemuStreamReaderTest, ColoProtocolViolations) {
  SyntheticStream s = SyntheticStream::Make(1);
  size_t checkpoint = s.checkpoint_starts[0];
  std::string damaged = s.bytes;
  damaged[checkpoint + 3] = static_cast<char>(qs::ColoMessage::kVmstateSend);
  ExpectError(damaged, Status::Code::kCorruption, "COLO message vmstate-send at offset " + std::to_string(checkpoint) +
                                                      ", expected checkpoint-request");
  damaged = s.bytes;
  damaged[checkpoint + 3] = 42;
  ExpectError(damaged, Status::Code::kCorruption, "unknown COLO message 42");

  size_t size_message = s.bytes.size() - s.DeviceState().size() - 12;
  damaged = s.bytes;
  damaged[size_message + 4] = 0x7f;  // absurd vmstate-size
  ExpectError(damaged, Status::Code::kCorruption, "vmstate-size of");

  damaged = s.bytes;
  damaged.back() = 'Z';  // device state without its EOF
  ExpectError(damaged, Status::Code::kCorruption, "device state does not end with EOF");
}

TEST(QemuStreamReaderTest, StartingMidStreamIsRejectedAtOnce) {
  SyntheticStream s = SyntheticStream::Make(1);
  ExpectError(s.bytes.substr(s.checkpoint_starts[0]), Status::Code::kCorruption, "not a QEMU migration stream");
}

}  // namespace
}  // namespace understudy::checkpoint
