// ckpt_inspect: looks inside a recorded COLO stream (the raw bytes QEMU sent to its COLO peer,
// as tests/harness/colo_recording.h records them).
//
// Prints the stream's summary (machine, RAM blocks, precopy pages, checkpoints with their dirty
// pages and device-state bytes) and the device table of the precopy, laid out with the VM
// description QEMU appended to it; optionally one device's fields, or which devices and fields
// changed between two device states. See Usage() below.
//
// Exit status: 0 on success, 1 when the file cannot be read or the stream is corrupt (the error
// is printed), 2 for a usage error.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/qemu_stream_reader.h"
#include "checkpoint/vmstate_inspector.h"
#include "common/status.h"

namespace understudy::checkpoint {
namespace {

constexpr size_t kReadChunkBytes = 1 << 20;

constexpr char kUsage[] =
    "usage: ckpt_inspect [--at N] [--fields DEVICE] [--diff A B] STREAM_FILE\n"
    "\n"
    "Inspects a recorded QEMU COLO stream: every byte QEMU sent to its COLO peer, from the\n"
    "QEVM header through the initial precopy and the checkpoints that followed.\n"
    "\n"
    "Always prints the stream summary (machine type, RAM blocks, precopy pages, each\n"
    "checkpoint's dirty pages and device-state bytes) and a device table (name, instance,\n"
    "version, bytes, and whether the VM description lays the device out field by field).\n"
    "\n"
    "Device states are numbered: 0 is the initial precopy's, N the one of checkpoint N.\n"
    "  --at N            show the device table (and --fields) of device state N (default 0)\n"
    "  --fields DEVICE   also list DEVICE's fields with offsets, sizes, types and values;\n"
    "                    DEVICE is a section name, with #INSTANCE when not 0 (e.g. dma#1)\n"
    "  --diff A B        also show which devices and fields differ from device state A to B\n"
    "  --help            this text\n"
    "\n"
    "Exit status: 0 success, 1 unreadable file or corrupt stream, 2 usage error.\n";

struct Options {
  std::string stream_path;
  uint64_t table_state = 0;
  std::optional<std::string> fields_device;
  std::optional<std::pair<uint64_t, uint64_t>> diff;
};

struct CheckpointSummary {
  uint64_t pages = 0;       // data and zero pages
  uint64_t zero_pages = 0;
  size_t device_bytes = 0;  // the vmstate-size buffer, sections and EOF
};

// Collects what the summary needs and keeps only the device states asked for.
class InspectingVisitor : public QemuStreamVisitor {
 public:
  explicit InspectingVisitor(std::set<uint64_t> wanted_states) : wanted_states_(std::move(wanted_states)) {}

  Status OnConfiguration(const StreamConfiguration& configuration) override {
    configuration_ = configuration;
    return Status::Ok();
  }
  Status OnRamBlocks(const RamBlockList& blocks) override {
    blocks_ = blocks;
    return Status::Ok();
  }
  Status OnRamPage(uint32_t, uint64_t, std::span<const std::byte>) override {
    ++Current().pages;
    return Status::Ok();
  }
  Status OnRamZeroPage(uint32_t, uint64_t, uint8_t) override {
    ++Current().pages;
    ++Current().zero_pages;
    return Status::Ok();
  }
  Status OnColoMessage(qemu_stream::ColoMessage message) override {
    if (message == qemu_stream::ColoMessage::kCheckpointRequest) checkpoints_.emplace_back();
    return Status::Ok();
  }
  Status OnDeviceState(std::span<const std::byte> sections_and_eof) override {
    uint64_t number = device_states_seen_++;
    Current().device_bytes = sections_and_eof.size();
    if (wanted_states_.contains(number)) kept_states_[number].assign(sections_and_eof.begin(), sections_and_eof.end());
    return Status::Ok();
  }
  Status OnVmDescription(std::string_view json, const std::vector<DeviceSectionSpan>&) override {
    vmdesc_text_ = json;
    return Status::Ok();
  }

  const StreamConfiguration& configuration() const { return configuration_; }
  const RamBlockList& blocks() const { return blocks_; }
  const CheckpointSummary& precopy() const { return precopy_; }
  // Started checkpoints; the last may be incomplete if the recording stopped inside it.
  const std::vector<CheckpointSummary>& checkpoints() const { return checkpoints_; }
  const std::string& vmdesc_text() const { return vmdesc_text_; }
  // Device state `number` (0: precopy), if it was wanted and the stream holds it.
  const std::vector<std::byte>* DeviceState(uint64_t number) const {
    auto found = kept_states_.find(number);
    return found == kept_states_.end() ? nullptr : &found->second;
  }

 private:
  CheckpointSummary& Current() { return checkpoints_.empty() ? precopy_ : checkpoints_.back(); }

  const std::set<uint64_t> wanted_states_;
  StreamConfiguration configuration_;
  RamBlockList blocks_;
  CheckpointSummary precopy_;
  std::vector<CheckpointSummary> checkpoints_;
  uint64_t device_states_seen_ = 0;
  std::map<uint64_t, std::vector<std::byte>> kept_states_;
  std::string vmdesc_text_;
};

// Parses a non-negative device-state number.
std::optional<uint64_t> ParseNumber(std::string_view text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

// nullopt with a message on stderr when the command line is unusable; exits on --help.
std::optional<Options> ParseCommandLine(int argc, char** argv) {
  Options options;
  auto fail = [](const std::string& message) -> std::optional<Options> {
    std::fprintf(stderr, "ckpt_inspect: %s\n\n%s", message.c_str(), kUsage);
    return std::nullopt;
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (arg == "--at") {
      if (i + 1 >= argc) return fail("--at needs a device-state number");
      std::optional<uint64_t> number = ParseNumber(argv[++i]);
      if (!number) return fail("--at: '" + std::string(argv[i]) + "' is not a device-state number");
      options.table_state = *number;
    } else if (arg == "--fields") {
      if (i + 1 >= argc) return fail("--fields needs a device name");
      options.fields_device = argv[++i];
    } else if (arg == "--diff") {
      if (i + 2 >= argc) return fail("--diff needs two device-state numbers");
      std::optional<uint64_t> a = ParseNumber(argv[i + 1]);
      std::optional<uint64_t> b = ParseNumber(argv[i + 2]);
      if (!a || !b) return fail("--diff: '" + std::string(argv[i + 1]) + "' and '" + argv[i + 2] +
                                "' must be device-state numbers (0 = precopy)");
      options.diff = {*a, *b};
      i += 2;
    } else if (arg.starts_with("-")) {
      return fail("unknown option '" + std::string(arg) + "'");
    } else if (!options.stream_path.empty()) {
      return fail("more than one stream file given");
    } else {
      options.stream_path = arg;
    }
  }
  if (options.stream_path.empty()) return fail("no stream file given");
  return options;
}

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

// Feeds the whole file to `reader` in chunks, so memory stays bounded by what the reader keeps.
Status ParseFile(const std::string& path, QemuStreamReader& reader) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) return Status::FromErrno("opening " + path, errno);
  std::vector<std::byte> chunk(kReadChunkBytes);
  for (;;) {
    size_t got = std::fread(chunk.data(), 1, chunk.size(), file.get());
    if (got > 0) {
      Status fed = reader.Feed(std::span<const std::byte>(chunk.data(), got));
      if (!fed.ok()) return fed.WithContext("parsing " + path);
    }
    if (got < chunk.size()) {
      if (std::ferror(file.get())) return Status::FromErrno("reading " + path, errno);
      break;
    }
  }
  if (!reader.precopy_complete()) {
    return Status::Corruption("parsing " + path + ": the stream ends inside the initial precopy after " +
                              std::to_string(reader.bytes_consumed()) + " bytes");
  }
  return Status::Ok();
}

// Names from the stream (machine type, block ids) with anything unprintable as \xNN: QEMU's
// stream has no checksums, so a damaged name must not garble the terminal.
std::string Printable(std::string_view text) {
  std::string printable;
  for (char c : text) {
    if (c >= 0x20 && c < 0x7f) {
      printable += c;
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\x%02x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      printable += escaped;
    }
  }
  return printable;
}

std::string Mebibytes(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return text;
}

void PrintSummary(const Options& options, const QemuStreamReader& reader, const InspectingVisitor& visitor,
                  uint64_t complete_checkpoints) {
  const StreamConfiguration& configuration = visitor.configuration();
  std::printf("stream: %s (%llu bytes)\n", options.stream_path.c_str(),
              static_cast<unsigned long long>(reader.bytes_consumed()));
  std::printf("machine: %s\n", Printable(configuration.machine_type).c_str());
  std::string capabilities;
  for (const std::string& capability : configuration.capabilities) capabilities += " " + Printable(capability);
  std::printf("capabilities:%s\n", capabilities.empty() ? " (none)" : capabilities.c_str());

  size_t id_width = 2;
  for (const RamBlockInfo& block : visitor.blocks()) id_width = std::max(id_width, Printable(block.id).size());
  std::printf("RAM blocks (%zu):\n", visitor.blocks().size());
  for (const RamBlockInfo& block : visitor.blocks()) {
    std::printf("  %-*s  %12llu bytes  %10s\n", static_cast<int>(id_width), Printable(block.id).c_str(),
                static_cast<unsigned long long>(block.used_length), Mebibytes(block.used_length).c_str());
  }
  const CheckpointSummary& precopy = visitor.precopy();
  std::printf("precopy: %llu pages (%llu zero), device state %zu bytes\n",
              static_cast<unsigned long long>(precopy.pages), static_cast<unsigned long long>(precopy.zero_pages),
              precopy.device_bytes);
  std::printf("checkpoints: %llu", static_cast<unsigned long long>(complete_checkpoints));
  if (visitor.checkpoints().size() > complete_checkpoints) std::printf(" (and 1 incomplete at the end)");
  std::printf("\n");
  if (complete_checkpoints > 0) std::printf("  checkpoint  dirty pages  (zero)  device-state bytes\n");
  for (uint64_t i = 0; i < complete_checkpoints; ++i) {
    const CheckpointSummary& checkpoint = visitor.checkpoints()[i];
    std::printf("  %10llu  %11llu  %6llu  %18zu\n", static_cast<unsigned long long>(i + 1),
                static_cast<unsigned long long>(checkpoint.pages),
                static_cast<unsigned long long>(checkpoint.zero_pages), checkpoint.device_bytes);
  }
}

// The kept device state `number`, or kInvalidArgument saying how many there are.
Result<std::span<const std::byte>> KeptState(const InspectingVisitor& visitor, uint64_t number,
                                             uint64_t complete_checkpoints) {
  const std::vector<std::byte>* state = visitor.DeviceState(number);
  if (state == nullptr) {
    return Status::InvalidArgument("no device state " + std::to_string(number) + ": the stream holds 0 (precopy) to " +
                                   std::to_string(complete_checkpoints));
  }
  return std::span<const std::byte>(*state);
}

Status Run(const Options& options) {
  std::set<uint64_t> wanted = {0, options.table_state};
  if (options.diff) wanted.insert({options.diff->first, options.diff->second});
  InspectingVisitor visitor(wanted);
  QemuStreamReader reader(visitor);
  UNDERSTUDY_RETURN_IF_ERROR(ParseFile(options.stream_path, reader));
  const uint64_t complete_checkpoints = reader.checkpoints_completed();

  PrintSummary(options, reader, visitor, complete_checkpoints);

  UNDERSTUDY_ASSIGN_OR_RETURN(nlohmann::json vmdesc, ParseVmDescription(visitor.vmdesc_text()));
  UNDERSTUDY_ASSIGN_OR_RETURN(std::span<const std::byte> table_state,
                              KeptState(visitor, options.table_state, complete_checkpoints));
  Result<std::vector<DeviceLayout>> devices = DescribeDevices(table_state, vmdesc);
  if (!devices.ok()) return devices.status().WithContext("device state " + std::to_string(options.table_state));
  std::printf("\ndevices in device state %llu%s:\n", static_cast<unsigned long long>(options.table_state),
              options.table_state == 0 ? " (precopy)" : "");
  std::fputs(RenderDeviceTable(*devices).c_str(), stdout);

  if (options.fields_device) {
    auto device = std::find_if(devices->begin(), devices->end(), [&](const DeviceLayout& layout) {
      return DeviceDisplayName(layout.section.name, layout.section.instance) == *options.fields_device;
    });
    if (device == devices->end()) {
      return Status::NotFound("no device '" + *options.fields_device + "' in device state " +
                              std::to_string(options.table_state) + " (names as in the table, #INSTANCE when not 0)");
    }
    std::printf("\n");
    std::fputs(RenderDeviceFields(table_state, *device).c_str(), stdout);
  }

  if (options.diff) {
    auto [a, b] = *options.diff;
    UNDERSTUDY_ASSIGN_OR_RETURN(std::span<const std::byte> before, KeptState(visitor, a, complete_checkpoints));
    UNDERSTUDY_ASSIGN_OR_RETURN(std::span<const std::byte> after, KeptState(visitor, b, complete_checkpoints));
    Result<DeviceStateDiff> diff = DiffDeviceState(before, after, vmdesc);
    if (!diff.ok()) {
      return diff.status().WithContext("diffing device states " + std::to_string(a) + " and " + std::to_string(b));
    }
    std::printf("\ndevice state %llu -> %llu:\n", static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b));
    std::fputs(RenderDiff(*diff).c_str(), stdout);
  }
  return Status::Ok();
}

}  // namespace
}  // namespace understudy::checkpoint

int main(int argc, char** argv) {
  std::optional<understudy::checkpoint::Options> options = understudy::checkpoint::ParseCommandLine(argc, argv);
  if (!options) return 2;
  understudy::Status status = understudy::checkpoint::Run(*options);
  if (!status.ok()) {
    std::fflush(stdout);
    std::fprintf(stderr, "ckpt_inspect: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
