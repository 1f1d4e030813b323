// Reference max pools: the definitions, one output at a time, sharing no code with pool.cc.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pool/pool.h"

namespace binarynet {
namespace reference {

// out[b, oh, ow, c] = max over the k × k window at (oh·s, ow·s) of x[b, ·, ·, c].
inline void maxpool2d_int32(const PoolGeom& g, const std::int32_t* x, std::int32_t* out) {
  for (std::size_t b = 0; b < g.B; ++b)
    for (std::size_t oh = 0; oh < g.Ho; ++oh)
      for (std::size_t ow = 0; ow < g.Wo; ++ow)
        for (std::size_t c = 0; c < g.C; ++c) {
          std::int32_t m = INT32_MIN;
          for (std::size_t ky = 0; ky < g.k; ++ky)
            for (std::size_t kx = 0; kx < g.k; ++kx) {
              const std::int32_t v = x[((b * g.H + oh * g.s + ky) * g.W + ow * g.s + kx) * g.C + c];
              if (v > m) m = v;
            }
          out[((b * g.Ho + oh) * g.Wo + ow) * g.C + c] = m;
        }
}

// Bit by bit: where and_mask has a 1 the output bit is 1 iff every window bit is 1, elsewhere
// iff some window bit is 1 (pool/pool.h: the max of thresholded values).
inline void maxpool2d_bits(const PoolGeom& g, const std::uint64_t* x, const std::uint64_t* and_mask,
                           std::uint64_t* out) {
  for (std::size_t b = 0; b < g.B; ++b)
    for (std::size_t oh = 0; oh < g.Ho; ++oh)
      for (std::size_t ow = 0; ow < g.Wo; ++ow)
        for (std::size_t cw = 0; cw < g.C; ++cw) {
          std::uint64_t word = 0;
          for (std::size_t bit = 0; bit < 64; ++bit) {
            std::size_t ones = 0;
            for (std::size_t ky = 0; ky < g.k; ++ky)
              for (std::size_t kx = 0; kx < g.k; ++kx) {
                const std::uint64_t v =
                    x[((b * g.H + oh * g.s + ky) * g.W + ow * g.s + kx) * g.C + cw];
                ones += (v >> bit) & 1;
              }
            const bool use_and = (and_mask[cw] >> bit) & 1;
            const bool set = use_and ? ones == g.k * g.k : ones > 0;
            if (set) word |= std::uint64_t{1} << bit;
          }
          out[((b * g.Ho + oh) * g.Wo + ow) * g.C + cw] = word;
        }
}

}  // namespace reference
}  // namespace binarynet
