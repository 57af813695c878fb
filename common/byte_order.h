// Loads and stores of fixed-width integers at unaligned byte addresses, in either byte order.
// QEMU's migration stream is big-endian; Understudy's checkpoint format is little-endian.
#ifndef UNDERSTUDY_COMMON_BYTE_ORDER_H_
#define UNDERSTUDY_COMMON_BYTE_ORDER_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace understudy {

// std::byteswap is C++23; GCC 12 lacks it.
template <typename T>
constexpr T ByteSwap(T value) {
  if constexpr (sizeof(T) == 1) {
    return value;
  } else if constexpr (sizeof(T) == 2) {
    return static_cast<T>(__builtin_bswap16(static_cast<uint16_t>(value)));
  } else if constexpr (sizeof(T) == 4) {
    return static_cast<T>(__builtin_bswap32(static_cast<uint32_t>(value)));
  } else {
    static_assert(sizeof(T) == 8);
    return static_cast<T>(__builtin_bswap64(static_cast<uint64_t>(value)));
  }
}

template <typename T>
inline T LoadBigEndian(const std::byte* at) {
  T value;
  std::memcpy(&value, at, sizeof(T));
  if constexpr (std::endian::native == std::endian::little && sizeof(T) > 1) value = ByteSwap(value);
  return value;
}

template <typename T>
inline T LoadLittleEndian(const std::byte* at) {
  T value;
  std::memcpy(&value, at, sizeof(T));
  if constexpr (std::endian::native == std::endian::big && sizeof(T) > 1) value = ByteSwap(value);
  return value;
}

template <typename T>
inline void StoreBigEndian(std::byte* at, T value) {
  if constexpr (std::endian::native == std::endian::little && sizeof(T) > 1) value = ByteSwap(value);
  std::memcpy(at, &value, sizeof(T));
}

template <typename T>
inline void StoreLittleEndian(std::byte* at, T value) {
  if constexpr (std::endian::native == std::endian::big && sizeof(T) > 1) value = ByteSwap(value);
  std::memcpy(at, &value, sizeof(T));
}

// Appends `value` to `out` in the given byte order.
template <typename T>
inline void AppendBigEndian(std::string& out, T value) {
  char bytes[sizeof(T)];
  StoreBigEndian(reinterpret_cast<std::byte*>(bytes), value);
  out.append(bytes, sizeof(T));
}

template <typename T>
inline void AppendLittleEndian(std::string& out, T value) {
  char bytes[sizeof(T)];
  StoreLittleEndian(reinterpret_cast<std::byte*>(bytes), value);
  out.append(bytes, sizeof(T));
}

}  // namespace understudy

#endif  // UNDERSTUDY_COMMON_BYTE_ORDER_H_
