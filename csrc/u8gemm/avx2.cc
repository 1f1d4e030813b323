// AVX2 byte GEMM: compiled with -mavx2, only called after the run-time CPU check of
// kernel_choice.cc (also the fallback of the AVX-512 set on a CPU without VNNI).
//
// AVX2 has no VPDPBUSD: VPMADDUBSW multiplies the unsigned A bytes by the signed weight bytes and
// adds adjacent pairs into int16 (|p·w| ≤ 255 and a pair ≤ 510: never saturates), VPMADDWD by ones
// adds adjacent int16 pairs into int32 — the sum of the 4 products of each int32 lane, as one
// VPDPBUSD would. Micro-kernel: 4 rows × 1 block (16 outputs = 2 ymm halves), 8 accumulators.
#include <immintrin.h>

#include <cstring>

#define BN_U8_NS u8_avx2_impl
#include "u8gemm/kernel_loops.h"

namespace binarynet {
namespace u8_avx2_impl {
namespace {

struct Micro {
  static constexpr int kRows = 4, kCols = 1;

  static std::size_t block_bytes(std::size_t kg) { return int8_block_bytes(kg); }

  template <bool kBits, int R, int C>
  static void tile(const std::uint8_t* a, std::size_t lda, std::size_t m, const std::uint8_t* wb,
                   std::size_t kg, std::size_t n, std::size_t N, const U8Epilogue& ep) {
    const auto* wp = reinterpret_cast<const std::int8_t*>(wb);
    static_assert(C == 1, "one block per tile");
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[R][2];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (std::size_t g = 0; g < kg; ++g) {
      const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp + g * 64));
      const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp + g * 64 + 32));
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        std::int32_t four;
        std::memcpy(&four, a + r * lda + 4 * g, 4);
        const __m256i av = _mm256_set1_epi32(four);
        acc[r][0] =
            _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(av, w0), ones));
        acc[r][1] =
            _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(av, w1), ones));
      }
    }
    const std::size_t real = N - n < 16 ? N - n : 16;  // n < N
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i mask[2];
    for (int h = 0; h < 2; ++h)
      mask[h] = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(real) - 8 * h), lane);
    if constexpr (kBits) {
      __m256i lo[2], hi[2];
      for (int h = 0; h < 2; ++h) {
        lo[h] = _mm256_maskload_epi32(ep.lo + n + 8 * h, mask[h]);
        hi[h] = _mm256_maskload_epi32(ep.hi + n + 8 * h, mask[h]);
      }
      const unsigned valid = (1u << real) - 1;
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        unsigned neg = 0;
        for (int h = 0; h < 2; ++h) {
          const __m256i out = _mm256_or_si256(_mm256_cmpgt_epi32(lo[h], acc[r][h]),
                                              _mm256_cmpgt_epi32(acc[r][h], hi[h]));
          neg |= static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(out))) << (8 * h);
        }
        const std::uint16_t bits = static_cast<std::uint16_t>(neg & valid);
        std::memcpy(ep.bits + (m + r) * ep.ldb + n / 8, &bits, 2);
      }
    } else {
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r)
        for (int h = 0; h < 2; ++h)
          _mm256_maskstore_epi32(ep.out + (m + r) * ep.ldo + n + 8 * h, mask[h], acc[r][h]);
    }
  }
};

}  // namespace
}  // namespace u8_avx2_impl

U8Fn u8_avx2_kernel() { return &u8_avx2_impl::u8_entry<u8_avx2_impl::Micro>; }

}  // namespace binarynet
