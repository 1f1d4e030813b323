// Bit packing: the one bit convention of binarynet.
//
// A ±1 value is stored as one bit, bit = 1 for −1 (the float's sign bit) and 0 for +1;
// sign(0) = +1. Values are packed along the reduction axis (input features; channels innermost for
// NHWC convolutions) into 64-bit words, element k in bit (k % 64) of word (k / 64). Bits past the
// last real element of a row are zero in every operand, so for two packed rows of K real elements
//     dot(a, w) = K − 2·popcount(a ⊕ w).
//
// Everything in this header is compiled for the baseline ISA (the bindings, the op drivers and
// the reference kernels include it; no kernel translation unit does).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace binarynet {

static_assert(sizeof(std::uint64_t) == 8, "64-bit words");
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "binarynet writes packed outputs byte by byte and assumes a little-endian machine"
#endif

inline std::size_t words_for(std::size_t k) { return (k + 63) / 64; }

// Mask of the real bits in word `w` of a row of k elements (all ones for full words).
inline std::uint64_t word_mask(std::size_t k, std::size_t w) {
  if ((w + 1) * 64 <= k) return ~std::uint64_t{0};
  if (w * 64 >= k) return 0;
  return (std::uint64_t{1} << (k - w * 64)) - 1;
}

// Packs the signs of `rows` rows of `k` floats (row stride `k`) into rows of words_for(k) words.
template <typename T>
void pack_signs(const T* x, std::size_t rows, std::size_t k, std::uint64_t* out) {
  const std::size_t nw = words_for(k);
  for (std::size_t r = 0; r < rows; ++r) {
    const T* row = x + r * k;
    std::uint64_t* orow = out + r * nw;
    for (std::size_t w = 0; w < nw; ++w) {
      std::uint64_t word = 0;
      const std::size_t end = (w + 1) * 64 < k ? (w + 1) * 64 : k;
      for (std::size_t i = w * 64; i < end; ++i) {
        word |= static_cast<std::uint64_t>(row[i] < T(0)) << (i - w * 64);
      }
      orow[w] = word;
    }
  }
}

// Inverse of pack_signs for `rows` rows of `nw` words: writes k int8 values of ±1 per row.
inline void unpack_signs(const std::uint64_t* packed, std::size_t rows, std::size_t nw,
                         std::size_t k, std::int8_t* out) {
  for (std::size_t r = 0; r < rows; ++r) {
    const std::uint64_t* prow = packed + r * nw;
    std::int8_t* orow = out + r * k;
    for (std::size_t i = 0; i < k; ++i) {
      orow[i] = ((prow[i / 64] >> (i % 64)) & 1) ? std::int8_t{-1} : std::int8_t{1};
    }
  }
}

// Bit planes of one uint8 row (paper, Algorithm 5): for n = 0..7 (n = 0 the LSB), plane n has bit i
// set iff bit n of x[i] is set. Word w of plane n is written to planes[n·plane_stride +
// w·word_stride] for the words_for(k) words of each plane; padding bits are zero. Since
// x = Σ_n 2ⁿ·bitₙ(x), any linear reduction of x splits into eight binary ones.
//
// SSE2 path (baseline x86-64): shifting each 16-bit lane left by (7 − n) moves bit n of both of
// its bytes to bit 7 of that byte (the low byte's bits cannot reach bit 15, they end at most at
// bit 14), and movemask collects the top bit of the 16 bytes.
inline void bitplanes_row(const std::uint8_t* x, std::size_t k, std::uint64_t* planes,
                          std::size_t plane_stride, std::size_t word_stride) {
  const std::size_t nw = words_for(k);
  for (std::size_t w = 0; w < nw; ++w) {
    const std::size_t begin = w * 64;
    const std::size_t len = k - begin < 64 ? k - begin : 64;
    alignas(16) std::uint8_t buf[64];
    const std::uint8_t* src = x + begin;
    if (len < 64) {
      std::memset(buf, 0, sizeof buf);
      std::memcpy(buf, src, len);
      src = buf;
    }
#if defined(__SSE2__)
    __m128i v[4];
    for (int q = 0; q < 4; ++q)
      v[q] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 16 * q));
    for (int n = 0; n < 8; ++n) {
      const __m128i shift = _mm_cvtsi32_si128(7 - n);
      std::uint64_t word = 0;
      for (int q = 0; q < 4; ++q) {
        const unsigned bits = static_cast<unsigned>(_mm_movemask_epi8(_mm_sll_epi16(v[q], shift)));
        word |= static_cast<std::uint64_t>(bits) << (16 * q);
      }
      planes[n * plane_stride + w * word_stride] = word;
    }
#else
    for (int n = 0; n < 8; ++n) {
      std::uint64_t word = 0;
      for (int i = 0; i < 64; ++i) word |= static_cast<std::uint64_t>((src[i] >> n) & 1) << i;
      planes[n * plane_stride + w * word_stride] = word;
    }
#endif
  }
}

// True iff every bit at position >= k of each of the `rows` rows (nw words, row stride `ld`
// words) is zero. Returns the first offending row in *bad_row otherwise.
inline bool padding_is_zero(const std::uint64_t* p, std::size_t rows, std::size_t nw,
                            std::size_t ld, std::size_t k, std::size_t* bad_row) {
  const std::size_t first = k / 64;  // first word that may hold padding bits
  for (std::size_t r = 0; r < rows; ++r) {
    const std::uint64_t* row = p + r * ld;
    for (std::size_t w = first; w < nw; ++w) {
      if (row[w] & ~word_mask(k, w)) {
        *bad_row = r;
        return false;
      }
    }
  }
  return true;
}

}  // namespace binarynet
