// libFuzzer target for QemuStreamReader: the bytes a QEMU COLO primary sends us, which the
// primary agent parses incrementally (checkpoint/qemu_stream_reader.h).
//
// One input (layout in fuzz_input.h) chooses the reader's options and how the stream is cut
// into Feed() calls, so chunk boundaries (and the reader's carry-over between calls) are
// fuzzed together with the bytes. The visitor reads every byte of every span it is handed,
// so AddressSanitizer sees any view that reaches outside its buffer, and it checks what the
// reader's header promises about the values it passes on. Errors are fine: the reader must
// only never crash, leak, hang, trip UBSan, throw, or break a promise.
//
// Built two ways: with clang + libFuzzer + ASan/UBSan by tools/fuzz/fuzz.sh (the smoke test and long
// runs), and with the default toolchain + tools/fuzz/corpus_replay_main.cc as a plain test that replays
// the corpus.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/device_sections.h"
#include "checkpoint/fuzz/fuzz_input.h"
#include "checkpoint/qemu_stream_format.h"
#include "checkpoint/qemu_stream_reader.h"
#include "checkpoint/ram_block.h"
#include "common/status.h"

namespace understudy::checkpoint::fuzz {
namespace {

// A broken promise is a bug in the reader: report it the way libFuzzer reports crashes.
#define FUZZ_CHECK(condition, what)                                                            \
  do {                                                                                         \
    if (!(condition)) {                                                                        \
      std::fprintf(stderr, "qemu_stream_reader_fuzzer: broken promise at %s:%d: %s (%s)\n", \
                   __FILE__, __LINE__, what, #condition);                                      \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)

volatile uint8_t g_sink;  // keeps the reads of Touch() from being optimised away

void Touch(std::span<const std::byte> bytes) {
  uint8_t sum = 0;
  for (std::byte b : bytes) sum = static_cast<uint8_t>(sum + static_cast<uint8_t>(b));
  g_sink = sum;
}

void Touch(std::string_view text) { Touch(std::as_bytes(std::span(text.data(), text.size()))); }

class TouchingVisitor : public QemuStreamVisitor {
 public:
  // `fail_at`: the number of the callback that fails (0 = the first); negative never.
  explicit TouchingVisitor(int fail_at) : fail_at_(fail_at) {}

  Status OnConfiguration(const StreamConfiguration& configuration) override {
    Touch(configuration.machine_type);
    for (const std::string& capability : configuration.capabilities) Touch(capability);
    return Next();
  }

  Status OnCommand(uint16_t /*command*/, std::span<const std::byte> data) override {
    Touch(data);
    return Next();
  }

  Status OnRamBlocks(const RamBlockList& blocks) override {
    // One block list per stream (the reader refuses "a second RAM block list"), never empty.
    FUZZ_CHECK(!blocks_seen_, "OnRamBlocks called a second time");
    blocks_seen_ = true;
    FUZZ_CHECK(!blocks.empty(), "OnRamBlocks with no block");
    for (const RamBlockInfo& block : blocks) {
      Touch(block.id);
      FUZZ_CHECK(!block.id.empty(), "a RAM block without a name");
      FUZZ_CHECK(block.used_length > 0 && block.used_length % qemu_stream::kTargetPageSize == 0,
                 "a RAM block whose length is not a positive multiple of the page");
    }
    blocks_ = blocks;
    return Next();
  }

  Status OnRamPage(uint32_t block_index, uint64_t offset, std::span<const std::byte> page) override {
    FUZZ_CHECK(page.size() == qemu_stream::kTargetPageSize, "OnRamPage: the page is not 4096 bytes");
    CheckPageInBlock(block_index, offset);
    Touch(page);
    return Next();
  }

  Status OnRamZeroPage(uint32_t block_index, uint64_t offset, uint8_t /*fill*/) override {
    CheckPageInBlock(block_index, offset);
    return Next();
  }

  Status OnRamSectionEnd(RamSectionKind /*kind*/) override { return Next(); }

  Status OnDeviceState(std::span<const std::byte> sections_and_eof) override {
    FUZZ_CHECK(!sections_and_eof.empty(), "OnDeviceState: empty device state");
    FUZZ_CHECK(sections_and_eof.back() == std::byte{qemu_stream::kEof},
               "OnDeviceState: the device state does not end with the EOF byte");
    Touch(sections_and_eof);
    last_device_state_size_ = sections_and_eof.size();
    return Next();
  }

  Status OnVmDescription(std::string_view json, const std::vector<DeviceSectionSpan>& sections) override {
    Touch(json);
    for (const DeviceSectionSpan& section : sections) {
      Touch(section.name);
      // Offsets into the device state passed to OnDeviceState just before.
      FUZZ_CHECK(section.offset <= last_device_state_size_ && section.size <= last_device_state_size_ - section.offset,
                 "OnVmDescription: a device section reaches past the device state");
      FUZZ_CHECK(section.data_offset >= section.offset &&
                     section.data_size <= section.offset + section.size - section.data_offset,
                 "OnVmDescription: a device section's data lies outside the section");
    }
    return Next();
  }

  Status OnColoMessage(qemu_stream::ColoMessage message) override {
    FUZZ_CHECK(message == qemu_stream::ColoMessage::kCheckpointRequest ||
                   message == qemu_stream::ColoMessage::kVmstateSend ||
                   message == qemu_stream::ColoMessage::kVmstateSize,
               "OnColoMessage: a message QEMU does not send");
    return Next();
  }

 private:
  void CheckPageInBlock(uint32_t block_index, uint64_t offset) {
    FUZZ_CHECK(block_index < blocks_.size(), "a page in a block the block list did not announce");
    const RamBlockInfo& block = blocks_[block_index];
    FUZZ_CHECK(offset % qemu_stream::kTargetPageSize == 0, "a page offset that is not page-aligned");
    // Written without overflow: the block's length is a positive multiple of the page.
    FUZZ_CHECK(offset <= block.used_length - qemu_stream::kTargetPageSize,
               "a page that lies (partly) beyond the end of its RAM block");
  }

  Status Next() {
    if (callbacks_++ == fail_at_) return Status::Internal("the fuzzer's visitor fails this callback");
    return Status::Ok();
  }

  const int fail_at_;
  int callbacks_ = 0;
  bool blocks_seen_ = false;
  RamBlockList blocks_;
  size_t last_device_state_size_ = 0;
};

void FuzzOne(std::span<const std::byte> data) {
  std::optional<FuzzInput> input = DecodeFuzzInput(data);
  if (!input) return;

  QemuStreamReaderOptions options;
  if (input->flags & kFlagNoVmdescCrossCheck) options.require_vmdesc_cross_check = false;
  if (input->flags & kFlagSmallLimits) {
    options.max_device_state_bytes = kSmallLimitBytes;
    options.max_vmdesc_bytes = kSmallLimitBytes;
  }
  int fail_at = (input->flags & kFlagVisitorFails) ? input->flags >> kVisitorFailureShift : -1;
  TouchingVisitor visitor(fail_at);
  QemuStreamReader reader(visitor, options);

  const std::vector<uint8_t>& codes = input->chunk_codes;
  bool cuts = false;  // some code consumes bytes; otherwise feed the stream whole
  for (uint8_t code : codes) cuts = cuts || code != kChunkEmpty;

  std::span<const std::byte> rest = input->stream;
  uint64_t fed = 0;
  size_t next_code = 0;
  Status status;
  bool first_feed = true;
  while (first_feed || !rest.empty()) {
    first_feed = false;
    size_t take = cuts ? ChunkSize(codes[next_code++ % codes.size()], rest.size()) : rest.size();
    status = reader.Feed(rest.first(take));
    rest = rest.subspan(take);
    fed += take;
    FUZZ_CHECK(reader.bytes_consumed() <= fed, "consumed more bytes than were fed");
    if (!status.ok()) break;
  }
  if (!status.ok()) {
    // Sticky: every later call returns the first error again, whatever it is given.
    FUZZ_CHECK(reader.phase() == QemuStreamReader::Phase::kFailed, "failed but phase() is not kFailed");
    Status again = reader.Feed(rest);
    FUZZ_CHECK(!again.ok() && again.code() == status.code() && again.message() == status.message(),
               "the reader did not return its first error again");
  } else {
    FUZZ_CHECK(reader.phase() != QemuStreamReader::Phase::kFailed, "succeeded but phase() is kFailed");
  }
}

}  // namespace
}  // namespace understudy::checkpoint::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  understudy::checkpoint::fuzz::FuzzOne(std::as_bytes(std::span(data, size)));
  return 0;
}
