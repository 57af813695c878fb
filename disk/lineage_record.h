// LineageRecord: what a disk image knows about its own history, kept in a small file next to
// it (`<image>.lineage`), so that a copy that comes back after a crash or a failover can be
// brought up to date by shipping only what differs instead of the whole disk.
//
// A lineage is one pairing's history of the disk: the primary names it (a random id) when a
// pairing starts, and every copy that took part carries the name. The invariant that makes a
// delta resynchronisation safe: outside its suspect extents, a copy holds the lineage's
// content as of an epoch its peer has committed. So two copies of one lineage can differ
// only in the union of their suspect extents plus what the serving side changed since its
// base — that union is what a resync ships.
//   * A replica (the secondary's copy) changes only by whole committed epochs: no suspects.
//   * A served disk (primary, or a promoted standby) marks an extent suspect — durably —
//     before any write to it completes (a write-intent log, like DRBD's activity log), and
//     clears it once the peer has committed every write to that extent.
//   * A copy whose content matches no lineage (a full copy half done, a resync being
//     applied) has an empty lineage: it can only be copied over in full.
//
// Written by replacing the file (write, fdatasync, rename), so a crash leaves the old or the
// new record, never a torn one. An absent or unreadable file is an empty lineage.
#ifndef UNDERSTUDY_DISK_LINEAGE_RECORD_H_
#define UNDERSTUDY_DISK_LINEAGE_RECORD_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"

namespace understudy::disk {

// Granularity of suspect extents: coarse, so marking one (a synchronous file update) is rare.
inline constexpr uint64_t kExtentBytes = 1 << 20;

struct LineageRecord {
  std::string lineage;                   // empty: matches nothing
  std::vector<uint64_t> suspect_extents;  // extent numbers (offset / kExtentBytes), ascending

  // The record of `image_path`; an empty one when there is none or it cannot be read.
  static LineageRecord Load(const std::string& image_path);
  Status Store(const std::string& image_path) const;

  // As peers exchange it (the secondary's hello).
  nlohmann::json ToJson() const;
  static LineageRecord FromJson(const nlohmann::json& json);

  // A fresh random lineage name.
  static std::string NewLineage();
};

}  // namespace understudy::disk

#endif  // UNDERSTUDY_DISK_LINEAGE_RECORD_H_
