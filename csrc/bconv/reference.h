// Reference binary convolution: the direct definition, one output at a time, skipping the taps
// that fall in the zero padding (a padded position contributes 0, as in PyTorch).
#pragma once

#include <cstddef>
#include <cstdint>

#include "bconv/geometry.h"

namespace binarynet {
namespace reference {

// out[b, oh, ow, o] = Σ_{(ky,kx) inside the image} (c − 2·popcount(x[b, ih, iw] ⊕ w[o, ky, kx]))
inline void bconv2d(const ConvGeom& g, const std::uint64_t* x, const std::uint64_t* w,
                    std::int32_t* out) {
  for (std::size_t b = 0; b < g.B; ++b)
    for (std::size_t oh = 0; oh < g.Ho; ++oh)
      for (std::size_t ow = 0; ow < g.Wo; ++ow)
        for (std::size_t o = 0; o < g.O; ++o) {
          std::int64_t s = 0;
          for (std::size_t ky = 0; ky < g.kh; ++ky)
            for (std::size_t kx = 0; kx < g.kw; ++kx) {
              const std::int64_t ih =
                  static_cast<std::int64_t>(oh * g.sh + ky) - static_cast<std::int64_t>(g.ph);
              const std::int64_t iw =
                  static_cast<std::int64_t>(ow * g.sw + kx) - static_cast<std::int64_t>(g.pw);
              if (ih < 0 || iw < 0 || ih >= static_cast<std::int64_t>(g.H) ||
                  iw >= static_cast<std::int64_t>(g.W))
                continue;
              const std::uint64_t* xp = x + ((b * g.H + static_cast<std::size_t>(ih)) * g.W +
                                             static_cast<std::size_t>(iw)) *
                                                g.cw;
              const std::uint64_t* wp = w + ((o * g.kh + ky) * g.kw + kx) * g.cw;
              std::int64_t pc = 0;
              for (std::size_t i = 0; i < g.cw; ++i) pc += __builtin_popcountll(xp[i] ^ wp[i]);
              s += static_cast<std::int64_t>(g.c) - 2 * pc;
            }
          out[((b * g.Ho + oh) * g.Wo + ow) * g.O + o] = static_cast<std::int32_t>(s);
        }
}

}  // namespace reference
}  // namespace binarynet
