#include "checkpoint/page_codec.h"

#include <lz4.h>

#include <array>
#include <cstring>

namespace understudy::checkpoint {

using format::kPageBytes;
using format::PageEncoding;

bool IsZeroPage(std::span<const std::byte> page) {
  const std::byte* data = page.data();
  for (size_t i = 0; i < page.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, data + i, 8);
    if (word != 0) return false;
  }
  return true;
}

namespace {

// out = a XOR b, a word at a time (one page each; `out` may alias `a`).
void XorPage(std::span<const std::byte> a, std::span<const std::byte> b, std::span<std::byte> out) {
  for (size_t i = 0; i < kPageBytes; i += 8) {
    uint64_t x, y;
    std::memcpy(&x, a.data() + i, 8);
    std::memcpy(&y, b.data() + i, 8);
    x ^= y;
    std::memcpy(out.data() + i, &x, 8);
  }
}

// LZ4 of `input` into `scratch`; returns the compressed size, or 0 when it does not shrink.
size_t Compress(std::span<const std::byte> input, std::array<char, LZ4_COMPRESSBOUND(kPageBytes)>& scratch) {
  int size = LZ4_compress_default(reinterpret_cast<const char*>(input.data()), scratch.data(),
                                  static_cast<int>(input.size()), static_cast<int>(scratch.size()));
  return size > 0 && static_cast<size_t>(size) < kPageBytes ? static_cast<size_t>(size) : 0;
}

}  // namespace

EncodedPage EncodePage(uint64_t offset, std::span<const std::byte> page, std::span<const std::byte> previous,
                       const PageEncoderOptions& options) {
  EncodedPage encoded;
  encoded.offset = offset;
  if (IsZeroPage(page)) {
    encoded.encoding = PageEncoding::kZero;
    return encoded;
  }
  std::array<char, LZ4_COMPRESSBOUND(kPageBytes)> scratch;
  size_t best = kPageBytes;
  if (options.compress && options.delta && previous.size() == kPageBytes) {
    alignas(8) std::array<std::byte, kPageBytes> xored;
    XorPage(page, previous, xored);
    size_t size = Compress(xored, scratch);
    if (size != 0) {
      best = size;
      encoded.encoding = PageEncoding::kXorLz4;
      encoded.bytes.assign(scratch.data(), size);
      if (size <= options.good_enough_delta_bytes) return encoded;
    }
  }
  if (options.compress) {
    size_t size = Compress(page, scratch);
    if (size != 0 && size < best) {
      encoded.encoding = PageEncoding::kLz4;
      encoded.bytes.assign(scratch.data(), size);
      return encoded;
    }
  }
  if (best < kPageBytes) return encoded;
  encoded.encoding = PageEncoding::kRaw;
  encoded.bytes.assign(reinterpret_cast<const char*>(page.data()), kPageBytes);
  return encoded;
}

Status DecodePage(const EncodedPage& encoded, std::span<const std::byte> previous, std::span<std::byte> out) {
  if (out.size() != kPageBytes) return Status::InvalidArgument("page buffer must be 4096 bytes");
  auto* target = reinterpret_cast<char*>(out.data());
  switch (encoded.encoding) {
    case PageEncoding::kZero:
      std::memset(target, 0, kPageBytes);
      return Status::Ok();
    case PageEncoding::kRaw:
      if (encoded.bytes.size() != kPageBytes) return Status::Corruption("raw page of " + std::to_string(encoded.bytes.size()) + " bytes");
      std::memcpy(target, encoded.bytes.data(), kPageBytes);
      return Status::Ok();
    case PageEncoding::kLz4:
    case PageEncoding::kXorLz4: {
      int size = LZ4_decompress_safe(encoded.bytes.data(), target, static_cast<int>(encoded.bytes.size()),
                                     static_cast<int>(kPageBytes));
      if (size != static_cast<int>(kPageBytes)) {
        return Status::Corruption(std::string(format::PageEncodingName(encoded.encoding)) + " page at offset " +
                                  std::to_string(encoded.offset) + " does not decode to one page (" +
                                  (size < 0 ? "malformed LZ4 data" : std::to_string(size) + " bytes") + ")");
      }
      if (encoded.encoding == PageEncoding::kLz4) return Status::Ok();
      if (previous.size() != kPageBytes) {
        return Status::Corruption("xor_lz4 page at offset " + std::to_string(encoded.offset) + " without a base page");
      }
      XorPage(out, previous, out);
      return Status::Ok();
    }
  }
  return Status::Corruption("unknown page encoding");
}

}  // namespace understudy::checkpoint
