#include "checkpoint/checkpoint_apply.h"

#include <array>

namespace understudy::checkpoint {

std::vector<PageRun> EncodeStagedPages(const RamImage& image, const PageEncoderOptions& options) {
  std::vector<PageRun> runs;
  const bool have_reference = image.committed_epoch() != 0;
  image.staged().ForEach([&](uint32_t block, uint64_t page) {
    if (runs.empty() || runs.back().block_index != block) runs.push_back(PageRun{block, {}});
    uint64_t offset = page * RamImage::kPageBytes;
    std::span<const std::byte> previous;
    if (have_reference) previous = image.CommittedPage(block, offset);
    runs.back().pages.push_back(EncodePage(offset, image.LatestPage(block, offset), previous, options));
  });
  return runs;
}

namespace {

Status StageAll(const Checkpoint& checkpoint, RamImage& image) {
  if (checkpoint.ram_blocks && *checkpoint.ram_blocks != image.blocks()) {
    return Status::Corruption("checkpoint's RAM block list differs from the image's");
  }
  alignas(8) std::array<std::byte, RamImage::kPageBytes> page;
  for (const PageRun& run : checkpoint.page_runs) {
    if (run.block_index >= image.blocks().size()) {
      return Status::Corruption("pages for block " + std::to_string(run.block_index) + ", which the image lacks");
    }
    for (const EncodedPage& encoded : run.pages) {
      const uint64_t length = image.blocks()[run.block_index].used_length;
      // No wrap-around: offset + 4096 overflows for offsets near 2^64.
      if (encoded.offset % RamImage::kPageBytes != 0 || encoded.offset > length ||
          length - encoded.offset < RamImage::kPageBytes) {
        return Status::Corruption("page at offset " + std::to_string(encoded.offset) + " outside block '" +
                                  image.blocks()[run.block_index].id + "'");
      }
      if (encoded.encoding == format::PageEncoding::kZero) {
        UNDERSTUDY_RETURN_IF_ERROR(image.StageZeroPage(run.block_index, encoded.offset));
        continue;
      }
      UNDERSTUDY_RETURN_IF_ERROR(
          DecodePage(encoded, image.CommittedPage(run.block_index, encoded.offset), page)
              .WithContext("block '" + image.blocks()[run.block_index].id + "'"));
      UNDERSTUDY_RETURN_IF_ERROR(image.StagePage(run.block_index, encoded.offset, page));
    }
  }
  return Status::Ok();
}

}  // namespace

Status ApplyCheckpoint(const Checkpoint& checkpoint, RamImage& image) {
  std::string context = "applying checkpoint " + std::to_string(checkpoint.epoch);
  if (checkpoint.epoch <= image.committed_epoch()) {
    return Status::FailedPrecondition(context + ": the image is already at epoch " +
                                      std::to_string(image.committed_epoch()));
  }
  if (checkpoint.base_epoch != 0 && checkpoint.base_epoch != image.committed_epoch()) {
    return Status::FailedPrecondition(context + ": its deltas refer to epoch " + std::to_string(checkpoint.base_epoch) +
                                      " but the image is at epoch " + std::to_string(image.committed_epoch()));
  }
  image.DiscardStaged();
  Status staged = StageAll(checkpoint, image);
  if (!staged.ok()) {
    image.DiscardStaged();
    return staged.WithContext(context);
  }
  image.CommitStaged(checkpoint.epoch);
  return Status::Ok();
}

}  // namespace understudy::checkpoint
