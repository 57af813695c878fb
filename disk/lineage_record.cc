#include "disk/lineage_record.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <random>

#include "common/json_fields.h"
#include "common/json_file.h"
#include "common/unique_fd.h"

namespace understudy::disk {

namespace {

std::string RecordPath(const std::string& image_path) { return image_path + ".lineage"; }

}  // namespace

LineageRecord LineageRecord::Load(const std::string& image_path) {
  Result<nlohmann::json> json = ReadJsonFile(RecordPath(image_path));
  if (!json.ok()) return {};
  return FromJson(*json);
}

Status LineageRecord::Store(const std::string& image_path) const {
  const std::string path = RecordPath(image_path);
  const std::string temporary = path + ".new";
  const std::string text = ToJson().dump();
  UniqueFd file(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!file.valid()) return Status::FromErrno("writing " + temporary, errno);
  if (::write(file.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) || ::fdatasync(file.get()) != 0) {
    return Status::FromErrno("writing " + temporary, errno);
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) return Status::FromErrno("replacing " + path, errno);
  return Status::Ok();
}

nlohmann::json LineageRecord::ToJson() const {
  return {{"lineage", lineage}, {"extent_bytes", kExtentBytes}, {"suspect_extents", suspect_extents}};
}

LineageRecord LineageRecord::FromJson(const nlohmann::json& json) {
  // Anything unexpected (a field of the wrong type included: this also comes from the peer's
  // hello) gives the empty record, which matches no lineage: a full copy, never an exception.
  LineageRecord record;
  // A record written with another extent size cannot be trusted extent by extent.
  Result<uint64_t> extent_bytes = RequireUint64(json, "extent_bytes", "lineage record");
  if (!extent_bytes.ok() || *extent_bytes != kExtentBytes) return record;
  Result<std::string> lineage = RequireString(json, "lineage", "lineage record");
  auto suspects = json.find("suspect_extents");
  if (!lineage.ok() || suspects == json.end() || !suspects->is_array()) return record;
  for (const nlohmann::json& extent : *suspects) {
    if (!extent.is_number_unsigned()) return {};
    record.suspect_extents.push_back(extent.get<uint64_t>());
  }
  record.lineage = std::move(*lineage);
  return record;
}

std::string LineageRecord::NewLineage() {
  std::random_device random;
  char name[33];
  std::snprintf(name, sizeof(name), "%08x%08x%08x%08x", random(), random(), random(), random());
  return name;
}

}  // namespace understudy::disk
