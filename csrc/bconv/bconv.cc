// The binary convolution's driver: the epilogue of bgemm's popcount GEMM with the padding
// correction (base = kh·kw·C, corr = the table of bconv/padding.h), A rows = im2col rows of the
// packed image, packed into panels per chunk by bconv/im2col.h.
#include "bconv/bconv.h"

#include "bconv/im2col.h"
#include "bconv/padding.h"
#include "bconv/reference.h"
#include "bgemm/kernel.h"
#include "bgemm/popcount.h"

namespace binarynet {

void bconv2d(Kernel kern, const ConvGeom& g, const std::uint64_t* x, const std::uint64_t* w,
             int threads, const gemm::Output& out) {
  const std::size_t M = g.rows(), N = g.O;
  if (kern == Kernel::Reference)
    return gemm::reference_output(M, N, out,
                                  [&](std::int32_t* v) { reference::bconv2d(g, x, w, v); });
  const PaddingCorrection pc = padding_correction(g, w);
  Epilogue ep;
  ep.base = static_cast<std::int32_t>(g.kh * g.kw * g.c);
  ep.corr = pc.table.data();
  ep.corr_row = pc.offset.data();
  gemm::set_sink(ep, N, out);
  auto pack = [&](std::size_t r0, std::size_t n, std::uint64_t* dst) {
    conv_rows_to_panels(g, x, r0, n, dst);
  };
  popcount::run(popcount::kernel_set(kern), BitOp::Xor, M, g.row_words(), pack, nullptr, 0, w,
                g.row_words(), N, ep, threads);
}

}  // namespace binarynet
