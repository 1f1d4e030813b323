// Portable byte GEMM: plain C++ for the baseline ISA (the compiler vectorises the 16-lane loops
// with SSE2). Micro-kernel: 4 rows × 1 block of 16 outputs, int32 accumulators.
#include <cstring>

#define BN_U8_NS u8_portable_impl
#include "u8gemm/kernel_loops.h"

namespace binarynet {
namespace u8_portable_impl {
namespace {

struct Micro {
  static constexpr int kRows = 4, kCols = 1;

  static std::size_t block_bytes(std::size_t kg) { return int8_block_bytes(kg); }

  template <bool kBits, int R, int C>
  static void tile(const std::uint8_t* a, std::size_t lda, std::size_t m, const std::uint8_t* wb,
                   std::size_t kg, std::size_t n, std::size_t N, const U8Epilogue& ep) {
    const auto* wp = reinterpret_cast<const std::int8_t*>(wb);
    static_assert(C == 1, "one block per tile");
    std::int32_t acc[R][16] = {};
    for (std::size_t g = 0; g < kg; ++g) {
      const std::int8_t* w = wp + g * 64;
      for (int r = 0; r < R; ++r) {
        const std::uint8_t* ar = a + r * lda + 4 * g;
        for (int j = 0; j < 16; ++j) {
          std::int32_t s = 0;
          for (int i = 0; i < 4; ++i) s += static_cast<std::int32_t>(ar[i]) * w[4 * j + i];
          acc[r][j] += s;
        }
      }
    }
    const std::size_t real = N - n < 16 ? N - n : 16;  // n < N
    for (int r = 0; r < R; ++r) {
      if constexpr (kBits) {
        std::uint16_t neg = 0;
        for (std::size_t j = 0; j < real; ++j) {
          const std::int32_t s = acc[r][j];
          if (s < ep.lo[n + j] || s > ep.hi[n + j])
            neg = static_cast<std::uint16_t>(neg | (1u << j));
        }
        std::memcpy(ep.bits + (m + r) * ep.ldb + n / 8, &neg, 2);
      } else {
        std::memcpy(ep.out + (m + r) * ep.ldo + n, acc[r], real * sizeof(std::int32_t));
      }
    }
  }
};

}  // namespace
}  // namespace u8_portable_impl

U8Fn u8_portable_kernel() { return &u8_portable_impl::u8_entry<u8_portable_impl::Micro>; }

}  // namespace binarynet
