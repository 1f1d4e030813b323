// Shape of a binary 2-D convolution (NHWC activations, [O, kh, kw, C] weights, channels packed).
#pragma once

#include <cstddef>
#include <cstdint>

namespace binarynet {

struct ConvGeom {
  std::size_t B = 0, H = 0, W = 0;  // input batch and spatial size
  std::size_t cw = 0;               // words per pixel (channels packed, ≥ ceil(c / 64))
  std::size_t c = 0;                // real channels
  std::size_t O = 0, kh = 0, kw = 0;
  std::size_t sh = 1, sw = 1, ph = 0, pw = 0;
  std::size_t Ho = 0, Wo = 0;

  // PyTorch's output size, floor((H + 2p − k) / s) + 1; false if it would be < 1.
  bool compute_output() {
    if (H + 2 * ph < kh || W + 2 * pw < kw) return false;
    Ho = (H + 2 * ph - kh) / sh + 1;
    Wo = (W + 2 * pw - kw) / sw + 1;
    return true;
  }
  std::size_t rows() const { return B * Ho * Wo; }        // GEMM rows (output pixels)
  std::size_t row_words() const { return kh * kw * cw; }  // GEMM reduction words
  // Range [lo, hi) of kernel rows ky whose input row oh·sh − ph + ky lies inside [0, H).
  void valid_taps(std::size_t o, std::size_t s, std::size_t p, std::size_t k, std::size_t n,
                  std::size_t* lo, std::size_t* hi) const {
    const std::int64_t start = static_cast<std::int64_t>(o * s) - static_cast<std::int64_t>(p);
    std::int64_t l = -start, h = static_cast<std::int64_t>(n) - start;
    if (l < 0) l = 0;
    if (h > static_cast<std::int64_t>(k)) h = static_cast<std::int64_t>(k);
    if (h < l) h = l;
    *lo = static_cast<std::size_t>(l);
    *hi = static_cast<std::size_t>(h);
  }
};

}  // namespace binarynet
