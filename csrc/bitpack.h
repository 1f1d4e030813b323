// Bit packing: the one bit convention of binarynet.
//
// A ±1 value is stored as one bit, bit = 1 for −1 (the float's sign bit) and 0 for +1; sign(0) = +1.
// Values are packed along the reduction axis (input features; channels innermost for NHWC
// convolutions) into 64-bit words, element k in bit (k % 64) of word (k / 64). Bits past the last
// real element of a row are zero in every operand, so for two packed rows of K real elements
//     dot(a, w) = K − 2·popcount(a ⊕ w).
#pragma once

#include <cstddef>
#include <cstdint>

namespace binarynet {

inline std::size_t words_for(std::size_t k) { return (k + 63) / 64; }

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

}  // namespace binarynet
