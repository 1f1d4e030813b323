// AVX-512 byte GEMM (F + BW + VNNI): compiled with those flags, only called after the run-time
// CPU checks of kernel_choice.cc / u8gemm.cc (a CPU with AVX-512 but no VNNI gets the AVX2
// kernel).
//
// Micro-kernel: 6 rows × 4 blocks (64 outputs), 24 zmm accumulators of 16 int32 lanes (lanes =
// outputs). Per group g of 4 k: 4 loads bring the 4 blocks' 64-byte lines (k = 4g .. 4g + 3 of 16
// outputs each), and for each row 4 bytes of A are broadcast to the 16 lanes and feed 4 VPDPBUSD
// (u8 × s8, four products summed into each int32 lane): 24 VPDPBUSD = 1536 products per 10 loads.
// The epilogue turns each accumulator into 16 int32 outputs or 16 threshold bits (two compares
// into a mask register, one 2-byte store), masked to the real columns.
#include <immintrin.h>

#include <cstring>

#define BN_U8_NS u8_avx512_impl
#include "u8gemm/kernel_loops.h"

namespace binarynet {
namespace u8_avx512_impl {
namespace {

// The epilogue of a tile whose sums are in `sums` (row r, block c: 16 outputs from column
// n + 16c): int32 stores or threshold bits, masked to the real columns.
template <bool kBits, int R, int C>
__attribute__((always_inline)) inline void store_tile(const std::int32_t (&sums)[R][C][16],
                                                      std::size_t m, std::size_t n, std::size_t N,
                                                      const U8Epilogue& ep) {
#pragma GCC unroll 4
  for (int c = 0; c < C; ++c) {
    const std::size_t col = n + 16 * c;  // < N: blocks past N are never handed out
    const __mmask16 valid = N - col >= 16 ? static_cast<__mmask16>(0xFFFF)
                                          : static_cast<__mmask16>((1u << (N - col)) - 1);
    if constexpr (kBits) {
      const __m512i lo = _mm512_maskz_loadu_epi32(valid, ep.lo + col);
      const __m512i hi = _mm512_maskz_loadu_epi32(valid, ep.hi + col);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        // bit 1 (−1) iff s < lo or s > hi; columns past N stay 0 (padding bits).
        const __m512i s = _mm512_load_si512(sums[r][c]);
        const std::uint16_t neg = static_cast<std::uint16_t>(
            (_mm512_cmplt_epi32_mask(s, lo) | _mm512_cmpgt_epi32_mask(s, hi)) & valid);
        std::memcpy(ep.bits + (m + r) * ep.ldb + col / 8, &neg, 2);
      }
    } else {
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r)
        _mm512_mask_storeu_epi32(ep.out + (m + r) * ep.ldo + col, valid,
                                 _mm512_load_si512(sums[r][c]));
    }
  }
}

// The 4 bytes of A row r at group g, broadcast to the 16 lanes.
__attribute__((always_inline)) inline __m512i broadcast4(const std::uint8_t* p) {
  std::int32_t four;
  std::memcpy(&four, p, 4);
  return _mm512_set1_epi32(four);
}

struct Micro {
  static constexpr int kRows = 6, kCols = 4;

  static std::size_t block_bytes(std::size_t kg) { return int8_block_bytes(kg); }

  template <bool kBits, int R, int C>
  static void tile(const std::uint8_t* a, std::size_t lda, std::size_t m, const std::uint8_t* wb,
                   std::size_t kg, std::size_t n, std::size_t N, const U8Epilogue& ep) {
    const auto* wp = reinterpret_cast<const std::int8_t*>(wb);
    const std::size_t bstride = kg * 64;
    __m512i acc[R][C];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_si512();
    for (std::size_t g = 0; g < kg; ++g) {
      __m512i w[C];
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) w[c] = _mm512_loadu_si512(wp + c * bstride + g * 64);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m512i av = broadcast4(a + r * lda + 4 * g);
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c) acc[r][c] = _mm512_dpbusd_epi32(acc[r][c], av, w[c]);
      }
    }
    // The epilogue reads the sums back from memory, and the empty asm pins the accumulators in
    // registers up to here: otherwise GCC moves them to the stack at the top of the loop above,
    // every iteration.
    alignas(64) std::int32_t sums[R][C][16];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) {
        asm("" : "+v"(acc[r][c]));
        _mm512_store_si512(sums[r][c], acc[r][c]);
      }
    store_tile<kBits, R, C>(sums, m, n, N, ep);
  }
};

// Batch 1 to 3 on the weight masks (kernel.h): per group, each block's 64-bit mask becomes 64
// bytes of 0 / −1 (VPMOVM2B) for VPDPBUSD, so t = −Σ_{w=−1} p and s = Σ p + 2t. 8× less weight
// traffic than the int8 lines, for one more instruction per VPDPBUSD.
struct MaskMicro {
  static constexpr int kRows = 3, kCols = 4;

  static std::size_t block_bytes(std::size_t kg) { return kg * 8; }

  template <bool kBits, int R, int C>
  static void tile(const std::uint8_t* a, std::size_t lda, std::size_t m, const std::uint8_t* wb,
                   std::size_t kg, std::size_t n, std::size_t N, const U8Epilogue& ep) {
    const auto* wm = reinterpret_cast<const std::uint64_t*>(wb);
    __m512i acc[R][C];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_si512();
    for (std::size_t g = 0; g < kg; ++g) {
      __m512i w[C];
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) w[c] = _mm512_movm_epi8(_cvtu64_mask64(wm[c * kg + g]));
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const __m512i av = broadcast4(a + r * lda + 4 * g);
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c) acc[r][c] = _mm512_dpbusd_epi32(acc[r][c], av, w[c]);
      }
    }
    // Σ p of each row (its 4·kg bytes; zero past K): VPSADBW against zero sums 8 bytes a lane.
    std::int32_t rowsum[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      __m512i total = _mm512_setzero_si512();
      const std::uint8_t* row = a + r * lda;
      for (std::size_t i = 0; i < 4 * kg; i += 64) {
        const std::size_t left = 4 * kg - i;
        const __mmask64 mask = left >= 64 ? ~__mmask64{0} : _cvtu64_mask64((1ull << left) - 1);
        total = _mm512_add_epi64(
            total, _mm512_sad_epu8(_mm512_maskz_loadu_epi8(mask, row + i), _mm512_setzero_si512()));
      }
      rowsum[r] = static_cast<std::int32_t>(_mm512_reduce_add_epi64(total));
    }
    alignas(64) std::int32_t sums[R][C][16];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) {
        asm("" : "+v"(acc[r][c]));
        const __m512i t = acc[r][c];
        _mm512_store_si512(sums[r][c],
                           _mm512_add_epi32(_mm512_set1_epi32(rowsum[r]), _mm512_add_epi32(t, t)));
      }
    store_tile<kBits, R, C>(sums, m, n, N, ep);
  }
};

}  // namespace
}  // namespace u8_avx512_impl

U8Fn u8_avx512_kernel() { return &u8_avx512_impl::u8_entry<u8_avx512_impl::Micro>; }
U8Fn u8_avx512_mask_kernel() { return &u8_avx512_impl::u8_entry<u8_avx512_impl::MaskMicro>; }

}  // namespace binarynet
