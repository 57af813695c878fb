// codec_bench: how fast Understudy's checkpoint codecs run on real COLO streams, and how well
// its page encodings compress them.
//
//   bazel run //bench:codec_bench [-- --rates=64,1024 --checkpoints=20 --repetitions=9 --no-results]
//
// For each dirty rate it records a real COLO stream (counter guest, `pages=N`, KVM or TCG), then,
// with everything in memory:
//  * parse:  QemuStreamReader over the whole recorded stream, fed in 64 KiB chunks, with a
//            visitor that only counts pages and reads one byte of each;
//  * capture: the primary agent's pause-critical copy of each page into its EpochCapture, as the
//            agent does it today (a fresh, growing buffer per epoch) and into a reused buffer;
//  * encode: per checkpoint, what the primary's shipper does — stage the pages into a RamImage,
//            EncodeStagedPages, SerializeCheckpoint, CommitStaged (the next delta's reference);
//  * decode: per checkpoint, what the secondary does — ParseCheckpoint + ApplyCheckpoint into
//            its own RamImage (decompress, stage, commit);
// and compares each with a single-threaded memcpy of the same bytes in the same pieces (64 KiB
// chunks for parse, one checkpoint's raw bytes for capture/encode/decode). Times are medians over
// repetitions; the ratio "time / memcpy" is how many memcpys of those bytes the step costs.
// Throughputs of encode/decode count the checkpoint's raw bytes (4096 per dirty page plus the
// device state), whatever they compress to.
//
// Compression: raw page bytes vs LZ4 alone (PageEncoderOptions{.delta = false}) vs
// XOR-with-previous + LZ4 (the default), over the recorded checkpoints (not the precopy).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "checkpoint/checkpoint_apply.h"
#include "checkpoint/checkpoint_codec.h"
#include "checkpoint/qemu_stream_reader.h"
#include "checkpoint/ram_image.h"
#include "tests/harness/colo_recording.h"

namespace understudy::bench {
namespace {

using checkpoint::Checkpoint;
using checkpoint::PageEncoderOptions;
using checkpoint::RamImage;

constexpr size_t kPage = 4096;
constexpr size_t kFeedChunk = 64 * 1024;

// One epoch's RAM and device state as QEMU sent it.
struct CapturedEpoch {
  struct Page {
    uint32_t block = 0;
    uint64_t offset = 0;
    bool zero = false;
    size_t slot = 0;  // into page_bytes, kPage bytes per slot
  };
  std::vector<Page> pages;
  std::vector<std::byte> page_bytes;
  std::string device_state;

  // The checkpoint's uncompressed size: every page as 4096 bytes, plus the device state.
  size_t raw_bytes() const { return pages.size() * kPage + device_state.size(); }
};

struct CapturedStream {
  checkpoint::RamBlockList blocks;
  CapturedEpoch precopy;                   // the initial full image
  std::vector<CapturedEpoch> checkpoints;  // each complete COLO checkpoint, in order
};

// Splits a recorded stream into the precopy and its checkpoints.
class CapturingVisitor : public checkpoint::QemuStreamVisitor {
 public:
  explicit CapturingVisitor(CapturedStream& out) : out_(out) {}

  Status OnRamBlocks(const checkpoint::RamBlockList& blocks) override {
    out_.blocks = blocks;
    return Status::Ok();
  }
  Status OnRamPage(uint32_t block, uint64_t offset, std::span<const std::byte> page) override {
    size_t slot = current_.page_bytes.size() / kPage;
    current_.page_bytes.insert(current_.page_bytes.end(), page.begin(), page.end());
    current_.pages.push_back({block, offset, false, slot});
    return Status::Ok();
  }
  Status OnRamZeroPage(uint32_t block, uint64_t offset, uint8_t fill) override {
    if (fill != 0) return Status::NotSupported("a page filled with a non-zero byte");
    current_.pages.push_back({block, offset, true, 0});
    return Status::Ok();
  }
  Status OnDeviceState(std::span<const std::byte> state) override {
    current_.device_state.assign(reinterpret_cast<const char*>(state.data()), state.size());
    if (precopy_done_) {
      out_.checkpoints.push_back(std::move(current_));
      current_ = CapturedEpoch{};
    }
    return Status::Ok();
  }
  Status OnVmDescription(std::string_view, const std::vector<checkpoint::DeviceSectionSpan>&) override {
    out_.precopy = std::move(current_);
    current_ = CapturedEpoch{};
    precopy_done_ = true;
    return Status::Ok();
  }

 private:
  CapturedStream& out_;
  CapturedEpoch current_;
  bool precopy_done_ = false;
};

// The parse benchmark's visitor: counts pages and reads one byte of each, nothing more.
class MinimalVisitor : public checkpoint::QemuStreamVisitor {
 public:
  Status OnRamPage(uint32_t, uint64_t, std::span<const std::byte> page) override {
    ++pages;
    fold ^= static_cast<uint8_t>(page[0]);
    return Status::Ok();
  }
  Status OnRamZeroPage(uint32_t, uint64_t, uint8_t) override {
    ++pages;
    return Status::Ok();
  }
  Status OnDeviceState(std::span<const std::byte> state) override {
    device_bytes += state.size();
    return Status::Ok();
  }
  uint64_t pages = 0;
  uint64_t device_bytes = 0;
  uint8_t fold = 0;
};

Status StageEpoch(const CapturedEpoch& epoch, RamImage& image) {
  for (const CapturedEpoch::Page& page : epoch.pages) {
    UNDERSTUDY_RETURN_IF_ERROR(page.zero ? image.StageZeroPage(page.block, page.offset)
                                         : image.StagePage(page.block, page.offset,
                                                           std::span(epoch.page_bytes).subspan(page.slot * kPage, kPage)));
  }
  return Status::Ok();
}

// What the primary's shipper does with one captured epoch (primary/checkpoint_shipper.cc).
Result<std::string> EncodeEpoch(const CapturedEpoch& epoch, uint64_t number, const checkpoint::RamBlockList* blocks,
                                RamImage& image, const PageEncoderOptions& options, Checkpoint* encoded = nullptr) {
  UNDERSTUDY_RETURN_IF_ERROR(StageEpoch(epoch, image));
  Checkpoint checkpoint;
  checkpoint.epoch = number;
  if (blocks != nullptr) {
    checkpoint.full = true;
    checkpoint.ram_blocks = *blocks;
  }
  checkpoint.base_epoch = image.committed_epoch();
  checkpoint.page_runs = checkpoint::EncodeStagedPages(image, options);
  checkpoint.device_state = epoch.device_state;
  image.CommitStaged(number);
  std::string bytes = checkpoint::SerializeCheckpoint(checkpoint);
  if (encoded != nullptr) *encoded = std::move(checkpoint);
  return bytes;
}

// The primary agent's pause-critical step: copying each page QEMU sends into the epoch's
// capture (PrimaryAgent::StreamConsumer::OnRamPage → EpochCapture::AddPage), measured two ways:
// as the agent does it today (a new EpochCapture per epoch whose page buffer grows as pages
// arrive), and into one buffer reused across epochs (allocated and touched once).
struct CaptureTimes {
  double fresh_seconds = 0;
  double reused_seconds = 0;
};

CaptureTimes MeasureCapture(const CapturedStream& stream, int repetitions) {
  size_t largest = 0;
  for (const CapturedEpoch& epoch : stream.checkpoints) largest = std::max(largest, epoch.raw_bytes());
  std::vector<std::byte> reused(largest);
  std::memset(reused.data(), 1, reused.size());
  std::vector<double> fresh_times, reused_times;
  for (int repetition = 0; repetition < repetitions; ++repetition) {
    std::vector<CapturedEpoch> kept;  // freed after timing: the agent frees them off the pause path
    kept.reserve(stream.checkpoints.size());
    double fresh = 0;
    double reuse = 0;
    for (const CapturedEpoch& epoch : stream.checkpoints) {
      Clock::time_point start = Clock::now();
      // What the agent did before 02:00: a new buffer per epoch, grown as pages arrive.
      CapturedEpoch capture;
      for (const CapturedEpoch::Page& page : epoch.pages) {
        CapturedEpoch::Page copied = page;
        if (!page.zero) {
          copied.slot = capture.page_bytes.size() / kPage;
          capture.page_bytes.insert(capture.page_bytes.end(), epoch.page_bytes.begin() + page.slot * kPage,
                                    epoch.page_bytes.begin() + (page.slot + 1) * kPage);
        }
        capture.pages.push_back(copied);
      }
      capture.device_state = epoch.device_state;
      fresh += SecondsSince(start);
      kept.push_back(std::move(capture));

      start = Clock::now();
      size_t used = 0;
      for (const CapturedEpoch::Page& page : epoch.pages) {
        if (page.zero) continue;
        std::memcpy(reused.data() + used, epoch.page_bytes.data() + page.slot * kPage, kPage);
        used += kPage;
      }
      std::memcpy(reused.data() + used, epoch.device_state.data(), epoch.device_state.size());
      DoNotOptimize(reused.data());
      reuse += SecondsSince(start);
    }
    fresh_times.push_back(fresh);
    reused_times.push_back(reuse);
  }
  return {Median(fresh_times), Median(reused_times)};
}

struct CodecTimes {
  double parse_seconds = 0;             // the whole stream
  double parse_precopy_seconds = 0;     // chunks up to the one that completes the precopy
  size_t precopy_chunk_bytes = 0;       // how many bytes those chunks hold
  double encode_seconds = 0;
  double decode_seconds = 0;
};

struct Sizes {
  uint64_t pages = 0;
  uint64_t raw_page_bytes = 0;
  uint64_t encoded_page_bytes = 0;  // page entries as FORMAT.md lays them out (headers included)
  uint64_t serialized_bytes = 0;    // whole checkpoints, device state and framing included
  uint64_t device_bytes = 0;
  std::map<checkpoint::format::PageEncoding, uint64_t> encodings;
};

Result<Sizes> MeasureSizes(const CapturedStream& stream, const PageEncoderOptions& options) {
  UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<RamImage> image, RamImage::Create(stream.blocks));
  UNDERSTUDY_RETURN_IF_ERROR(EncodeEpoch(stream.precopy, 1, &stream.blocks, *image, options).status());
  Sizes sizes;
  for (size_t i = 0; i < stream.checkpoints.size(); ++i) {
    Checkpoint checkpoint;
    UNDERSTUDY_ASSIGN_OR_RETURN(std::string bytes,
                                EncodeEpoch(stream.checkpoints[i], i + 2, nullptr, *image, options, &checkpoint));
    sizes.serialized_bytes += bytes.size();
    sizes.device_bytes += stream.checkpoints[i].device_state.size();
    for (const checkpoint::PageRun& run : checkpoint.page_runs) {
      for (const checkpoint::EncodedPage& page : run.pages) {
        ++sizes.pages;
        ++sizes.encodings[page.encoding];
        sizes.raw_page_bytes += kPage;
        // offset (8) + encoding (1) [+ length (4) + bytes]
        sizes.encoded_page_bytes += 9 + (page.encoding == checkpoint::format::PageEncoding::kZero ? 0 : 4 + page.bytes.size());
      }
    }
  }
  return sizes;
}

Result<CodecTimes> MeasureCodecs(const std::vector<std::byte>& stream_bytes, const CapturedStream& stream,
                                 int repetitions) {
  std::vector<double> parse, parse_precopy, encode, decode;
  size_t precopy_chunk_bytes = 0;
  for (int repetition = 0; repetition < repetitions; ++repetition) {
    // Parse the whole recording as ColoPeer would, 64 KiB at a time.
    MinimalVisitor visitor;
    checkpoint::QemuStreamReader reader(visitor);
    Clock::time_point start = Clock::now();
    double precopy_seconds = 0;
    for (size_t offset = 0; offset < stream_bytes.size(); offset += kFeedChunk) {
      size_t length = std::min(kFeedChunk, stream_bytes.size() - offset);
      Status fed = reader.Feed(std::span(stream_bytes).subspan(offset, length));
      if (!fed.ok()) return fed.WithContext("parsing the recording");
      if (precopy_seconds == 0 && reader.precopy_complete()) {
        precopy_seconds = SecondsSince(start);
        precopy_chunk_bytes = offset + length;
      }
    }
    parse.push_back(SecondsSince(start));
    parse_precopy.push_back(precopy_seconds);
    DoNotOptimize(&visitor);

    // Encode every checkpoint against the previous one, as the primary's shipper does.
    UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<RamImage> primary_image, RamImage::Create(stream.blocks));
    UNDERSTUDY_ASSIGN_OR_RETURN(std::string first, EncodeEpoch(stream.precopy, 1, &stream.blocks, *primary_image, {}));
    std::vector<std::string> encoded;
    double encode_seconds = 0;
    for (size_t i = 0; i < stream.checkpoints.size(); ++i) {
      start = Clock::now();
      Result<std::string> bytes = EncodeEpoch(stream.checkpoints[i], i + 2, nullptr, *primary_image, {});
      encode_seconds += SecondsSince(start);
      if (!bytes.ok()) return bytes.status().WithContext("encoding checkpoint " + std::to_string(i + 2));
      encoded.push_back(std::move(*bytes));
    }
    encode.push_back(encode_seconds);

    // Decode and apply them, as the secondary does.
    UNDERSTUDY_ASSIGN_OR_RETURN(std::unique_ptr<RamImage> secondary_image, RamImage::Create(stream.blocks));
    UNDERSTUDY_ASSIGN_OR_RETURN(Checkpoint initial,
                                checkpoint::ParseCheckpoint(std::as_bytes(std::span(first.data(), first.size()))));
    UNDERSTUDY_RETURN_IF_ERROR(checkpoint::ApplyCheckpoint(initial, *secondary_image));
    double decode_seconds = 0;
    for (const std::string& bytes : encoded) {
      start = Clock::now();
      Result<Checkpoint> parsed = checkpoint::ParseCheckpoint(std::as_bytes(std::span(bytes.data(), bytes.size())));
      if (!parsed.ok()) return parsed.status().WithContext("parsing an encoded checkpoint");
      Status applied = checkpoint::ApplyCheckpoint(*parsed, *secondary_image);
      decode_seconds += SecondsSince(start);
      if (!applied.ok()) return applied;
    }
    decode.push_back(decode_seconds);

    // The round trip must be exact: the secondary's image equals the primary's.
    if (repetition == 0) {
      for (uint32_t block = 0; block < stream.blocks.size(); ++block) {
        for (uint64_t offset = 0; offset < stream.blocks[block].used_length; offset += kPage) {
          if (std::memcmp(primary_image->CommittedPage(block, offset).data(),
                          secondary_image->CommittedPage(block, offset).data(), kPage) != 0) {
            return Status::Internal("decoded image differs from the encoded one in block '" + stream.blocks[block].id +
                                    "' at offset " + std::to_string(offset));
          }
        }
      }
    }
  }
  return CodecTimes{Median(parse), Median(parse_precopy), precopy_chunk_bytes, Median(encode), Median(decode)};
}

struct Options {
  std::vector<uint32_t> rates = {64, 1024};
  int checkpoints = 20;
  int repetitions = 9;
  bool write_results = true;
};

Options ParseFlags(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag.starts_with("--rates=")) {
      options.rates = ParseUintList(flag.substr(8));
    } else if (flag.starts_with("--checkpoints=")) {
      options.checkpoints = std::stoi(flag.substr(14));
    } else if (flag.starts_with("--repetitions=")) {
      options.repetitions = std::stoi(flag.substr(14));
    } else if (flag == "--no-results") {
      options.write_results = false;
    } else {
      std::fprintf(stderr, "unknown flag %s\nflags: --rates=64,1024 --checkpoints=20 --repetitions=9 --no-results\n",
                   flag.c_str());
      std::exit(2);
    }
  }
  return options;
}

std::string Ratio(double numerator, double denominator) {
  return denominator > 0 ? Format("%.1fx", numerator / denominator) : "n/a";
}

int Run(const Options& options) {
  if (auto reason = testing::GuestAcceleratorUnavailableReason()) {
    std::fprintf(stderr, "codec_bench needs KVM or the TCG vehicle (qemu/tcg/build.sh): %s\n", reason->c_str());
    return 1;
  }
  Table speed({"dirty pages/pass", "step", "bytes", "memcpy MB/s", "step MB/s", "time / memcpy"}, 2);
  Table compression({"dirty pages/pass", "pages/ckpt", "raw page KB/ckpt", "LZ4 KB/ckpt", "LZ4 ratio",
                     "XOR+LZ4 KB/ckpt", "XOR+LZ4 ratio", "device KB/ckpt", "wire KB/ckpt (XOR+LZ4)",
                     "wire ratio"});
  std::string notes;
  for (uint32_t rate : options.rates) {
    std::printf("recording %d checkpoints of the counter guest with pages=%u ...\n", options.checkpoints, rate);
    std::fflush(stdout);
    testing::ColoRecordingOptions recording_options;
    recording_options.guest = {.pages = rate, .lines_per_second = 20, .memory_mib = 64};  // ~20 lines/s, any accelerator
    recording_options.checkpoints = options.checkpoints;
    Clock::time_point recording_started = Clock::now();
    Result<testing::ColoRecording> recording = testing::RecordColoStream(recording_options);
    if (!recording.ok()) {
      std::fprintf(stderr, "recording failed: %s\n", recording.status().ToString().c_str());
      return 1;
    }
    CapturedStream stream;
    {
      CapturingVisitor capture(stream);
      checkpoint::QemuStreamReader reader(capture);
      Status parsed = reader.Feed(recording->stream);
      if (!parsed.ok()) {
        std::fprintf(stderr, "the recording does not parse: %s\n", parsed.ToString().c_str());
        return 1;
      }
    }
    std::printf("  recorded %.1f MB in %.1f s: precopy %zu pages, %zu complete checkpoints\n",
                static_cast<double>(recording->stream.size()) / 1e6, SecondsSince(recording_started),
                stream.precopy.pages.size(), stream.checkpoints.size());
    if (stream.checkpoints.empty()) {
      std::fprintf(stderr, "no complete checkpoint in the recording\n");
      return 1;
    }

    Result<CodecTimes> times = MeasureCodecs(recording->stream, stream, options.repetitions);
    if (!times.ok()) {
      std::fprintf(stderr, "codec run failed: %s\n", times.status().ToString().c_str());
      return 1;
    }

    // The same bytes for memcpy: the stream in 64 KiB pieces; each checkpoint's raw bytes.
    std::vector<size_t> stream_chunks;
    for (size_t offset = 0; offset < recording->stream.size(); offset += kFeedChunk) {
      stream_chunks.push_back(std::min(kFeedChunk, recording->stream.size() - offset));
    }
    std::vector<std::byte> raw_checkpoints;
    std::vector<size_t> checkpoint_chunks;
    for (const CapturedEpoch& epoch : stream.checkpoints) {
      size_t before = raw_checkpoints.size();
      for (const CapturedEpoch::Page& page : epoch.pages) {
        if (page.zero) {
          raw_checkpoints.insert(raw_checkpoints.end(), kPage, std::byte{0});
        } else {
          auto bytes = std::span(epoch.page_bytes).subspan(page.slot * kPage, kPage);
          raw_checkpoints.insert(raw_checkpoints.end(), bytes.begin(), bytes.end());
        }
      }
      const auto* device = reinterpret_cast<const std::byte*>(epoch.device_state.data());
      raw_checkpoints.insert(raw_checkpoints.end(), device, device + epoch.device_state.size());
      checkpoint_chunks.push_back(raw_checkpoints.size() - before);
    }
    const int memcpy_repetitions = std::max(options.repetitions, 15);
    double memcpy_stream = MemcpyBaselineSeconds(recording->stream, stream_chunks, memcpy_repetitions);
    // The parse split at the chunk that completed the precopy (chunks are 64 KiB, so the split
    // is chunk-aligned: the precopy part may hold up to 64 KiB of the first checkpoint).
    const size_t precopy_chunks = (times->precopy_chunk_bytes + kFeedChunk - 1) / kFeedChunk;
    std::vector<size_t> precopy_pieces(stream_chunks.begin(), stream_chunks.begin() + precopy_chunks);
    std::vector<size_t> checkpoint_pieces(stream_chunks.begin() + precopy_chunks, stream_chunks.end());
    double memcpy_precopy = MemcpyBaselineSeconds(recording->stream, precopy_pieces, memcpy_repetitions);
    double memcpy_after_precopy = MemcpyBaselineSeconds(
        std::span(recording->stream).subspan(times->precopy_chunk_bytes), checkpoint_pieces, memcpy_repetitions);
    double memcpy_checkpoints = MemcpyBaselineSeconds(raw_checkpoints, checkpoint_chunks, memcpy_repetitions);
    const double stream_bytes = static_cast<double>(recording->stream.size());
    const double checkpoint_bytes = static_cast<double>(raw_checkpoints.size());

    std::string label = std::to_string(rate);
    auto add_speed = [&](const char* step, double bytes, double memcpy_seconds, double seconds) {
      speed.AddRow({label, step, Format("%.2f MB", bytes / 1e6), Format("%.0f", MegabytesPerSecond(bytes, memcpy_seconds)),
                    Format("%.0f", MegabytesPerSecond(bytes, seconds)), Ratio(seconds, memcpy_seconds)});
    };
    add_speed("parse: whole stream", stream_bytes, memcpy_stream, times->parse_seconds);
    add_speed("parse: precopy part", static_cast<double>(times->precopy_chunk_bytes), memcpy_precopy,
              times->parse_precopy_seconds);
    add_speed("parse: checkpoints part", stream_bytes - static_cast<double>(times->precopy_chunk_bytes),
              memcpy_after_precopy, times->parse_seconds - times->parse_precopy_seconds);
    CaptureTimes capture = MeasureCapture(stream, options.repetitions);
    add_speed("capture: fresh buffer per epoch (agent before 02:00)", checkpoint_bytes, memcpy_checkpoints,
              capture.fresh_seconds);
    add_speed("capture: one reused, pre-touched buffer", checkpoint_bytes, memcpy_checkpoints, capture.reused_seconds);
    add_speed("encode (stage+encode+serialize+commit)", checkpoint_bytes, memcpy_checkpoints, times->encode_seconds);
    add_speed("decode (parse+apply)", checkpoint_bytes, memcpy_checkpoints, times->decode_seconds);

    PageEncoderOptions lz4_only;
    lz4_only.delta = false;
    Result<Sizes> plain = MeasureSizes(stream, lz4_only);
    Result<Sizes> delta = MeasureSizes(stream, PageEncoderOptions{});
    if (!plain.ok() || !delta.ok()) {
      std::fprintf(stderr, "size run failed: %s\n", (plain.ok() ? delta.status() : plain.status()).ToString().c_str());
      return 1;
    }
    const double n = static_cast<double>(stream.checkpoints.size());
    const double raw_pages = static_cast<double>(delta->raw_page_bytes);
    const double raw_total = raw_pages + static_cast<double>(delta->device_bytes);
    compression.AddRow({label, Format("%.0f", static_cast<double>(delta->pages) / n), Format("%.1f", raw_pages / n / 1e3),
                        Format("%.2f", static_cast<double>(plain->encoded_page_bytes) / n / 1e3),
                        Ratio(raw_pages, static_cast<double>(plain->encoded_page_bytes)),
                        Format("%.2f", static_cast<double>(delta->encoded_page_bytes) / n / 1e3),
                        Ratio(raw_pages, static_cast<double>(delta->encoded_page_bytes)),
                        Format("%.1f", static_cast<double>(delta->device_bytes) / n / 1e3),
                        Format("%.1f", static_cast<double>(delta->serialized_bytes) / n / 1e3),
                        Ratio(raw_total, static_cast<double>(delta->serialized_bytes))});
    std::string mix;
    for (const auto& [encoding, count] : delta->encodings) {
      mix += Format("%s%s %llu", mix.empty() ? "" : ", ", std::string(checkpoint::format::PageEncodingName(encoding)).c_str(),
                    static_cast<unsigned long long>(count));
    }
    notes += Format("* pages=%u: %zu checkpoints, stream %.2f MB (precopy %zu pages); default encoder chose: %s.\n", rate,
                    stream.checkpoints.size(), stream_bytes / 1e6, stream.precopy.pages.size(), mix.c_str());
  }

  std::string command = "bazel run //bench:codec_bench";
  std::string body = "Run " + UtcNow() + " on " + MachineDescription() + ", built " + BuildMode() + ". Command: `" + command + "`" +
                     Format(" (%d checkpoints per dirty rate, medians of %d repetitions).\n\n", options.checkpoints,
                            options.repetitions) +
                     "Throughput (MB = 10^6 bytes; capture/encode/decode count each checkpoint's raw bytes: 4096 per dirty "
                     "page + device state; \"time / memcpy\" = step time over a single-thread memcpy of the same "
                     "bytes in the same pieces):\n\n" +
                     speed.Markdown() +
                     "\nCompression over the recorded checkpoints (page entries with their FORMAT.md headers; "
                     "\"wire\" = whole serialized checkpoints incl. device state vs raw pages + device state):\n\n" +
                     compression.Markdown() + "\n" + notes;
  PublishResults("codec_bench", body, options.write_results);
  return 0;
}

}  // namespace
}  // namespace understudy::bench

int main(int argc, char** argv) { return understudy::bench::Run(understudy::bench::ParseFlags(argc, argv)); }
