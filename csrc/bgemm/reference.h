// Reference kernels: the plain loops, written for obviousness, not speed. They are the oracle the
// optimised kernels are tested against (kernel="reference"), so they share no code with them:
// no packing, no tiling, no epilogue tables — each result is computed from its definition.
#pragma once

#include <cstddef>
#include <cstdint>

#include "bitpack.h"

namespace binarynet {
namespace reference {

// out[m][n] = k − 2·popcount(a[m] ⊕ w[n]) = Σ_i a_i·w_i over the k real positions.
inline void bgemm(const std::uint64_t* a, std::size_t M, const std::uint64_t* w, std::size_t N,
                  std::size_t nw, std::size_t k, std::int32_t* out) {
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t n = 0; n < N; ++n) {
      std::int64_t pc = 0;
      for (std::size_t i = 0; i < nw; ++i)
        pc += __builtin_popcountll(a[m * nw + i] ^ w[n * nw + i]);
      out[m * N + n] = static_cast<std::int32_t>(static_cast<std::int64_t>(k) - 2 * pc);
    }
}

// Packs the threshold of int32 values x [M, N]: bit n of row m is 0 (+1) iff lo[n] ≤ x ≤ hi[n].
inline void threshold_bits(const std::int32_t* x, std::size_t M, std::size_t N,
                           const std::int32_t* lo, const std::int32_t* hi, std::uint64_t* out) {
  const std::size_t nwo = words_for(N);
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t ow = 0; ow < nwo; ++ow) {
      std::uint64_t word = 0;
      for (std::size_t b = 0; b < 64 && ow * 64 + b < N; ++b) {
        const std::size_t n = ow * 64 + b;
        const std::int32_t v = x[m * N + n];
        const bool plus_one = lo[n] <= v && v <= hi[n];
        if (!plus_one) word |= std::uint64_t{1} << b;
      }
      out[m * nwo + ow] = word;
    }
}

// s[m][n] = Σ_i x[m,i]·w[n,i], w[n,i] = −1 if its bit is set, else +1 (no bit planes).
inline void bitplane_gemm(const std::uint8_t* x, std::size_t M, std::size_t K,
                          const std::uint64_t* w, std::size_t N, std::size_t nw,
                          std::int32_t* out) {
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t n = 0; n < N; ++n) {
      std::int64_t s = 0;
      for (std::size_t i = 0; i < K; ++i) {
        const bool neg = (w[n * nw + i / 64] >> (i % 64)) & 1;
        s += neg ? -static_cast<std::int64_t>(x[m * K + i]) : x[m * K + i];
      }
      out[m * N + n] = static_cast<std::int32_t>(s);
    }
}

}  // namespace reference
}  // namespace binarynet
