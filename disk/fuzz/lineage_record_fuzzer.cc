// libFuzzer target for the lineage record (disk/lineage_record.h) as a primary reads it from
// its secondary's hello (the "disk" object, which replication/ carries without reading): the
// whole input is the JSON text. Anything unexpected must give the empty record, never an
// exception; an accepted record must survive being sent again (ToJson, then FromJson), since
// the delta resync trusts the suspect extents it names.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "common/json_fields.h"
#include "disk/lineage_record.h"
#include "tools/fuzz/fuzz_promise.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace understudy;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    Result<nlohmann::json> json = ParseJson(text, "fuzz");
    if (!json.ok()) return 0;
    disk::LineageRecord record = disk::LineageRecord::FromJson(*json);
    disk::LineageRecord again = disk::LineageRecord::FromJson(record.ToJson());
    fuzz::Require(again.lineage == record.lineage && again.suspect_extents == record.suspect_extents,
                  "a record sent again says the same");
  } catch (const std::exception& error) {
    std::fprintf(stderr, "exception escaped the lineage record parser: %s\n", error.what());
    std::abort();
  }
  return 0;
}
