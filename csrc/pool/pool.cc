// The optimised max pools (one baseline variant, parallel over output rows) and the choice
// between them and the reference loops (see pool/pool.h for the maths of pooling bits).
#include "pool/pool.h"

#include "pool/reference.h"
#include "threadpool.h"

namespace binarynet {
namespace {

void int32_rows(const PoolGeom& g, const std::int32_t* x, std::int32_t* out, int threads) {
  parallel_for(g.B * g.Ho, threads, [&](std::size_t row) {
    const std::size_t b = row / g.Ho, oh = row % g.Ho;
    for (std::size_t ow = 0; ow < g.Wo; ++ow) {
      std::int32_t* o = out + (row * g.Wo + ow) * g.C;
      const std::int32_t* first = x + ((b * g.H + oh * g.s) * g.W + ow * g.s) * g.C;
      for (std::size_t ch = 0; ch < g.C; ++ch) o[ch] = first[ch];
      for (std::size_t ky = 0; ky < g.k; ++ky)
        for (std::size_t kx = 0; kx < g.k; ++kx) {
          const std::int32_t* in = x + ((b * g.H + oh * g.s + ky) * g.W + ow * g.s + kx) * g.C;
          for (std::size_t ch = 0; ch < g.C; ++ch) o[ch] = in[ch] > o[ch] ? in[ch] : o[ch];
        }
    }
  });
}

void bits_rows(const PoolGeom& g, const std::uint64_t* x, const std::uint64_t* and_mask,
               std::uint64_t* out, int threads) {
  parallel_for(g.B * g.Ho, threads, [&](std::size_t row) {
    const std::size_t b = row / g.Ho, oh = row % g.Ho;
    for (std::size_t ow = 0; ow < g.Wo; ++ow) {
      std::uint64_t* o = out + (row * g.Wo + ow) * g.C;
      for (std::size_t cw = 0; cw < g.C; ++cw) {
        std::uint64_t all = ~std::uint64_t{0}, any = 0;
        for (std::size_t ky = 0; ky < g.k; ++ky)
          for (std::size_t kx = 0; kx < g.k; ++kx) {
            const std::uint64_t v = x[((b * g.H + oh * g.s + ky) * g.W + ow * g.s + kx) * g.C + cw];
            all &= v;
            any |= v;
          }
        o[cw] = (all & and_mask[cw]) | (any & ~and_mask[cw]);
      }
    }
  });
}

}  // namespace

void maxpool2d_int32(Kernel kern, const PoolGeom& g, const std::int32_t* x, std::int32_t* out,
                     int threads) {
  if (kern == Kernel::Reference) return reference::maxpool2d_int32(g, x, out);
  int32_rows(g, x, out, threads);
}

void maxpool2d_bits(Kernel kern, const PoolGeom& g, const std::uint64_t* x,
                    const std::uint64_t* and_mask, std::uint64_t* out, int threads) {
  if (kern == Kernel::Reference) return reference::maxpool2d_bits(g, x, and_mask, out);
  bits_rows(g, x, and_mask, out, threads);
}

}  // namespace binarynet
