// AVX2 byte GEMM: compiled with -mavx2, only called after the run-time CPU check of
// kernel_choice.cc (also the fallback of the AVX-512 set on a CPU without VNNI).
//
// AVX2 has no VPDPBUSD: VPMADDUBSW multiplies the unsigned A bytes by the signed weight bytes and
// adds adjacent pairs into int16 (|p·w| ≤ 255 and a pair ≤ 510: never saturates). Those pair sums
// are added in int16 lanes (VPADDW) for up to kGroupsPer16 = 64 groups of 4 k (|sum| ≤ 64 · 510 =
// 32640 ≤ 32767: exact, never wraps), and only then widened: VPMADDWD by ones adds adjacent int16
// pairs into the int32 accumulators, the sum of the 4 products of each int32 lane per group, as
// one VPDPBUSD would. Per group and row: 2 × (VPMADDUBSW, VPADDW) instead of 2 × (VPMADDUBSW,
// VPMADDWD, VPADDD); both multiplies issue on the same 2 vector pipes, so this halves the multiply
// pressure (1.45× on AMD Zen 4, MNIST's 256 × 784 → 4096: docs/results.md). Micro-kernel: 4 rows ×
// 1 block (16 outputs = 2 ymm halves), 8 int16 accumulators in registers (the int32 ones are
// touched once per chunk of 64 groups).
#include <immintrin.h>

#include <cstring>

#define BN_U8_NS u8_avx2_impl
#include "u8gemm/kernel_loops.h"

namespace binarynet {
namespace u8_avx2_impl {
namespace {

// Groups of 4 k whose VPMADDUBSW pair sums (|·| ≤ 510) an int16 lane holds exactly: 64 · 510 =
// 32640 ≤ 32767.
constexpr std::size_t kGroupsPer16 = 64;

// Group g (4 k) of R rows against one block: the VPMADDUBSW pair sums into the int16 accumulators.
template <int R>
__attribute__((always_inline)) inline void group(const std::uint8_t* a, std::size_t lda,
                                                 const std::int8_t* wp, std::size_t g,
                                                 __m256i acc16[][2]) {
  const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp + g * 64));
  const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp + g * 64 + 32));
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    std::int32_t four;
    std::memcpy(&four, a + r * lda + 4 * g, 4);
    const __m256i av = _mm256_set1_epi32(four);
    acc16[r][0] = _mm256_add_epi16(acc16[r][0], _mm256_maddubs_epi16(av, w0));
    acc16[r][1] = _mm256_add_epi16(acc16[r][1], _mm256_maddubs_epi16(av, w1));
    // (Keeps GCC from re-associating two groups' products before the add, which spills them.)
    asm("" : "+x"(acc16[r][0]), "+x"(acc16[r][1]));
  }
}

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
    for (std::size_t g0 = 0; g0 < kg; g0 += kGroupsPer16) {
      const std::size_t g1 = kg - g0 < kGroupsPer16 ? kg : g0 + kGroupsPer16;
      __m256i acc16[R][2];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc16[r][0] = acc16[r][1] = _mm256_setzero_si256();
      // (Two groups per iteration: with one, GCC copies the accumulators once per iteration.)
      std::size_t g = g0;
      for (; g + 2 <= g1; g += 2) {
        group<R>(a, lda, wp, g, acc16);
        group<R>(a, lda, wp, g + 1, acc16);
      }
      if (g < g1) group<R>(a, lda, wp, g, acc16);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h)
          acc[r][h] = _mm256_add_epi32(acc[r][h], _mm256_madd_epi16(acc16[r][h], ones));
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
