// Zero-padding correction for binary convolutions computed as im2col + XNOR-popcount GEMM.
//
// PyTorch pads with 0, a third value that packed bits cannot hold. im2col (im2col.h) fills a padded
// tap with zero words, which read as +1s. For an output pixel whose receptive field has the set P
// of padded taps, with T = kh·kw taps of c channels each and pc the popcount the GEMM returns over
// all T taps (P included, where x = 0 so popcount(x ⊕ w_t) = popcount(w_t)):
//     true = Σ_{t ∉ P} (c − 2·popcount(x_t ⊕ w_t))
//          = T·c − 2·pc + Σ_{t ∈ P} (2·popcount(w_t) − c)
//          = T·c − 2·pc − Σ_{t ∈ P} Σ_ch w[o, t, ch]          (w as ±1)
// i.e. the GEMM result plus a correction that only depends on the output channel o and on P —
// the false +1s dotted with the padded taps' weights are taken back out.
// P is the complement of the rectangle of valid taps [ky0, ky1) × [kx0, kx1), and those ranges
// depend on oh alone and on ow alone. So the corrections form a small table, one row of O values
// per distinct (row range, column range) pair — for padding p there are at most (2p + 1)² of them,
// row 0 being the interior pixels (correction 0) — and each output pixel stores the offset of
// its table row. The epilogue adds corr[offset(m) + o].
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "bconv/geometry.h"

namespace binarynet {

struct PaddingCorrection {
  std::vector<std::int32_t> table;   // [patterns, ld]; ld = O rounded up to 8 (zero-padded rows,
                                     // so the epilogue can read 8 columns at a time)
  std::vector<std::int32_t> offset;  // [B·Ho·Wo]: offset of each output pixel's table row
};

inline PaddingCorrection padding_correction(const ConvGeom& g, const std::uint64_t* w) {
  PaddingCorrection pcorr;
  // s[o][t] = 2·popcount(w_t) − c = −Σ_ch w[o, t, ch]: what a padded tap t wrongly adds.
  const std::size_t T = g.kh * g.kw;
  std::vector<std::int32_t> s(g.O * T);
  for (std::size_t o = 0; o < g.O; ++o)
    for (std::size_t t = 0; t < T; ++t) {
      std::int64_t pc = 0;
      for (std::size_t i = 0; i < g.cw; ++i) pc += __builtin_popcountll(w[(o * T + t) * g.cw + i]);
      s[o * T + t] = static_cast<std::int32_t>(2 * pc - static_cast<std::int64_t>(g.c));
    }
  // Distinct valid ranges along each axis; index 0 is the full range (the interior). Every empty
  // range is (0, 0), and ranges are found in a map: with a padding much wider than the kernel, a
  // linear search among all the (lo, lo) empties seen so far made this O(n_out²).
  auto ranges = [](const ConvGeom& geo, std::size_t n_out, std::size_t stride, std::size_t pad,
                   std::size_t k, std::size_t n_in, std::vector<std::size_t>* id,
                   std::vector<std::pair<std::size_t, std::size_t>>* uniq) {
    uniq->assign(1, {0, k});
    id->resize(n_out);
    std::map<std::pair<std::size_t, std::size_t>, std::size_t> index{{{0, k}, 0}};
    for (std::size_t o = 0; o < n_out; ++o) {
      std::size_t lo, hi;
      geo.valid_taps(o, stride, pad, k, n_in, &lo, &hi);
      if (lo == hi) lo = hi = 0;
      const auto found = index.emplace(std::make_pair(lo, hi), uniq->size());
      if (found.second) uniq->push_back({lo, hi});
      (*id)[o] = found.first->second;
    }
  };
  std::vector<std::size_t> rid, cid;
  std::vector<std::pair<std::size_t, std::size_t>> rr, cr;
  ranges(g, g.Ho, g.sh, g.ph, g.kh, g.H, &rid, &rr);
  ranges(g, g.Wo, g.sw, g.pw, g.kw, g.W, &cid, &cr);
  const std::size_t ld = (g.O + 7) / 8 * 8;
  pcorr.table.assign(rr.size() * cr.size() * ld, 0);
  for (std::size_t i = 0; i < rr.size(); ++i)
    for (std::size_t j = 0; j < cr.size(); ++j) {
      std::int32_t* row = pcorr.table.data() + (i * cr.size() + j) * ld;
      for (std::size_t ky = 0; ky < g.kh; ++ky)
        for (std::size_t kx = 0; kx < g.kw; ++kx) {
          const bool inside =
              ky >= rr[i].first && ky < rr[i].second && kx >= cr[j].first && kx < cr[j].second;
          if (inside) continue;
          for (std::size_t o = 0; o < g.O; ++o) row[o] += s[o * T + ky * g.kw + kx];
        }
    }
  pcorr.offset.resize(g.rows());
  for (std::size_t b = 0; b < g.B; ++b)
    for (std::size_t oh = 0; oh < g.Ho; ++oh)
      for (std::size_t ow = 0; ow < g.Wo; ++ow)
        pcorr.offset[(b * g.Ho + oh) * g.Wo + ow] =
            static_cast<std::int32_t>((rid[oh] * cr.size() + cid[ow]) * ld);
  return pcorr;
}

}  // namespace binarynet
