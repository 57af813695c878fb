// VMState inspection: first on small hand-built device states whose every byte is known, then
// on a real COLO stream (the counter guest under KVM, recorded once per test binary), and
// finally the ckpt_inspect binary on a recording written to a file.
#include "checkpoint/vmstate_inspector.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>

#include "checkpoint/qemu_stream_reader.h"
#include "common/byte_order.h"
#include "tests/harness/colo_recording.h"
#include "tests/harness/require_guest_accelerator.h"

namespace understudy::checkpoint {
namespace {

using Json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Hand-built device state.

std::vector<std::byte> Bytes(std::initializer_list<int> values) {
  std::vector<std::byte> bytes;
  for (int value : values) bytes.push_back(static_cast<std::byte>(value));
  return bytes;
}

void Append(std::vector<std::byte>& out, std::span<const std::byte> bytes) { out.insert(out.end(), bytes.begin(), bytes.end()); }

void AppendBe32(std::vector<std::byte>& out, uint32_t value) {
  std::byte bytes[4];
  StoreBigEndian(bytes, value);
  Append(out, bytes);
}

void AppendName(std::vector<std::byte>& out, std::string_view name) {
  out.push_back(static_cast<std::byte>(name.size()));
  Append(out, std::as_bytes(std::span(name.data(), name.size())));
}

// Builds SECTION_FULL sections and the closing EOF, as QEMU writes device state.
class DeviceStateBuilder {
 public:
  DeviceStateBuilder& Section(std::string_view name, uint32_t instance, uint32_t version,
                              std::span<const std::byte> data) {
    uint32_t id = next_id_++;
    bytes_.push_back(std::byte{qemu_stream::kSectionFull});
    AppendBe32(bytes_, id);
    AppendName(bytes_, name);
    AppendBe32(bytes_, instance);
    AppendBe32(bytes_, version);
    Append(bytes_, data);
    bytes_.push_back(std::byte{qemu_stream::kSectionFooter});
    AppendBe32(bytes_, id);
    return *this;
  }
  std::vector<std::byte> Finish() {
    bytes_.push_back(std::byte{qemu_stream::kEof});
    return bytes_;
  }

 private:
  uint32_t next_id_ = 2;
  std::vector<std::byte> bytes_;
};

std::vector<std::byte> SubsectionHeader(std::string_view name, uint32_t version) {
  std::vector<std::byte> header{std::byte{qemu_stream::kSubsection}};
  AppendName(header, name);
  AppendBe32(header, version);
  return header;
}

// A device "widget" exercising every construct: plain fields, a compressed array of structs, an
// indexed (uncompressed) array, a little-endian integer, a struct with its own subsection, an
// inline ("tmp") description, and a top-level subsection.
Json WidgetDescription() {
  return Json::parse(R"({
    "name": "widget", "instance_id": 1, "vmsd_name": "widget", "version": 3,
    "fields": [
      {"name": "mode", "type": "uint8", "size": 1},
      {"name": "counter", "type": "uint32", "size": 4},
      {"name": "points", "array_len": 2, "type": "struct", "size": 3,
       "struct": {"vmsd_name": "point", "version": 1,
                  "fields": [{"name": "x", "type": "uint8", "size": 1}, {"name": "y", "type": "uint16", "size": 2}]}},
      {"name": "lanes", "index": 0, "type": "uint16", "size": 2},
      {"name": "lanes", "index": 1, "type": "uint16", "size": 2},
      {"name": "version_id", "type": "int32 le", "size": 4},
      {"name": "child", "type": "struct", "size": 15,
       "struct": {"vmsd_name": "child", "version": 1,
                  "fields": [{"name": "state", "type": "uint8", "size": 1}],
                  "subsections": [{"vmsd_name": "child/x", "version": 2,
                                   "fields": [{"name": "extra", "type": "uint8", "size": 1}]}]}},
      {"name": "tmp", "type": "tmp", "vmsd_name": "widget_tmp", "version": 0, "size": 3,
       "fields": [{"name": "a", "type": "uint8", "size": 1}, {"name": "b", "type": "uint16", "size": 2}]}
    ],
    "subsections": [{"vmsd_name": "widget/late", "version": 1,
                     "fields": [{"name": "late", "type": "uint64", "size": 8}]}]
  })");
}

std::vector<std::byte> WidgetData(uint8_t mode, uint64_t late) {
  std::vector<std::byte> data;
  data.push_back(std::byte{mode});
  Append(data, Bytes({0x00, 0x00, 0x01, 0x02}));                          // counter
  Append(data, Bytes({0x0a, 0x00, 0x0b, 0x0c, 0x00, 0x0d}));              // points[0], points[1]
  Append(data, Bytes({0x00, 0x01, 0x00, 0x02}));                          // lanes[0], lanes[1]
  Append(data, Bytes({0x02, 0x00, 0x00, 0x00}));                          // version_id, little-endian 2
  data.push_back(std::byte{0x07});                                        // child.state
  Append(data, SubsectionHeader("child/x", 2));                           // 13 bytes
  data.push_back(std::byte{0x08});                                        // child.child/x/extra
  Append(data, Bytes({0x01, 0x02, 0x03}));                                // tmp.a, tmp.b
  Append(data, SubsectionHeader("widget/late", 1));
  std::byte late_bytes[8];
  StoreBigEndian(late_bytes, late);
  Append(data, late_bytes);
  return data;
}

Json VmDescriptionOf(std::vector<Json> devices) {
  Json vmdesc = {{"page_size", 4096}, {"devices", Json::array()}};
  for (Json& device : devices) vmdesc["devices"].push_back(std::move(device));
  return vmdesc;
}

Json SmallDescription() {
  return Json::parse(R"({"name": "small", "instance_id": 0, "vmsd_name": "small", "version": 1,
                         "fields": [{"name": "value", "type": "uint16", "size": 2}]})");
}

// Asserts the spans tile [0, data_size) in order, without gaps or overlaps.
void ExpectTiles(const DeviceLayout& layout) {
  SCOPED_TRACE("device " + layout.section.name);
  ASSERT_TRUE(layout.decoded()) << layout.opaque_reason;
  size_t next = 0;
  for (const FieldSpan& field : layout.fields) {
    ASSERT_EQ(field.offset, next) << field.path;
    next += field.size;
  }
  EXPECT_EQ(next, layout.section.data_size);
}

const DeviceLayout* Find(const std::vector<DeviceLayout>& layouts, std::string_view name, uint32_t instance = 0) {
  for (const DeviceLayout& layout : layouts) {
    if (layout.section.name == name && layout.section.instance == instance) return &layout;
  }
  return nullptr;
}

const FieldSpan* FindField(const DeviceLayout& layout, std::string_view path) {
  for (const FieldSpan& field : layout.fields) {
    if (field.path == path) return &field;
  }
  return nullptr;
}

std::vector<std::string> Paths(const DeviceLayout& layout) {
  std::vector<std::string> paths;
  for (const FieldSpan& field : layout.fields) paths.push_back(field.path);
  return paths;
}

TEST(VmstateInspectorTest, LaysOutEveryConstructAndTilesTheData) {
  std::vector<std::byte> buffer = DeviceStateBuilder()
                                      .Section("small", 0, 1, Bytes({0x12, 0x34}))
                                      .Section("widget", 1, 3, WidgetData(5, 0x1122334455667788))
                                      .Finish();
  Result<std::vector<DeviceLayout>> layouts = DescribeDevices(buffer, VmDescriptionOf({SmallDescription(), WidgetDescription()}));
  ASSERT_TRUE(layouts.ok()) << layouts.status();
  ASSERT_EQ(layouts->size(), 2u);
  const DeviceLayout& widget = (*layouts)[1];
  ExpectTiles((*layouts)[0]);
  ExpectTiles(widget);
  EXPECT_EQ(widget.vmsd_name, "widget");
  EXPECT_EQ(Paths(widget),
            (std::vector<std::string>{"mode", "counter", "points[0].x", "points[0].y", "points[1].x", "points[1].y",
                                      "lanes[0]", "lanes[1]", "version_id", "child.state", "child.child/x",
                                      "child.child/x/extra", "tmp.a", "tmp.b", "widget/late", "widget/late/late"}));
  EXPECT_EQ(widget.value_field_count(), 14u);
  const FieldSpan* header = FindField(widget, "widget/late");
  ASSERT_NE(header, nullptr);
  EXPECT_EQ(header->kind, FieldSpan::Kind::kSubsectionHeader);
  EXPECT_EQ(header->size, 1 + 1 + 11 + 4u);

  auto value = [&](std::string_view path) {
    const FieldSpan* field = FindField(widget, path);
    return field ? FormatFieldValue(field->type, FieldBytes(buffer, widget, *field)) : "missing";
  };
  EXPECT_EQ(value("counter"), "0x00000102");
  EXPECT_EQ(value("points[1].y"), "0x000d");
  EXPECT_EQ(value("version_id"), "0x00000002") << "'int32 le' is little-endian";
  EXPECT_EQ(value("child.child/x/extra"), "0x08");
  EXPECT_EQ(value("widget/late/late"), "0x1122334455667788");

  std::string table = RenderDeviceTable(*layouts);
  EXPECT_NE(table.find("widget"), std::string::npos) << table;
  EXPECT_NE(table.find("14 fields, 2 subsections"), std::string::npos) << table;
  std::string fields = RenderDeviceFields(buffer, widget);
  EXPECT_NE(fields.find("widget/late/late"), std::string::npos) << fields;
}

TEST(VmstateInspectorTest, DiffNamesChangedFieldsWithOldAndNewValues) {
  Json vmdesc = VmDescriptionOf({SmallDescription(), WidgetDescription()});
  std::vector<std::byte> before =
      DeviceStateBuilder().Section("small", 0, 1, Bytes({0, 1})).Section("widget", 1, 3, WidgetData(5, 1)).Finish();
  std::vector<std::byte> after =
      DeviceStateBuilder().Section("small", 0, 1, Bytes({0, 1})).Section("widget", 1, 3, WidgetData(6, 2)).Finish();
  Result<DeviceStateDiff> diff = DiffDeviceState(before, after, vmdesc);
  ASSERT_TRUE(diff.ok()) << diff.status();
  EXPECT_EQ(diff->unchanged, std::vector<std::string>{"small"});
  ASSERT_EQ(diff->changed.size(), 1u);
  const DeviceDifference& widget = diff->changed[0];
  EXPECT_EQ(widget.name, "widget");
  EXPECT_EQ(widget.instance, 1u);
  EXPECT_EQ(widget.change, DeviceDifference::Change::kFields);
  ASSERT_EQ(widget.fields.size(), 2u);
  EXPECT_EQ(widget.fields[0].path, "mode");
  EXPECT_EQ(widget.fields[0].before_value, "0x05");
  EXPECT_EQ(widget.fields[0].after_value, "0x06");
  EXPECT_EQ(widget.fields[1].path, "widget/late/late");
  EXPECT_EQ(widget.fields[1].after_value, "0x0000000000000002");
  std::string rendered = RenderDiff(*diff);
  EXPECT_NE(rendered.find("widget#1: 2 fields changed"), std::string::npos) << rendered;
  EXPECT_NE(rendered.find("0x05 -> 0x06"), std::string::npos) << rendered;

  Result<DeviceStateDiff> same = DiffDeviceState(before, before, vmdesc);
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->changed.empty());
  EXPECT_EQ(same->unchanged.size(), 2u);
}

TEST(VmstateInspectorTest, DiffReportsAddedRemovedAndResizedDevices) {
  Json vmdesc = VmDescriptionOf({SmallDescription(), WidgetDescription()});
  std::vector<std::byte> before = DeviceStateBuilder().Section("small", 0, 1, Bytes({0, 1})).Finish();
  // "small" grew: its bytes no longer match the description, so it is compared opaquely.
  std::vector<std::byte> after =
      DeviceStateBuilder().Section("small", 0, 1, Bytes({0, 1, 2})).Section("widget", 1, 3, WidgetData(5, 1)).Finish();
  Result<DeviceStateDiff> diff = DiffDeviceState(before, after, vmdesc);
  ASSERT_TRUE(diff.ok()) << diff.status();
  ASSERT_EQ(diff->changed.size(), 2u);
  EXPECT_EQ(diff->changed[0].change, DeviceDifference::Change::kOpaque);
  EXPECT_EQ(diff->changed[0].before_data_size, 2u);
  EXPECT_EQ(diff->changed[0].after_data_size, 3u);
  EXPECT_NE(diff->changed[0].opaque_reason.find("after"), std::string::npos) << diff->changed[0].opaque_reason;
  EXPECT_EQ(diff->changed[1].change, DeviceDifference::Change::kAdded);

  Result<DeviceStateDiff> reverse = DiffDeviceState(after, before, vmdesc);
  ASSERT_TRUE(reverse.ok());
  ASSERT_EQ(reverse->changed.size(), 2u);
  EXPECT_EQ(reverse->changed[1].change, DeviceDifference::Change::kRemoved);
  EXPECT_EQ(reverse->changed[1].name, "widget");
}

TEST(VmstateInspectorTest, BytesThatDisagreeWithTheDescriptionMakeTheDeviceOpaque) {
  Json vmdesc = VmDescriptionOf({WidgetDescription()});
  auto describe = [&](const std::vector<std::byte>& data, const Json& description) {
    std::vector<std::byte> buffer = DeviceStateBuilder().Section("widget", 1, 3, data).Finish();
    Result<std::vector<DeviceLayout>> layouts = DescribeDevices(buffer, description);
    EXPECT_TRUE(layouts.ok()) << layouts.status();
    return layouts.ok() && layouts->size() == 1 ? (*layouts)[0] : DeviceLayout{};
  };

  // One byte short: sizes disagree.
  std::vector<std::byte> short_data = WidgetData(5, 1);
  short_data.pop_back();
  DeviceLayout layout = describe(short_data, vmdesc);
  EXPECT_FALSE(layout.decoded());
  EXPECT_TRUE(layout.fields.empty());
  EXPECT_NE(layout.opaque_reason.find("accounts for 62 bytes, the section holds 61"), std::string::npos)
      << layout.opaque_reason;

  // Right size, but a different subsection where "widget/late" should be.
  std::vector<std::byte> other_subsection = WidgetData(5, 1);
  const std::vector<std::byte> late_header = SubsectionHeader("widget/late", 1);
  auto late = std::search(other_subsection.begin(), other_subsection.end(), late_header.begin(), late_header.end());
  ASSERT_NE(late, other_subsection.end());
  *(late + 2) = std::byte{'W'};  // "Widget/late"
  layout = describe(other_subsection, vmdesc);
  EXPECT_FALSE(layout.decoded());
  EXPECT_NE(layout.opaque_reason.find("expected subsection 'widget/late'"), std::string::npos) << layout.opaque_reason;

  // The stream's subsection version is not the described one.
  Json bumped = vmdesc;
  bumped["devices"][0]["subsections"][0]["version"] = uint64_t{7};
  layout = describe(WidgetData(5, 1), bumped);
  EXPECT_FALSE(layout.decoded());
  EXPECT_NE(layout.opaque_reason.find("the stream has version 1"), std::string::npos) << layout.opaque_reason;

  // The section's version is not the described one.
  Json other_version = vmdesc;
  other_version["devices"][0]["version"] = uint64_t{4};
  layout = describe(WidgetData(5, 1), other_version);
  EXPECT_FALSE(layout.decoded());
  EXPECT_NE(layout.opaque_reason.find("version 3 in the stream, 4 in the VM description"), std::string::npos);

  // A device the description does not list.
  layout = describe(WidgetData(5, 1), VmDescriptionOf({SmallDescription()}));
  EXPECT_FALSE(layout.decoded());
  EXPECT_EQ(layout.opaque_reason, "not in the VM description");
}

TEST(VmstateInspectorTest, AStructWhoseMembersDoNotAddUpStaysOneSpan) {
  Json vmdesc = VmDescriptionOf({WidgetDescription()});
  // The struct says 3 bytes per point, its members now 4: lay each point out whole.
  vmdesc["devices"][0]["fields"][2]["struct"]["fields"][1]["size"] = uint64_t{3};
  std::vector<std::byte> buffer = DeviceStateBuilder().Section("widget", 1, 3, WidgetData(5, 1)).Finish();
  Result<std::vector<DeviceLayout>> layouts = DescribeDevices(buffer, vmdesc);
  ASSERT_TRUE(layouts.ok()) << layouts.status();
  const DeviceLayout& widget = (*layouts)[0];
  ExpectTiles(widget);
  const FieldSpan* point = FindField(widget, "points[1]");
  ASSERT_NE(point, nullptr);
  EXPECT_EQ(point->type, "struct");
  EXPECT_EQ(point->size, 3u);
  EXPECT_EQ(FindField(widget, "points[1].x"), nullptr);
  EXPECT_NE(FindField(widget, "child.child/x/extra"), nullptr) << "other structs are still split";
}

TEST(VmstateInspectorTest, MalformedVmDescriptionsAreErrorsNotExceptions) {
  EXPECT_EQ(ParseVmDescription("{\"page_size\": 4096, \"devices\": [").status().code(), Status::Code::kCorruption);
  EXPECT_EQ(ParseVmDescription("").status().code(), Status::Code::kCorruption);
  EXPECT_EQ(ParseVmDescription("[1, 2]").status().code(), Status::Code::kCorruption);
  EXPECT_EQ(ParseVmDescription("{\"page_size\": 4096}").status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(ParseVmDescription(VmDescriptionOf({WidgetDescription()}).dump()).ok());

  std::vector<std::byte> buffer = DeviceStateBuilder().Section("widget", 1, 3, WidgetData(5, 1)).Finish();
  struct Mangling {
    const char* what;
    std::function<void(Json&)> mangle;
    const char* message;
  };
  const Mangling manglings[] = {
      {"size as text", [](Json& d) { d["fields"][1]["size"] = "four"; }, "device 'widget', field 'counter' has no unsigned 'size'"},
      {"negative size", [](Json& d) { d["fields"][1]["size"] = -4; }, "has no unsigned 'size'"},
      {"no size", [](Json& d) { d["fields"][1].erase("size"); }, "has no unsigned 'size'"},
      {"array_len as text", [](Json& d) { d["fields"][2]["array_len"] = "2"; }, "'array_len' is not unsigned"},
      {"huge array", [](Json& d) { d["fields"][2]["array_len"] = uint64_t{1} << 40; }, "larger than 2^32"},
      {"fields not an array", [](Json& d) { d["fields"] = Json::object(); }, "'fields' is not an array"},
      {"struct not an object", [](Json& d) { d["fields"][2]["struct"] = 3; }, "'struct' is not an object"},
      {"nested size as text", [](Json& d) { d["fields"][2]["struct"]["fields"][0]["size"] = "1"; }, "field 'x'"},
      {"subsection without name", [](Json& d) { d["subsections"][0].erase("vmsd_name"); }, "without a 'vmsd_name'"},
      {"instance as text", [](Json& d) { d["instance_id"] = "1"; }, "'instance_id'"},
      {"name as number", [](Json& d) { d["name"] = 1; }, "has no 'name'"},
      {"type as number", [](Json& d) { d["fields"][0]["type"] = 8; }, "'type' is not a string"},
  };
  for (const Mangling& mangling : manglings) {
    SCOPED_TRACE(mangling.what);
    Json device = WidgetDescription();
    mangling.mangle(device);
    Json vmdesc = VmDescriptionOf({device});
    Result<std::vector<DeviceLayout>> layouts = DescribeDevices(buffer, vmdesc);
    ASSERT_FALSE(layouts.ok());
    EXPECT_EQ(layouts.status().code(), Status::Code::kCorruption);
    EXPECT_NE(layouts.status().message().find(mangling.message), std::string::npos) << layouts.status();
    EXPECT_FALSE(DiffDeviceState(buffer, buffer, vmdesc).ok());
    EXPECT_FALSE(ParseVmDescription(vmdesc.dump()).ok());
  }
  // Built in code, a signed 4 is refused (parsed from text it would be unsigned, and fine).
  Json signed_size = WidgetDescription();
  signed_size["fields"][1]["size"] = 4;
  EXPECT_EQ(DescribeDevices(buffer, VmDescriptionOf({signed_size})).status().code(), Status::Code::kCorruption);
  EXPECT_TRUE(ParseVmDescription(VmDescriptionOf({signed_size}).dump()).ok());
  EXPECT_FALSE(DescribeDevices(buffer, Json("not an object")).ok());
  EXPECT_FALSE(DescribeDevices(buffer, Json{{"devices", 3}}).ok());
}

TEST(VmstateInspectorTest, UnsplittableDeviceStateIsCorruptionNamingTheOffset) {
  Json vmdesc = VmDescriptionOf({SmallDescription()});
  std::vector<std::byte> buffer = DeviceStateBuilder().Section("small", 0, 1, Bytes({0, 1})).Finish();

  std::vector<std::byte> no_eof(buffer.begin(), buffer.end() - 1);
  Result<std::vector<DeviceLayout>> layouts = DescribeDevices(no_eof, vmdesc);
  ASSERT_FALSE(layouts.ok());
  EXPECT_EQ(layouts.status().code(), Status::Code::kCorruption);

  std::vector<std::byte> bad_footer = buffer;
  bad_footer[bad_footer.size() - 2] ^= std::byte{0xff};  // the footer's section id
  layouts = DescribeDevices(bad_footer, vmdesc);
  ASSERT_FALSE(layouts.ok());
  EXPECT_NE(layouts.status().message().find("at offset 0 has no footer"), std::string::npos) << layouts.status();

  std::vector<std::byte> not_a_section = buffer;
  not_a_section[0] = std::byte{0x42};
  layouts = DescribeDevices(not_a_section, vmdesc);
  ASSERT_FALSE(layouts.ok());
  EXPECT_NE(layouts.status().message().find("offset 0"), std::string::npos) << layouts.status();
  Result<DeviceStateDiff> diff = DiffDeviceState(buffer, not_a_section, vmdesc);
  ASSERT_FALSE(diff.ok());
  EXPECT_EQ(diff.status().message().substr(0, 6), "after:") << diff.status();
}

TEST(VmstateInspectorTest, FormatFieldValue) {
  EXPECT_EQ(FormatFieldValue("uint32", Bytes({0x00, 0x10, 0x00, 0xb0})), "0x001000b0");
  EXPECT_EQ(FormatFieldValue("int32 le", Bytes({0xb0, 0x00, 0x10, 0x00})), "0x001000b0");
  EXPECT_EQ(FormatFieldValue("buffer", Bytes({0xde, 0xad})), "0xdead");
  EXPECT_EQ(FormatFieldValue("buffer", Bytes({})), "");
  EXPECT_EQ(FormatFieldValue("buffer", Bytes({1, 2, 3, 4, 5, 6, 7, 8, 9})), "");
}

// ---------------------------------------------------------------------------------------------
// A real stream.

// Every device state in a stream (0: the precopy's, N: checkpoint N's) and the VM description.
struct DeviceStates : QemuStreamVisitor {
  std::vector<std::vector<std::byte>> states;
  std::string vmdesc_text;
  std::vector<DeviceSectionSpan> precopy_sections;

  Status OnDeviceState(std::span<const std::byte> sections_and_eof) override {
    states.emplace_back(sections_and_eof.begin(), sections_and_eof.end());
    return Status::Ok();
  }
  Status OnVmDescription(std::string_view json, const std::vector<DeviceSectionSpan>& sections) override {
    vmdesc_text = json;
    precopy_sections = sections;
    return Status::Ok();
  }
};

constexpr int kCheckpoints = 8;

// A clock device whose 8-byte field changes at every checkpoint: kvmclock under KVM; TCG has no
// kvmclock, and QEMU's "timer" section (cpu_ticks_offset) plays the part.
struct ClockDevice {
  std::string device;
  std::string field;
};
ClockDevice TheClock() {
  Result<testing::GuestAccelerator> accelerator = testing::ChosenAccelerator();
  if (accelerator.ok() && accelerator->name == "tcg") return {"timer", "cpu_ticks_offset"};
  return {"kvmclock", "clock"};
}

class VmstateInspectorRecordingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (testing::GuestAcceleratorUnavailableReason()) return;
    testing::ColoRecordingOptions options;
    options.checkpoints = kCheckpoints;
    Result<testing::ColoRecording> recording = testing::RecordColoStream(options);
    if (!recording.ok()) {
      setup_error_ = new std::string(recording.status().ToString());
      return;
    }
    stream_ = new std::vector<std::byte>(std::move(recording->stream));
    parsed_ = new DeviceStates;
    QemuStreamReader reader(*parsed_);
    Status fed = reader.Feed(*stream_);
    if (!fed.ok()) {
      setup_error_ = new std::string("parsing the recording: " + fed.ToString());
      return;
    }
    Result<Json> vmdesc = ParseVmDescription(parsed_->vmdesc_text);
    if (!vmdesc.ok()) {
      setup_error_ = new std::string("the recording's VM description: " + vmdesc.status().ToString());
      return;
    }
    vmdesc_ = new Json(std::move(*vmdesc));
  }
  static void TearDownTestSuite() {
    delete stream_;
    delete parsed_;
    delete vmdesc_;
    delete setup_error_;
    stream_ = nullptr;
    parsed_ = nullptr;
    vmdesc_ = nullptr;
    setup_error_ = nullptr;
  }
  void SetUp() override {
    UNDERSTUDY_REQUIRE_GUEST_ACCELERATOR();
    ASSERT_EQ(setup_error_, nullptr) << *setup_error_;
    ASSERT_NE(vmdesc_, nullptr);
    ASSERT_GE(parsed_->states.size(), static_cast<size_t>(kCheckpoints) + 1);
  }

  static std::span<const std::byte> State(size_t number) { return parsed_->states[number]; }

  static std::vector<std::byte>* stream_;
  static DeviceStates* parsed_;
  static Json* vmdesc_;
  static std::string* setup_error_;
};

std::vector<std::byte>* VmstateInspectorRecordingTest::stream_ = nullptr;
DeviceStates* VmstateInspectorRecordingTest::parsed_ = nullptr;
Json* VmstateInspectorRecordingTest::vmdesc_ = nullptr;
std::string* VmstateInspectorRecordingTest::setup_error_ = nullptr;

uint64_t FieldAsInteger(std::span<const std::byte> buffer, const DeviceLayout& layout, std::string_view path) {
  const FieldSpan* field = FindField(layout, path);
  if (field == nullptr || field->size != 8) ADD_FAILURE() << "no 8-byte field " << path;
  return field && field->size == 8 ? LoadBigEndian<uint64_t>(FieldBytes(buffer, layout, *field).data()) : 0;
}

TEST_F(VmstateInspectorRecordingTest, LaysOutMostDevicesFieldByField) {
  for (size_t number = 0; number < parsed_->states.size(); ++number) {
    SCOPED_TRACE("device state " + std::to_string(number));
    std::span<const std::byte> state = State(number);
    Result<std::vector<DeviceLayout>> layouts = DescribeDevices(state, *vmdesc_);
    ASSERT_TRUE(layouts.ok()) << layouts.status();
    ASSERT_GT(layouts->size(), 10u);
    size_t decoded = 0;
    for (const DeviceLayout& layout : *layouts) {
      if (!layout.decoded()) continue;
      ++decoded;
      ExpectTiles(layout);
    }
    EXPECT_GE(decoded * 10, layouts->size() * 9) << RenderDeviceTable(*layouts);

    // The devices the precopy's split found, in the same places.
    if (number == 0) {
      ASSERT_EQ(layouts->size(), parsed_->precopy_sections.size());
      for (size_t i = 0; i < layouts->size(); ++i) EXPECT_EQ((*layouts)[i].section, parsed_->precopy_sections[i]);
    }

    const DeviceLayout* cpu = Find(*layouts, "cpu");
    const DeviceLayout* kvmclock = Find(*layouts, TheClock().device);
    const DeviceLayout* timer = Find(*layouts, "timer");
    ASSERT_NE(cpu, nullptr);
    ASSERT_NE(kvmclock, nullptr);
    ASSERT_NE(timer, nullptr);
    for (const DeviceLayout* device : {cpu, kvmclock, timer}) ExpectTiles(*device);
    EXPECT_GT(cpu->value_field_count(), 100u);
    ASSERT_NE(FindField(*kvmclock, TheClock().field), nullptr);
    EXPECT_EQ(FindField(*kvmclock, TheClock().field)->size, 8u);

    // The layout is right, not merely the right size: the counter guest is a 32-bit
    // protected-mode kernel linked at 1 MiB (tests/guests/guest.ld), so EIP is in its text
    // and CR0 has PE set.
    uint64_t eip = FieldAsInteger(state, *cpu, "env.eip");
    EXPECT_GE(eip, 0x100000u);
    EXPECT_LT(eip, 0x200000u);
    EXPECT_EQ(FieldAsInteger(state, *cpu, "env.cr[0]") & 1, 1u) << "CR0.PE";
  }
}

TEST_F(VmstateInspectorRecordingTest, ConsecutiveCheckpointsDifferInCpuStateButNotInStaticDevices) {
  for (size_t number = 1; number + 1 < parsed_->states.size(); ++number) {
    SCOPED_TRACE("checkpoints " + std::to_string(number) + " -> " + std::to_string(number + 1));
    Result<DeviceStateDiff> diff = DiffDeviceState(State(number), State(number + 1), *vmdesc_);
    ASSERT_TRUE(diff.ok()) << diff.status();
    auto cpu = std::find_if(diff->changed.begin(), diff->changed.end(),
                            [](const DeviceDifference& d) { return d.name == "cpu"; });
    ASSERT_NE(cpu, diff->changed.end()) << RenderDiff(*diff);
    EXPECT_EQ(cpu->change, DeviceDifference::Change::kFields);
    // The guest ran between the two: its registers or at least its time-stamp counter moved.
    bool registers_moved = std::any_of(cpu->fields.begin(), cpu->fields.end(), [](const FieldDifference& field) {
      return field.path == "env.eip" || field.path.starts_with("env.regs[") || field.path == "env.tsc";
    });
    EXPECT_TRUE(registers_moved) << RenderDiff(*diff);
    for (const FieldDifference& field : cpu->fields) {
      EXPECT_EQ(field.before_value.has_value(), field.size <= 8) << field.path;
      EXPECT_NE(field.before_value, field.after_value) << field.path;
    }
    // Configuration devices the guest never touches stay byte-identical.
    for (std::string_view stable : {"0000:00:00.0/I440FX", "fw_cfg", "globalstate"}) {
      EXPECT_NE(std::find(diff->unchanged.begin(), diff->unchanged.end(), stable), diff->unchanged.end())
          << stable << " changed:\n"
          << RenderDiff(*diff);
    }
  }
}

TEST_F(VmstateInspectorRecordingTest, AFlippedRegisterByteShowsUpAsExactlyThatField) {
  std::vector<std::byte> changed(State(1).begin(), State(1).end());
  Result<std::vector<DeviceLayout>> layouts = DescribeDevices(changed, *vmdesc_);
  ASSERT_TRUE(layouts.ok());
  const DeviceLayout* cpu = Find(*layouts, "cpu");
  ASSERT_NE(cpu, nullptr);
  const FieldSpan* eip = FindField(*cpu, "env.eip");
  ASSERT_NE(eip, nullptr);
  std::string old_value = FormatFieldValue(eip->type, FieldBytes(changed, *cpu, *eip));
  changed[cpu->section.data_offset + eip->offset + 7] ^= std::byte{0x01};  // lowest byte (big-endian)

  Result<DeviceStateDiff> diff = DiffDeviceState(State(1), changed, *vmdesc_);
  ASSERT_TRUE(diff.ok()) << diff.status();
  ASSERT_EQ(diff->changed.size(), 1u) << RenderDiff(*diff);
  ASSERT_EQ(diff->changed[0].fields.size(), 1u);
  const FieldDifference& field = diff->changed[0].fields[0];
  EXPECT_EQ(field.path, "env.eip");
  EXPECT_EQ(field.offset, eip->offset);
  EXPECT_EQ(field.before_value, old_value);
  EXPECT_NE(field.after_value, old_value);
  EXPECT_EQ(field.bytes_differing, 1u);
}

TEST_F(VmstateInspectorRecordingTest, ADescriptionThatDisagreesInSizeMakesOnlyThatDeviceOpaque) {
  // The clock's field is 8 bytes on the wire; claim 4.
  const ClockDevice clock = TheClock();
  Json shrunk = *vmdesc_;
  bool found = false;
  for (Json& device : shrunk["devices"]) {
    if (device["name"] != clock.device) continue;
    for (Json& field : device["fields"]) {
      if (field["name"] == clock.field) {
        field["size"] = uint64_t{4};
        found = true;
      }
    }
  }
  ASSERT_TRUE(found) << "no " << clock.device << "." << clock.field << " in the VM description";
  Result<std::vector<DeviceLayout>> layouts = DescribeDevices(State(0), shrunk);
  ASSERT_TRUE(layouts.ok()) << layouts.status();
  const DeviceLayout* shrunk_device = Find(*layouts, clock.device);
  ASSERT_NE(shrunk_device, nullptr);
  EXPECT_FALSE(shrunk_device->decoded());
  EXPECT_TRUE(shrunk_device->fields.empty()) << "an opaque device must not be split by guesswork";
  EXPECT_NE(shrunk_device->opaque_reason.find("the section holds " + std::to_string(shrunk_device->section.data_size)),
            std::string::npos)
      << shrunk_device->opaque_reason;
  const DeviceLayout* cpu = Find(*layouts, "cpu");
  ASSERT_NE(cpu, nullptr);
  ExpectTiles(*cpu);

  // A checkpoint diff against it still says the clock changed, without fields.
  Result<DeviceStateDiff> diff = DiffDeviceState(State(1), State(2), shrunk);
  ASSERT_TRUE(diff.ok()) << diff.status();
  auto changed = std::find_if(diff->changed.begin(), diff->changed.end(),
                              [&](const DeviceDifference& d) { return d.name == clock.device; });
  ASSERT_NE(changed, diff->changed.end());
  EXPECT_EQ(changed->change, DeviceDifference::Change::kOpaque);
  EXPECT_TRUE(changed->fields.empty());
}

TEST_F(VmstateInspectorRecordingTest, MalformedRecordedDescriptionIsAnError) {
  std::string text = parsed_->vmdesc_text;
  EXPECT_EQ(ParseVmDescription(std::string_view(text).substr(0, text.size() / 2)).status().code(),
            Status::Code::kCorruption);
  Json broken = *vmdesc_;
  broken["devices"][2]["fields"][0]["size"] = "eight";
  Result<std::vector<DeviceLayout>> layouts = DescribeDevices(State(0), broken);
  ASSERT_FALSE(layouts.ok());
  EXPECT_NE(layouts.status().message().find("device '" + broken["devices"][2]["name"].get<std::string>() + "'"),
            std::string::npos)
      << layouts.status();
}

// ---------------------------------------------------------------------------------------------
// The ckpt_inspect binary.

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char chunk[4096];
  size_t got;
  while ((got = std::fread(chunk, 1, sizeof(chunk), pipe)) > 0) result.output.append(chunk, got);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string TestTmpFile(std::string_view name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + std::string(name);
}

void WriteFile(const std::string& path, std::span<const std::byte> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

const std::string& CkptInspect() {
  static const std::string path = testing::RunfilePath("checkpoint/ckpt_inspect");
  return path;
}

TEST_F(VmstateInspectorRecordingTest, CkptInspectSummarizesTheRecordingAndDiffsCheckpoints) {
  std::string path = TestTmpFile("recording.colo");
  WriteFile(path, *stream_);
  CommandResult result = RunCommand(CkptInspect() + " --diff 1 2 " + path);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const std::string& out = result.output;
  const ClockDevice clock = TheClock();  // outlives the list of views below (ASan: use after scope)
  for (std::string_view expected :
       {"machine: pc-i440fx", "pc.ram", "precopy: ", "devices in device state 0 (precopy):", clock.device.c_str(), "cpu ",
        "device state 1 -> 2:", "cpu: ", "unchanged ("}) {
    EXPECT_NE(out.find(expected), std::string::npos) << "missing '" << expected << "' in:\n" << out;
  }
  EXPECT_NE(out.find("checkpoints: " + std::to_string(parsed_->states.size() - 1)), std::string::npos) << out;
  std::printf("%s", out.c_str());

  result = RunCommand(CkptInspect() + " --fields cpu " + path);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("env.eip"), std::string::npos);
  // KVM's CPU state carries the TSC frequency subsection; TCG's does not.
  if (TheClock().device == "kvmclock") {
    EXPECT_NE(result.output.find("cpu/tsc_khz"), std::string::npos);
  }

  result = RunCommand(CkptInspect() + " --diff 0 999 " + path);
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("no device state 999"), std::string::npos) << result.output;
}

TEST(CkptInspectTest, ErrorsAndUsage) {
  CommandResult result = RunCommand(CkptInspect() + " --help");
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_NE(result.output.find("usage: ckpt_inspect"), std::string::npos) << result.output;

  result = RunCommand(CkptInspect());
  EXPECT_EQ(result.exit_code, 2) << result.output;
  result = RunCommand(CkptInspect() + " --diff 1");
  EXPECT_EQ(result.exit_code, 2) << result.output;

  result = RunCommand(CkptInspect() + " " + TestTmpFile("does-not-exist.colo"));
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("No such file or directory"), std::string::npos) << result.output;

  std::string corrupt = TestTmpFile("corrupt.colo");
  WriteFile(corrupt, Bytes({'Q', 'E', 'V', 'X', 0, 0, 0, 3}));
  result = RunCommand(CkptInspect() + " " + corrupt);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("Corruption"), std::string::npos) << result.output;

  std::string truncated = TestTmpFile("truncated.colo");
  WriteFile(truncated, Bytes({'Q', 'E', 'V', 'M', 0, 0, 0, 3}));
  result = RunCommand(CkptInspect() + " " + truncated);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("ends inside the initial precopy"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace understudy::checkpoint
