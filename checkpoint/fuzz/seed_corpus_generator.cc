// Writes the QemuStreamReader fuzzer's seed corpus from a real COLO stream.
//
//   bazel run //checkpoint/fuzz:seed_corpus_generator [-- OUTPUT_DIR]
//
// Records the counter guest under KVM as a COLO primary (tests/harness/colo_recording.h) for
// a few checkpoints, finds where every unit of the stream starts (QemuStreamReader's
// bytes_consumed() during each callback), and cuts the stream into small seeds made of QEMU's
// own bytes: the precopy head, RAM records, the device state and VM description, whole
// checkpoints (trimmed to a few page records each, so the corpus stays small), and truncated
// variants. Three liberties keep the seeds small and parseable: dropping whole RAM records
// (a CONTINUE record that starts a kept run is given its block's name, as QEMU does when the
// block changes), a VM description cut down to the first devices (re-serialised JSON), and one
// x-ignore-shared stream written by QemuStreamWriter around the real blocks and devices.
// Each seed carries the control bytes of fuzz_input.h in front. Every seed is parsed once
// more before it is written and the outcome printed, so a change in QEMU's stream shows here.
//
// OUTPUT_DIR defaults to checkpoint/fuzz/corpus/qemu_stream in the workspace. Only files named
// seed-* are written; other files there (crash-regression-*) are left alone.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "checkpoint/fuzz/fuzz_input.h"
#include "checkpoint/qemu_stream_format.h"
#include "checkpoint/qemu_stream_reader.h"
#include "checkpoint/qemu_stream_writer.h"
#include "common/byte_order.h"
#include "tests/harness/colo_recording.h"

namespace understudy::checkpoint::fuzz {
namespace {

namespace qs = qemu_stream;
using Bytes = std::vector<std::byte>;

constexpr size_t kSectionStartHeaderBytes = 1 + 4 + 1 + 3 + 4 + 4;  // 01 sid 03 "ram" inst ver
constexpr size_t kSectionPartHeaderBytes = 1 + 4;                   // 02/03 sid
constexpr size_t kEosBytes = 8;
constexpr size_t kFooterBytes = 5;

struct Record {
  size_t offset = 0;
  size_t end = 0;
  uint32_t block = 0;
  bool page = false;   // PAGE (4096 bytes) rather than ZERO
  bool named = false;  // carries its block's name (no CONTINUE)
};

struct RamSection {
  size_t header = 0;        // the section type byte
  size_t records_from = 0;  // after the header (and the block list in SECTION_START)
  std::vector<Record> records;
  size_t eos = 0;           // the EOS record; the footer follows it
};

struct Checkpoint {
  size_t request = 0;       // checkpoint-request message
  RamSection live;          // the END section after vmstate-send
  size_t size_message = 0;  // vmstate-size message (after the EOF byte)
  size_t end = 0;           // after the device buffer
};

// Where every unit of the stream starts, learned from the reader's callbacks.
struct StreamMap {
  std::vector<RamSection> precopy_sections;
  size_t devices = 0;    // first device section of the precopy
  size_t device_bytes = 0;
  size_t vmdesc_end = 0;  // end of the initial precopy
  std::string vmdesc_json;
  std::vector<DeviceSectionSpan> device_sections;  // as the reader split the precopy's
  std::vector<Checkpoint> checkpoints;
  RamBlockList blocks;
};

class MappingVisitor : public QemuStreamVisitor {
 public:
  MappingVisitor(const Bytes& stream, StreamMap& map) : stream_(stream), map_(map) {}
  void set_reader(const QemuStreamReader* reader) { reader_ = reader; }

  Status OnRamBlocks(const RamBlockList& blocks) override {
    map_.blocks = blocks;
    RamSection section;
    section.header = Offset() - kSectionStartHeaderBytes;
    section.records_from = kUnset;  // the first record's offset, or the EOS's
    map_.precopy_sections.push_back(section);
    section_open_ = true;
    return Status::Ok();
  }
  Status OnRamPage(uint32_t block, uint64_t, std::span<const std::byte>) override { return AddRecord(block, true); }
  Status OnRamZeroPage(uint32_t block, uint64_t, uint8_t) override { return AddRecord(block, false); }
  Status OnRamSectionEnd(RamSectionKind) override {
    OpenSectionIfNew();
    RamSection& section = Current();
    section.eos = Offset() - kEosBytes;
    if (section.records_from == kUnset) section.records_from = section.eos;
    if (!section.records.empty()) section.records.back().end = section.eos;
    last_footer_end_ = Offset() + kFooterBytes;
    section_open_ = false;
    return Status::Ok();
  }
  Status OnDeviceState(std::span<const std::byte> state) override {
    if (!reader_->precopy_complete()) {
      map_.devices = last_footer_end_;
      map_.device_bytes = state.size();
    } else {
      map_.checkpoints.back().end = map_.checkpoints.back().size_message + 12 + state.size();
    }
    return Status::Ok();
  }
  Status OnVmDescription(std::string_view json, const std::vector<DeviceSectionSpan>& sections) override {
    map_.vmdesc_json = std::string(json);
    map_.device_sections = sections;
    map_.vmdesc_end = map_.devices + map_.device_bytes + 1 + 4 + json.size();  // 06 be32 json
    return Status::Ok();
  }
  Status OnColoMessage(qs::ColoMessage message) override {
    if (message == qs::ColoMessage::kCheckpointRequest) {
      map_.checkpoints.emplace_back();
      map_.checkpoints.back().request = Offset();
    } else if (message == qs::ColoMessage::kVmstateSend) {
      // The live part's END section header follows the 4-byte message.
      RamSection& live = map_.checkpoints.back().live;
      live.header = Offset() + 4;
      live.records_from = live.header + kSectionPartHeaderBytes;
      in_checkpoint_ = true;
      section_open_ = true;
    } else if (message == qs::ColoMessage::kVmstateSize) {
      map_.checkpoints.back().size_message = Offset();
      in_checkpoint_ = false;
    }
    return Status::Ok();
  }

 private:
  static constexpr size_t kUnset = static_cast<size_t>(-1);

  size_t Offset() const { return reader_->bytes_consumed(); }
  RamSection& Current() { return in_checkpoint_ ? map_.checkpoints.back().live : map_.precopy_sections.back(); }

  // In the precopy, a PART or END section begins right after the previous footer.
  void OpenSectionIfNew() {
    if (in_checkpoint_ || section_open_ || map_.precopy_sections.empty() || last_footer_end_ == 0) {
      section_open_ = true;
      return;
    }
    RamSection section;
    section.header = last_footer_end_;
    section.records_from = last_footer_end_ + kSectionPartHeaderBytes;
    map_.precopy_sections.push_back(section);
    section_open_ = true;
  }

  Status AddRecord(uint32_t block, bool page) {
    OpenSectionIfNew();
    RamSection& section = Current();
    if (section.records_from == kUnset) section.records_from = Offset();
    if (!section.records.empty()) section.records.back().end = Offset();
    Record record;
    record.offset = Offset();
    record.block = block;
    record.page = page;
    record.named = (static_cast<uint8_t>(stream_[Offset() + 7]) & qs::kRamFlagContinue) == 0;
    section.records.push_back(record);
    return Status::Ok();
  }

  const Bytes& stream_;
  StreamMap& map_;
  const QemuStreamReader* reader_ = nullptr;
  bool in_checkpoint_ = false;
  bool section_open_ = false;
  size_t last_footer_end_ = 0;
};

class Generator {
 public:
  Generator(const Bytes& stream, const StreamMap& map) : stream_(stream), map_(map) {}

  // Checks the map against the bytes, so a seed never cuts where the map is wrong.
  Status Verify() {
    auto expect = [&](size_t at, uint8_t byte, const std::string& what) -> Status {
      if (at >= stream_.size() || stream_[at] != std::byte{byte}) {
        return Status::Internal("stream map: expected " + what + " at offset " + std::to_string(at));
      }
      return Status::Ok();
    };
    if (map_.precopy_sections.empty() || map_.checkpoints.empty()) return Status::Internal("stream map is empty");
    for (size_t i = 0; i < map_.precopy_sections.size(); ++i) {
      const RamSection& section = map_.precopy_sections[i];
      uint8_t type = i == 0 ? qs::kSectionStart : i + 1 == map_.precopy_sections.size() ? qs::kSectionEnd
                                                                                        : qs::kSectionPart;
      UNDERSTUDY_RETURN_IF_ERROR(expect(section.header, type, "a RAM section header"));
      UNDERSTUDY_RETURN_IF_ERROR(expect(section.eos + kEosBytes, qs::kSectionFooter, "a footer"));
    }
    UNDERSTUDY_RETURN_IF_ERROR(expect(map_.devices, qs::kSectionFull, "the first device section"));
    UNDERSTUDY_RETURN_IF_ERROR(expect(map_.devices + map_.device_bytes, qs::kVmDescription, "VMDESCRIPTION"));
    for (const Checkpoint& checkpoint : map_.checkpoints) {
      if (checkpoint.end == 0) continue;  // the recording stopped inside it
      UNDERSTUDY_RETURN_IF_ERROR(expect(checkpoint.request + 3, 1, "checkpoint-request"));
      UNDERSTUDY_RETURN_IF_ERROR(expect(checkpoint.request + 7, 3, "vmstate-send"));
      UNDERSTUDY_RETURN_IF_ERROR(expect(checkpoint.live.header, qs::kSectionEnd, "the live RAM section"));
      UNDERSTUDY_RETURN_IF_ERROR(expect(checkpoint.live.eos + kEosBytes, qs::kSectionFooter, "a live footer"));
      UNDERSTUDY_RETURN_IF_ERROR(expect(checkpoint.size_message - 1, qs::kEof, "the live part's EOF"));
      UNDERSTUDY_RETURN_IF_ERROR(expect(checkpoint.size_message + 3, 4, "vmstate-size"));
    }
    return Status::Ok();
  }

  Bytes Range(size_t from, size_t to) const { return Bytes(stream_.begin() + from, stream_.begin() + to); }

  // Header, configuration, command, RAM SECTION_START and its block list.
  Bytes Head() const { return Range(0, map_.precopy_sections[0].records_from); }

  // One RAM section with only a few of its records: up to `max_runs` runs of records of one
  // block, at most `pages` PAGE and `zeros` ZERO records per run. A run that would begin with
  // a CONTINUE record whose block is not the one last kept gets the block's name instead
  // (what QEMU itself writes when the block changes), so every seed parses.
  Bytes TrimmedSection(const RamSection& section, int pages, int zeros, std::optional<uint32_t>& last_block,
                       size_t max_runs = 4) const {
    Bytes out = Range(section.header, section.records_from);
    int run_pages = 0, run_zeros = 0;
    size_t runs = 0;
    bool in_run = false;
    for (const Record& record : section.records) {
      if (record.named || !in_run) {
        in_run = runs < max_runs;
        if (in_run) ++runs;
        run_pages = run_zeros = 0;
      }
      if (!in_run) continue;
      int& count = record.page ? run_pages : run_zeros;
      if (count >= (record.page ? pages : zeros)) continue;
      ++count;
      if (!record.named && last_block != record.block) {
        Append(out, NamedRecord(record));
      } else {
        Append(out, Range(record.offset, record.end));
      }
      last_block = record.block;
    }
    Append(out, Range(section.eos, section.eos + kEosBytes + kFooterBytes));
    return out;
  }

  // A CONTINUE record rewritten to name its block.
  Bytes NamedRecord(const Record& record) const {
    std::string header;
    uint64_t flags_and_offset = LoadBigEndian<uint64_t>(&stream_[record.offset]) & ~qs::kRamFlagContinue;
    AppendBigEndian<uint64_t>(header, flags_and_offset);
    const std::string& id = map_.blocks[record.block].id;
    header.push_back(static_cast<char>(id.size()));
    header += id;
    Bytes out = AsBytes(header);
    Append(out, Range(record.offset + 8, record.end));
    return out;
  }

  // The precopy's RAM: SECTION_START, the first PART and the END, each trimmed.
  Bytes TrimmedPrecopyRam(std::optional<uint32_t>& last_block) const {
    const auto& sections = map_.precopy_sections;
    Bytes out = Range(0, sections[0].header);  // magic, version, configuration, command
    Append(out, TrimmedSection(sections[0], 2, 6, last_block));
    if (sections.size() > 2) Append(out, TrimmedSection(sections[1], 1, 4, last_block));
    if (sections.size() > 1) Append(out, TrimmedSection(sections.back(), 1, 4, last_block));
    return out;
  }

  // SECTION_START with its block list and no records: EOS and footer right away.
  Bytes EmptyRamStart() const {
    Bytes out = Head();
    const RamSection& start = map_.precopy_sections[0];
    Append(out, Range(start.eos, start.eos + kEosBytes + kFooterBytes));
    return out;
  }

  Bytes DeviceState() const { return Range(map_.devices, map_.devices + map_.device_bytes); }
  // The first `count` device sections of the precopy, verbatim, and the EOF byte.
  Bytes FirstDeviceSections(size_t count) const {
    const DeviceSectionSpan& last = map_.device_sections[std::min(count, map_.device_sections.size()) - 1];
    Bytes out = Range(map_.devices, map_.devices + last.offset + last.size);
    out.push_back(std::byte{qs::kEof});
    return out;
  }
  // QEMU's VM description cut down to its first `count` devices (fields as QEMU wrote them).
  Bytes VmDescriptionOfFirstDevices(size_t count) const {
    nlohmann::ordered_json vmdesc = nlohmann::ordered_json::parse(map_.vmdesc_json);
    auto& devices = vmdesc["devices"];
    devices.erase(devices.begin() + static_cast<std::ptrdiff_t>(std::min(count, devices.size())), devices.end());
    return VmDescription(vmdesc.dump());
  }
  static Bytes VmDescription(const std::string& json) {
    std::string out(1, static_cast<char>(qs::kVmDescription));
    AppendBigEndian<uint32_t>(out, static_cast<uint32_t>(json.size()));
    out += json;
    return AsBytes(out);
  }
  Bytes RealVmDescription() const { return Range(map_.devices + map_.device_bytes, map_.vmdesc_end); }
  static Bytes MinimalVmDescription() { return VmDescription(R"({"page_size": 4096, "devices": []})"); }

  std::vector<const Checkpoint*> CompleteCheckpoints() const {
    std::vector<const Checkpoint*> out;
    for (const Checkpoint& checkpoint : map_.checkpoints) {
      if (checkpoint.end != 0 && checkpoint.end <= stream_.size()) out.push_back(&checkpoint);
    }
    return out;
  }

  // request, vmstate-send, the live RAM section trimmed to a few pages, EOF, vmstate-size and
  // the device state verbatim.
  Bytes TrimmedCheckpoint(const Checkpoint& checkpoint, std::optional<uint32_t>& last_block, int pages = 3) const {
    Bytes out = Range(checkpoint.request, checkpoint.live.header);
    Append(out, TrimmedSection(checkpoint.live, pages, 4, last_block));
    Append(out, Range(checkpoint.size_message - 1, checkpoint.end));
    return out;
  }

  static Bytes AsBytes(std::string_view text) {
    const std::byte* data = reinterpret_cast<const std::byte*>(text.data());
    return Bytes(data, data + text.size());
  }
  static void Append(Bytes& out, const Bytes& more) { out.insert(out.end(), more.begin(), more.end()); }

 private:
  const Bytes& stream_;
  const StreamMap& map_;
};

// Parses `encoded` the way the fuzzer does and describes the outcome.
std::string Describe(const std::string& encoded) {
  std::optional<FuzzInput> input = DecodeFuzzInput(std::as_bytes(std::span(encoded.data(), encoded.size())));
  if (!input) return "too short";
  QemuStreamReaderOptions options;
  if (input->flags & kFlagNoVmdescCrossCheck) options.require_vmdesc_cross_check = false;
  if (input->flags & kFlagSmallLimits) options.max_device_state_bytes = options.max_vmdesc_bytes = kSmallLimitBytes;
  struct FailingVisitor : QemuStreamVisitor {
    int fail_at = -1, calls = 0;
    Status Next() { return calls++ == fail_at ? Status::Internal("visitor fails") : Status::Ok(); }
    Status OnConfiguration(const StreamConfiguration&) override { return Next(); }
    Status OnCommand(uint16_t, std::span<const std::byte>) override { return Next(); }
    Status OnRamBlocks(const RamBlockList&) override { return Next(); }
    Status OnRamPage(uint32_t, uint64_t, std::span<const std::byte>) override { return Next(); }
    Status OnRamZeroPage(uint32_t, uint64_t, uint8_t) override { return Next(); }
    Status OnRamSectionEnd(RamSectionKind) override { return Next(); }
    Status OnDeviceState(std::span<const std::byte>) override { return Next(); }
    Status OnVmDescription(std::string_view, const std::vector<DeviceSectionSpan>&) override { return Next(); }
    Status OnColoMessage(qs::ColoMessage) override { return Next(); }
  } visitor;
  if (input->flags & kFlagVisitorFails) visitor.fail_at = input->flags >> kVisitorFailureShift;
  QemuStreamReader reader(visitor, options);
  bool cuts = false;
  for (uint8_t code : input->chunk_codes) cuts = cuts || code != kChunkEmpty;
  std::span<const std::byte> rest = input->stream;
  size_t next = 0;
  Status status;
  do {
    size_t take = cuts ? ChunkSize(input->chunk_codes[next++ % input->chunk_codes.size()], rest.size()) : rest.size();
    status = reader.Feed(rest.first(take));
    rest = rest.subspan(take);
  } while (status.ok() && !rest.empty());
  std::string text = status.ok() ? "ok" : status.ToString();
  text += "; consumed " + std::to_string(reader.bytes_consumed()) + " of " + std::to_string(input->stream.size()) +
          (reader.precopy_complete() ? "; precopy complete" : "") + "; checkpoints " +
          std::to_string(reader.checkpoints_completed());
  return text;
}

int Main(int argc, char** argv) {
  std::string output;
  if (argc > 1) {
    output = argv[1];
  } else if (const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY")) {
    output = std::string(workspace) + "/checkpoint/fuzz/corpus/qemu_stream";
  } else {
    std::fprintf(stderr, "usage: seed_corpus_generator OUTPUT_DIR (or run it with bazel run)\n");
    return 2;
  }
  if (auto reason = testing::KvmUnavailableReason()) {
    std::fprintf(stderr, "needs KVM: %s\n", reason->c_str());
    return 1;
  }

  testing::ColoRecordingOptions options;
  options.guest = {.pages = 4, .every = 500, .memory_mib = 16};
  options.checkpoints = 4;
  Result<testing::ColoRecording> recording = testing::RecordColoStream(options);
  if (!recording.ok()) {
    std::fprintf(stderr, "recording failed: %s\n", recording.status().ToString().c_str());
    return 1;
  }
  const Bytes& stream = recording->stream;
  std::printf("recorded %zu bytes, %zu checkpoints\n", stream.size(), recording->checkpoints.size());

  StreamMap map;
  MappingVisitor mapper(stream, map);
  QemuStreamReader reader(mapper);
  mapper.set_reader(&reader);
  Status parsed = reader.Feed(stream);
  if (!parsed.ok()) {
    std::fprintf(stderr, "the recording does not parse: %s\n", parsed.ToString().c_str());
    return 1;
  }
  Generator generator(stream, map);
  if (Status verified = generator.Verify(); !verified.ok()) {
    std::fprintf(stderr, "%s\n", verified.ToString().c_str());
    return 1;
  }
  std::vector<const Checkpoint*> checkpoints = generator.CompleteCheckpoints();
  if (checkpoints.size() < 3) {
    std::fprintf(stderr, "only %zu complete checkpoints recorded\n", checkpoints.size());
    return 1;
  }
  std::printf("precopy: %zu RAM sections, device state %zu bytes, VM description %zu bytes\n",
              map.precopy_sections.size(), map.device_bytes, map.vmdesc_end - map.devices - map.device_bytes);

  using G = Generator;
  auto concat = [](std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const Bytes& part : parts) G::Append(out, part);
    return out;
  };
  auto cut = [](Bytes bytes, size_t size) {
    bytes.resize(std::min(size, bytes.size()));
    return bytes;
  };
  // Trimmed checkpoints first..first+count-1, CONTINUE-consistent after `block`.
  auto checkpoints_from = [&](std::optional<uint32_t> block, size_t first, size_t count, int pages) {
    Bytes out;
    for (size_t i = first; i < first + count && i < checkpoints.size(); ++i) {
      G::Append(out, generator.TrimmedCheckpoint(*checkpoints[i], block, pages));
    }
    return out;
  };

  const Bytes head = generator.Head();
  std::optional<uint32_t> last_block;
  const Bytes precopy_ram = generator.TrimmedPrecopyRam(last_block);  // header through END
  const Bytes empty_start = generator.EmptyRamStart();                 // header, START, no records
  const Bytes devices = generator.DeviceState();                       // all sections + EOF
  const Bytes few_devices = generator.FirstDeviceSections(6);          // timer .. kvmclock + EOF
  const Bytes real_vmdesc = generator.RealVmDescription();             // 06 be32 ~100 KB JSON
  const Bytes minimal_vmdesc = G::MinimalVmDescription();
  const std::optional<uint32_t> none;

  // The precopy in full shape (trimmed RAM, real device state and VM description).
  const Bytes precopy_real = concat({precopy_ram, devices, real_vmdesc});
  // Split by footers (cross-check off), as for QemuStreamWriter's streams: all devices, or six.
  const Bytes precopy_footers = concat({empty_start, devices, minimal_vmdesc});
  const Bytes precopy_small = concat({empty_start, few_devices, minimal_vmdesc});
  const Bytes one_checkpoint = checkpoints_from(none, 1, 1, 1);
  const Bytes two_checkpoints = checkpoints_from(none, 1, 2, 1);

  struct Seed {
    std::string name;
    uint8_t flags;
    std::vector<uint8_t> codes;
    Bytes stream;
  };
  const uint8_t kNoCross = kFlagNoVmdescCrossCheck;
  auto fails_at = [](int callback) { return static_cast<uint8_t>(kFlagVisitorFails | (callback << kVisitorFailureShift)); };
  std::vector<Seed> seeds = {
      {"precopy-head", 0, {}, head},
      {"precopy-ram-records", 0, {}, precopy_ram},
      {"precopy-ram-records-chunked", 0, {5, 192 + 3, 255, 97}, precopy_ram},
      {"precopy-real-vmdesc-and-checkpoints", 0, {192 + 2, 13, 1, 255, 192 + 40},
       concat({precopy_real, checkpoints_from(last_block, 0, 2, 2)})},
      {"precopy-vmdesc-of-six-devices", 0, {}, concat({empty_start, few_devices, generator.VmDescriptionOfFirstDevices(6)})},
      {"precopy-all-devices-by-footers", kNoCross, {}, precopy_footers},
      {"checkpoints-two-chunked", kNoCross, {3, 192 + 4, 255, 61, 192 + 20}, concat({precopy_small, two_checkpoints})},
      {"checkpoint-one-byte-chunks", kNoCross, {1}, concat({precopy_small, one_checkpoint})},
      {"vmdesc-over-small-limit", kFlagSmallLimits, {}, cut(concat({empty_start, {std::byte{qs::kEof}}, real_vmdesc}),
                                                             empty_start.size() + 1 + 5 + 64)},
      {"visitor-fails-on-blocks", fails_at(2), {}, head},
      {"visitor-fails-on-device-state", kNoCross | fails_at(4), {}, precopy_small},
      {"visitor-fails-in-checkpoint", kNoCross | fails_at(9), {7}, concat({precopy_small, one_checkpoint})},
      // Truncated: the reader must wait (or fail) cleanly wherever the bytes stop.
      {"truncated-mid-block-list", 0, {}, cut(head, head.size() - 11)},
      {"truncated-mid-page", 0, {}, cut(precopy_ram, head.size() + 8 + 2000)},
      {"truncated-mid-vmdesc", 0, {}, cut(concat({empty_start, few_devices, real_vmdesc}),
                                          empty_start.size() + few_devices.size() + 2000)},
      {"truncated-mid-vmdesc-opening", 0, {}, cut(concat({empty_start, few_devices, real_vmdesc}),
                                                  empty_start.size() + few_devices.size() + 9)},
      {"truncated-mid-checkpoint-devices", kNoCross, {}, cut(concat({precopy_small, one_checkpoint}),
                                                            precopy_small.size() + one_checkpoint.size() - 700)},
  };
  // Cut just inside the vmstate-size message and the live section's footer.
  {
    const Checkpoint& c = *checkpoints[1];
    Bytes stream_1 = concat({precopy_small, one_checkpoint});
    size_t size_message_in_seed = stream_1.size() - (c.end - c.size_message);
    seeds.push_back({"truncated-mid-vmstate-size", kNoCross, {}, cut(stream_1, size_message_in_seed + 6)});
    seeds.push_back({"truncated-mid-live-footer", kNoCross, {}, cut(stream_1, size_message_in_seed - 4)});
  }
  // x-ignore-shared: configuration with the capabilities subsection and guest addresses in
  // the block list, written by QemuStreamWriter around the real blocks, pages and devices.
  {
    std::string promotion;
    QemuStreamWriter writer([&](std::span<const std::byte> bytes) {
      promotion.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
      return Status::Ok();
    });
    RamBlockList blocks = map.blocks;
    uint64_t address = 0;
    for (RamBlockInfo& block : blocks) {
      block.guest_physical_address = address;
      address += block.used_length;
    }
    StreamConfiguration configuration{"pc-i440fx-7.2", {std::string(qs::kIgnoreSharedCapability)}};
    std::vector<std::byte> page(qs::kTargetPageSize, std::byte{0x5a});
    Status written = writer.WriteHeader(configuration);
    if (written.ok()) written = writer.BeginRamStart(*reader.ram_section_id(), blocks);
    if (written.ok()) written = writer.WritePage(0, 0, page);
    if (written.ok()) written = writer.WriteZeroPage(0, qs::kTargetPageSize);
    if (written.ok()) written = writer.WriteZeroPage(blocks.size() - 1, 0);
    if (written.ok()) written = writer.EndRamSection();
    if (written.ok()) written = writer.BeginRamPart();
    if (written.ok()) written = writer.WriteZeroPage(0, 2 * qs::kTargetPageSize);
    if (written.ok()) written = writer.EndRamSection();
    if (written.ok()) written = writer.WriteDeviceState(few_devices);
    if (written.ok()) written = writer.WriteVmDescription();
    if (written.ok()) written = writer.Flush();
    if (!written.ok()) {
      std::fprintf(stderr, "writing the x-ignore-shared seed: %s\n", written.ToString().c_str());
      return 1;
    }
    Bytes stream_bytes = G::AsBytes(promotion);
    G::Append(stream_bytes, one_checkpoint);
    seeds.push_back({"ignore-shared-promotion-and-checkpoints", kNoCross, {}, stream_bytes});
  }

  std::filesystem::create_directories(output);
  size_t total = 0;
  for (const Seed& seed : seeds) {
    std::string encoded = EncodeFuzzInput(seed.flags, seed.codes, seed.stream);
    std::string path = output + "/seed-" + seed.name;
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file.write(encoded.data(), static_cast<std::streamsize>(encoded.size()));
    if (!file) {
      std::fprintf(stderr, "cannot write %s\n", path.c_str());
      return 1;
    }
    total += encoded.size();
    std::printf("%-48s %7zu bytes  %s\n", ("seed-" + seed.name).c_str(), encoded.size(), Describe(encoded).c_str());
  }
  std::printf("%zu seeds, %zu bytes, in %s\n", seeds.size(), total, output.c_str());
  return 0;
}

}  // namespace
}  // namespace understudy::checkpoint::fuzz

int main(int argc, char** argv) { return understudy::checkpoint::fuzz::Main(argc, argv); }
