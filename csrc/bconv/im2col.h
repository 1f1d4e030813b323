// im2col for binary convolutions (on packed bits) and for the uint8 first layer.
//
// GEMM row m = output pixel (b, oh, ow), in NHWC order; its reduction words are the kh·kw taps of
// the receptive field in (ky, kx) order, each the cw channel words of one input pixel — the same
// order as a weight row [kh, kw, cw], so out[m, o] = dot(row m, weight row o). A tap that falls in
// the zero padding is filled with zero words, i.e. with +1s: the correction in padding.h removes
// what those false +1s add.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "bconv/geometry.h"
#include "bgemm/kernel.h"

namespace binarynet {

// Writes GEMM rows [r0, r0 + nrows) of the convolution into panels (kernel.h layout: word k of
// row 8p + l at dst[(p·nwords + k)·8 + l]); rows past the end of the GEMM are zero.
inline void conv_rows_to_panels(const ConvGeom& g, const std::uint64_t* x, std::size_t r0,
                                std::size_t nrows, std::uint64_t* dst) {
  const std::size_t nwords = g.row_words(), total = g.rows();
  const std::size_t npanels = (nrows + kPanelRows - 1) / kPanelRows;
  // (b, oh, ow) of row r0, then stepped row by row (no divisions per row).
  std::size_t ow = r0 % g.Wo, oh = (r0 / g.Wo) % g.Ho, b = r0 / (g.Wo * g.Ho);
  for (std::size_t q = 0; q < npanels; ++q) {
    std::uint64_t* panel = dst + q * nwords * kPanelRows;
    for (std::size_t l = 0; l < kPanelRows; ++l) {
      const std::size_t r = r0 + q * kPanelRows + l;
      if (q * kPanelRows + l >= nrows || r >= total) {
        for (std::size_t k = 0; k < nwords; ++k) panel[k * kPanelRows + l] = 0;
        continue;
      }
      std::uint64_t* out = panel + l;
      const std::int64_t ih0 = static_cast<std::int64_t>(oh * g.sh) - static_cast<std::int64_t>(g.ph);
      const std::int64_t iw0 = static_cast<std::int64_t>(ow * g.sw) - static_cast<std::int64_t>(g.pw);
      for (std::size_t ky = 0; ky < g.kh; ++ky) {
        const std::int64_t ih = ih0 + static_cast<std::int64_t>(ky);
        const bool row_in = ih >= 0 && ih < static_cast<std::int64_t>(g.H);
        const std::uint64_t* xrow = x + (b * g.H + static_cast<std::size_t>(row_in ? ih : 0)) * g.W * g.cw;
        for (std::size_t kx = 0; kx < g.kw; ++kx) {
          const std::int64_t iw = iw0 + static_cast<std::int64_t>(kx);
          if (row_in && iw >= 0 && iw < static_cast<std::int64_t>(g.W)) {
            const std::uint64_t* src = xrow + static_cast<std::size_t>(iw) * g.cw;
            for (std::size_t i = 0; i < g.cw; ++i, out += kPanelRows) *out = src[i];
          } else {
            for (std::size_t i = 0; i < g.cw; ++i, out += kPanelRows) *out = 0;
          }
        }
      }
      if (++ow == g.Wo) {
        ow = 0;
        if (++oh == g.Ho) {
          oh = 0;
          ++b;
        }
      }
    }
  }
}

// uint8 im2col for the first layer: out[b, oh, ow, (ky·kw + kx)·C + ch] = x[b, ih, iw, ch], or
// pad_value where (ih, iw) falls outside the image. Rows [r0, r1) of the [B·Ho·Wo, kh·kw·C] output.
inline void im2col_u8_rows(const ConvGeom& g, const std::uint8_t* x, std::uint8_t pad_value,
                           std::size_t r0, std::size_t r1, std::uint8_t* out) {
  const std::size_t C = g.c, row_len = g.kh * g.kw * C;
  for (std::size_t r = r0; r < r1; ++r) {
    const std::size_t ow = r % g.Wo, oh = (r / g.Wo) % g.Ho, b = r / (g.Wo * g.Ho);
    std::uint8_t* dst = out + r * row_len;
    for (std::size_t ky = 0; ky < g.kh; ++ky) {
      const std::int64_t ih = static_cast<std::int64_t>(oh * g.sh + ky) - static_cast<std::int64_t>(g.ph);
      for (std::size_t kx = 0; kx < g.kw; ++kx, dst += C) {
        const std::int64_t iw = static_cast<std::int64_t>(ow * g.sw + kx) - static_cast<std::int64_t>(g.pw);
        if (ih < 0 || iw < 0 || ih >= static_cast<std::int64_t>(g.H) ||
            iw >= static_cast<std::int64_t>(g.W)) {
          std::memset(dst, pad_value, C);
        } else {
          std::memcpy(dst, x + ((b * g.H + static_cast<std::size_t>(ih)) * g.W +
                                static_cast<std::size_t>(iw)) * C, C);
        }
      }
    }
  }
}

}  // namespace binarynet
