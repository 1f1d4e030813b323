// AMX byte GEMM (AMX-TILE + AMX-INT8, AVX-512 F/BW/VL for the epilogue): compiled with those
// flags, only called after cpu_has_amx() (kernel_choice.cc).
//
// TDPBUSD multiplies a tile of uint8 (16 rows × 64 bytes: 64 k of 16 A rows) by a tile of int8 in
// the "VNNI" layout (row q: 4 consecutive k of 16 outputs) and adds the 16 × 16 sums of 64
// products into an int32 tile. The prepared weights (kernel.h) are already that layout: block b's
// lines g .. g + 15 are one weight tile, 1 KiB contiguous. The products are the exact integers of
// the other kernels (|p·w| ≤ 255, sums < 2³¹ for K < 2²³).
//
// The reduction runs in steps of 16 groups (64 k). A rows are copied into a buffer of the task
// with rows of 64·steps bytes, zero past K, so the last step multiplies zeros past K — by
// whatever lies in the next weight lines (the following block's, or the 1 KiB of slack the
// prepared weights keep past the last block: kU8TileSlack).
//
// Blocking: 2 × 2 result tiles (32 rows × 2 blocks, tiles 0–3), two A tiles (4, 5), two weight
// tiles (6, 7); a last half row tile (≤ 16 rows) uses one A tile. The epilogue writes each
// result row as 16 int32 or 16 threshold bits (masked to the real columns).
#include <immintrin.h>

#include <cstring>

#include "amx_tiles.h"
#include "u8gemm/kernel.h"

namespace binarynet {
namespace u8_amx_impl {
namespace {

using amx::configure_tiles;
using amx::kTileBytes;
thread_local amx::Scratch a_scratch;

// One result row: 16 sums of outputs col .. col + 15 (those < N) of output row m.
template <bool kBits>
__attribute__((always_inline)) inline void emit_row(const std::int32_t* sums, std::size_t m,
                                                    std::size_t col, __mmask16 valid, __m512i lo,
                                                    __m512i hi, const U8Epilogue& ep) {
  const __m512i s = _mm512_load_si512(sums);
  if constexpr (kBits) {
    // bit 1 (−1) iff s < lo or s > hi; columns past N stay 0 (padding bits).
    const std::uint16_t neg = static_cast<std::uint16_t>(
        (_mm512_cmplt_epi32_mask(s, lo) | _mm512_cmpgt_epi32_mask(s, hi)) & valid);
    std::memcpy(ep.bits + m * ep.ldb + col / 8, &neg, 2);
  } else {
    _mm512_mask_storeu_epi32(ep.out + m * ep.ldo + col, valid, s);
  }
}

// Rows r .. r + 16·kHalves − 1 of the padded A (row stride ld) × blocks b, b2 (b2 = b when the
// task has an odd block count: computed, not written).
template <bool kBits, int kHalves>
void tile_pair(const std::uint8_t* a, std::size_t ld, std::size_t steps, const std::int8_t* w0,
               const std::int8_t* w1, std::size_t m0, std::size_t r, std::size_t rows,
               std::size_t b, bool second, std::size_t N, const U8Epilogue& ep) {
  _tile_zero(0);
  _tile_zero(1);
  if constexpr (kHalves == 2) {
    _tile_zero(2);
    _tile_zero(3);
  }
  const std::uint8_t* a0 = a + r * ld;
  for (std::size_t s = 0; s < steps; ++s) {
    _tile_loadd(4, a0 + 64 * s, static_cast<long>(ld));
    _tile_loadd(6, w0 + kTileBytes * s, 64);
    _tile_dpbusd(0, 4, 6);
    _tile_loadd(7, w1 + kTileBytes * s, 64);
    _tile_dpbusd(1, 4, 7);
    if constexpr (kHalves == 2) {
      _tile_loadd(5, a0 + 16 * ld + 64 * s, static_cast<long>(ld));
      _tile_dpbusd(2, 5, 6);
      _tile_dpbusd(3, 5, 7);
    }
  }
  alignas(64) std::int32_t c[4][256];  // tile 2h + t: rows r + 16h .., block b + t; row-major
  _tile_stored(0, c[0], 64);
  _tile_stored(1, c[1], 64);
  if constexpr (kHalves == 2) {
    _tile_stored(2, c[2], 64);
    _tile_stored(3, c[3], 64);
  }
  for (int t = 0; t < (second ? 2 : 1); ++t) {
    const std::size_t col = (b + static_cast<std::size_t>(t)) * kU8Block;  // < N
    const __mmask16 valid = N - col >= 16 ? static_cast<__mmask16>(0xFFFF)
                                          : static_cast<__mmask16>((1u << (N - col)) - 1);
    __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
    if constexpr (kBits) {
      lo = _mm512_maskz_loadu_epi32(valid, ep.lo + col);
      hi = _mm512_maskz_loadu_epi32(valid, ep.hi + col);
    }
    for (int h = 0; h < kHalves; ++h) {
      const std::size_t first = r + 16 * static_cast<std::size_t>(h);
      if (first >= rows) break;
      const std::size_t n = rows - first < 16 ? rows - first : 16;
      const std::int32_t* tile = c[2 * h + t];
      for (std::size_t i = 0; i < n; ++i)
        emit_row<kBits>(tile + 16 * i, m0 + first + i, col, valid, lo, hi, ep);
    }
  }
}

template <bool kBits>
void amx_loop(const std::uint8_t* a, std::size_t lda, std::size_t m0, std::size_t rows,
              const std::int8_t* wp, std::size_t kg, std::size_t b0, std::size_t b1, std::size_t N,
              const U8Epilogue& ep) {
  const std::size_t steps = (kg + 15) / 16, ld = 64 * steps, row_bytes = 4 * kg;
  const std::size_t prow = (rows + 15) / 16 * 16;
  // The padded copy (rows of ld bytes, zero past the row's 4·kg bytes; zero rows up to prow).
  std::uint8_t* buf = a_scratch.get<std::uint8_t>(prow * ld);
  for (std::size_t r = 0; r < prow; ++r) {
    std::uint8_t* dst = buf + r * ld;
    if (r < rows) {
      std::memcpy(dst, a + r * lda, row_bytes);
      std::memset(dst + row_bytes, 0, ld - row_bytes);
    } else {
      std::memset(dst, 0, ld);
    }
  }
  const std::size_t bstride = kg * 4 * kU8Block;
  configure_tiles();
  // Blocks outer: the two weight blocks (2 × 64·kg bytes) stay in L1/L2 while the row tiles
  // stream past them.
  for (std::size_t b = b0; b < b1; b += 2) {
    const bool second = b + 1 < b1;
    const std::int8_t* w0 = wp + b * bstride;
    const std::int8_t* w1 = second ? w0 + bstride : w0;
    std::size_t r = 0;
    for (; r + 32 <= prow; r += 32)
      tile_pair<kBits, 2>(buf, ld, steps, w0, w1, m0, r, rows, b, second, N, ep);
    if (r < prow) tile_pair<kBits, 1>(buf, ld, steps, w0, w1, m0, r, rows, b, second, N, ep);
  }
  _tile_release();
}

void amx_entry(const std::uint8_t* a, std::size_t lda, std::size_t m0, std::size_t rows,
               const void* w, std::size_t kg, std::size_t b0, std::size_t b1, std::size_t N,
               const U8Epilogue& ep) {
  const auto* wp = static_cast<const std::int8_t*>(w);
  if (ep.bits)
    amx_loop<true>(a, lda, m0, rows, wp, kg, b0, b1, N, ep);
  else
    amx_loop<false>(a, lda, m0, rows, wp, kg, b0, b1, N, ep);
}

}  // namespace
}  // namespace u8_amx_impl

U8Fn u8_amx_kernel() { return &u8_amx_impl::amx_entry; }

}  // namespace binarynet
