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
      const std::int64_t ih0 =
          static_cast<std::int64_t>(oh * g.sh) - static_cast<std::int64_t>(g.ph);
      const std::int64_t iw0 =
          static_cast<std::int64_t>(ow * g.sw) - static_cast<std::int64_t>(g.pw);
      for (std::size_t ky = 0; ky < g.kh; ++ky) {
        const std::int64_t ih = ih0 + static_cast<std::int64_t>(ky);
        const bool row_in = ih >= 0 && ih < static_cast<std::int64_t>(g.H);
        const std::uint64_t* xrow =
            x + (b * g.H + static_cast<std::size_t>(row_in ? ih : 0)) * g.W * g.cw;
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

// Copies n bytes (n small, typically a few taps of 1–4 channels) with at most two overlapping
// fixed-size moves — memcpy with a run-time size would be a library call per tap.
inline void copy_small(std::uint8_t* dst, const std::uint8_t* src, std::size_t n) {
  if (n >= 16) {
    std::memcpy(dst, src, n);
  } else if (n >= 8) {
    std::uint64_t a, b;
    std::memcpy(&a, src, 8);
    std::memcpy(&b, src + n - 8, 8);
    std::memcpy(dst, &a, 8);
    std::memcpy(dst + n - 8, &b, 8);
  } else if (n >= 4) {
    std::uint32_t a, b;
    std::memcpy(&a, src, 4);
    std::memcpy(&b, src + n - 4, 4);
    std::memcpy(dst, &a, 4);
    std::memcpy(dst + n - 4, &b, 4);
  } else {
    for (std::size_t i = 0; i < n; ++i) dst[i] = src[i];
  }
}

// uint8 im2col for the first layer: GEMM row r = output pixel (b, oh, ow), its bytes
// x[b, ih, iw, ch] for the taps (ky, kx) in (ky, kx, ch) order, or pad_value where (ih, iw) falls
// outside the image. Writes rows [r0, r0 + n) to dst (row stride ld ≥ kh·kw·C; bytes past the
// row, up to ld, are zeroed). A kernel row whose taps all lie inside the image is one contiguous
// run of kw·C input bytes, copied at once.
inline void im2col_u8_rows_to(const ConvGeom& g, const std::uint8_t* x, std::uint8_t pad_value,
                              std::size_t r0, std::size_t n, std::uint8_t* dst, std::size_t ld) {
  const std::size_t C = g.c, seg = g.kw * C, row_len = g.kh * seg;
  std::size_t ow = r0 % g.Wo, oh = (r0 / g.Wo) % g.Ho, b = r0 / (g.Wo * g.Ho);
  const auto H = static_cast<std::int64_t>(g.H), W = static_cast<std::int64_t>(g.W);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint8_t* d = dst + i * ld;
    const std::int64_t ih0 = static_cast<std::int64_t>(oh * g.sh) - static_cast<std::int64_t>(g.ph);
    const std::int64_t iw0 = static_cast<std::int64_t>(ow * g.sw) - static_cast<std::int64_t>(g.pw);
    const bool cols_in = iw0 >= 0 && iw0 + static_cast<std::int64_t>(g.kw) <= W;
    for (std::size_t ky = 0; ky < g.kh; ++ky, d += seg) {
      const std::int64_t ih = ih0 + static_cast<std::int64_t>(ky);
      if (ih < 0 || ih >= H) {
        std::memset(d, pad_value, seg);
        continue;
      }
      const std::uint8_t* src = x + ((b * g.H + static_cast<std::size_t>(ih)) * g.W) * C;
      if (cols_in) {
        copy_small(d, src + static_cast<std::size_t>(iw0) * C, seg);
        continue;
      }
      for (std::size_t kx = 0; kx < g.kw; ++kx) {
        const std::int64_t iw = iw0 + static_cast<std::int64_t>(kx);
        if (iw < 0 || iw >= W)
          std::memset(d + kx * C, pad_value, C);
        else
          copy_small(d + kx * C, src + static_cast<std::size_t>(iw) * C, C);
      }
    }
    if (ld > row_len) std::memset(dst + i * ld + row_len, 0, ld - row_len);
    if (++ow == g.Wo) {
      ow = 0;
      if (++oh == g.Ho) {
        oh = 0;
        ++b;
      }
    }
  }
}

// Rows [r0, r1) of the [B·Ho·Wo, kh·kw·C] im2col matrix `out`.
inline void im2col_u8_rows(const ConvGeom& g, const std::uint8_t* x, std::uint8_t pad_value,
                           std::size_t r0, std::size_t r1, std::uint8_t* out) {
  const std::size_t row_len = g.kh * g.kw * g.c;
  im2col_u8_rows_to(g, x, pad_value, r0, r1 - r0, out + r0 * row_len, row_len);
}

}  // namespace binarynet
