// CRC32C (Castagnoli): the checksum on every section of Understudy's checkpoint format.
//
// Chosen over xxHash because it is a CRC: it detects every burst error up to 32 bits and all
// odd-bit errors, which is the damage a flipped or truncated transfer causes; x86 computes
// it in hardware (SSE4.2 `crc32`, several GB/s per core), and it needs no extra library.
// Uses the hardware instruction when the CPU has it, a table otherwise; both give the same
// values (RFC 3720 test vectors in crc32c_test.cc).
#ifndef UNDERSTUDY_COMMON_CRC32C_H_
#define UNDERSTUDY_COMMON_CRC32C_H_

#include <cstddef>
#include <cstdint>
#include <span>

namespace understudy::crc32c {

// CRC32C of `bytes` continuing from a previous `Extend` result (start with 0).
uint32_t Extend(uint32_t crc, std::span<const std::byte> bytes);

inline uint32_t Value(std::span<const std::byte> bytes) { return Extend(0, bytes); }

// True when Extend uses the SSE4.2 instruction on this CPU.
bool HardwareAccelerated();

}  // namespace understudy::crc32c

#endif  // UNDERSTUDY_COMMON_CRC32C_H_
