// The engine's ops in binarynet._kernels: packing, the GEMMs (bgemm, bitplane_gemm, u8gemm) and
// convolutions (bconv2d, u8conv2d), each with its fused threshold variant, the stand-alone
// threshold, the max pools, and the prepared weights (BinaryWeights, U8Weights). Each binding
// checks its own arguments (checks.h), then hands over to run_op / run_gemm_op.
//
// Every op takes the keyword arguments kernel ("auto" or a name of available_kernels()) and
// threads (0 = get_num_threads()). The GEMMs and convolutions have every variant; the max pools
// and threshold_bits have the reference loops (kernel="reference") and one optimised baseline
// loop (any other name); the packing helpers and im2col_u8 have one implementation, which every
// valid name selects (the name is still checked).
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "bconv/bconv.h"
#include "bconv/geometry.h"
#include "bconv/im2col.h"
#include "bgemm/bgemm.h"
#include "bindings/checks.h"
#include "bitpack.h"
#include "gemm/driver.h"
#include "pool/pool.h"
#include "threadpool.h"
#include "u8gemm/kernel.h"
#include "u8gemm/u8gemm.h"

namespace binarynet {
namespace bindings {
namespace {

using gemm::Output;

// Rows per task of the row-wise helpers (packing, threshold): about 64 Ki elements.
std::size_t rows_per_task(std::size_t row_len) {
  return std::max<std::size_t>(1, (std::size_t{1} << 16) / std::max<std::size_t>(row_len, 1));
}

// f(r0, r1) over [0, rows) in blocks of rows_per_task(row_len), on `threads` threads.
template <class F>
void for_row_blocks(std::size_t rows, std::size_t row_len, int threads, F&& f) {
  const std::size_t per = rows_per_task(row_len);
  parallel_for(gemm::ceil_div(rows, per), threads,
               [&](std::size_t t) { f(t * per, std::min(rows, (t + 1) * per)); });
}

// ---------------------------------------------------------------------------------------------
// Packing

Result<std::uint64_t> py_pack_signs(const Array& x, const std::string& kernel, int threads) {
  const char* fn = "pack_signs";
  if (x.dtype() != nb::dtype<float>() && x.dtype() != nb::dtype<std::int8_t>())
    fail(std::string(fn) + ": x must have dtype float32 or int8, got " + dtype_name(x.dtype()));
  const bool is_float = x.dtype() == nb::dtype<float>();
  const void* data = is_float ? static_cast<const void*>(check<float>(x, fn, "x", 2))
                              : static_cast<const void*>(check<std::int8_t>(x, fn, "x", 2));
  const std::size_t rows = x.shape(0), k = x.shape(1), nw = words_for(k);
  return run_op<std::uint64_t>(
      fn, kernel, threads, {rows, nw}, false, [&](Kernel, int nt, std::uint64_t* out) {
        for_row_blocks(rows, k, nt, [&](std::size_t r0, std::size_t r1) {
          if (is_float)
            pack_signs(static_cast<const float*>(data) + r0 * k, r1 - r0, k, out + r0 * nw);
          else
            pack_signs(static_cast<const std::int8_t*>(data) + r0 * k, r1 - r0, k, out + r0 * nw);
        });
      });
}

Result<std::int8_t> py_unpack_signs(const Array& packed, std::int64_t k, const std::string& kernel,
                                    int threads) {
  const char* fn = "unpack_signs";
  const auto* p = check<std::uint64_t>(packed, fn, "packed", 2);
  const std::size_t rows = packed.shape(0), nw = packed.shape(1);
  if (k < 0 || k > 64 * static_cast<std::int64_t>(nw))
    fail(std::string(fn) + ": k must be in 0.." + std::to_string(64 * nw) +
         " (64 * packed.shape[1]), got " + std::to_string(k));
  const auto kk = static_cast<std::size_t>(k);
  return run_op<std::int8_t>(fn, kernel, threads, {rows, kk}, false,
                             [&](Kernel, int nt, std::int8_t* out) {
                               for_row_blocks(rows, kk, nt, [&](std::size_t r0, std::size_t r1) {
                                 unpack_signs(p + r0 * nw, r1 - r0, nw, kk, out + r0 * kk);
                               });
                             });
}

Result<std::uint64_t> py_pack_bitplanes(const Array& x, const std::string& kernel, int threads) {
  const char* fn = "pack_bitplanes";
  const auto* p = check<std::uint8_t>(x, fn, "x", 2);
  const std::size_t rows = x.shape(0), k = x.shape(1), nw = words_for(k);
  return run_op<std::uint64_t>(
      fn, kernel, threads, {rows, 8, nw}, true, [&](Kernel, int nt, std::uint64_t* out) {
        parallel_for(rows, nt, [&](std::size_t r) {
          bitplanes_row(p + r * k, k, out + r * 8 * nw, /*plane_stride=*/nw, /*word_stride=*/1);
        });
      });
}

// ---------------------------------------------------------------------------------------------
// bgemm, on packed rows or on prepared BinaryWeights

// Hidden-layer weights with their panel layout for the batch-1 path, prepared once (see
// bgemm/kernel.h). The packed rows are referenced, not copied: the array is kept alive and must
// not be modified afterwards (the two layouts would disagree).
class BinaryWeights {
 public:
  BinaryWeights(const Array& w, const std::uint64_t* pw, std::size_t n, std::size_t nw,
                std::size_t k)
      : w_(w), pw_(pw), n_(n), nw_(nw), k_(k), words_(panel_words(n, nw)), panels_(words_) {
    pack_weight_panels(pw, n, nw, panels_.p);
  }

  const std::uint64_t* rows() const { return pw_; }
  const std::uint64_t* panels() const { return panels_.p; }
  std::size_t n() const { return n_; }
  std::size_t nw() const { return nw_; }
  std::size_t k() const { return k_; }
  std::size_t nbytes() const { return words_ * 8; }

 private:
  Array w_;  // keeps the packed rows alive
  const std::uint64_t* pw_;
  std::size_t n_, nw_, k_, words_;
  gemm::AlignedBuffer<std::uint64_t> panels_;
};

void py_binaryweights_init(BinaryWeights* self, const Array& w, std::int64_t k) {
  const char* fn = "BinaryWeights";
  const auto* pw = check<std::uint64_t>(w, fn, "w", 2);
  const std::size_t n = w.shape(0), nw = w.shape(1);
  const std::size_t kk = check_k(k, nw, fn, "w.shape[1]", INT32_MAX);
  check_packed(pw, n, nw, kk, fn, "w");
  new (self) BinaryWeights(w, pw, n, nw, kk);
}

struct GemmOperands {
  const std::uint64_t* a;
  const std::uint64_t* w;
  const std::uint64_t* w_panels = nullptr;
  std::size_t M, N, nw, k;
};

GemmOperands check_gemm(const Array& a, const Array& w, std::int64_t k, const char* fn) {
  GemmOperands g;
  g.a = check<std::uint64_t>(a, fn, "a", 2);
  g.w = check<std::uint64_t>(w, fn, "w", 2);
  g.M = a.shape(0);
  g.N = w.shape(0);
  g.nw = a.shape(1);
  if (w.shape(1) != g.nw)
    fail(std::string(fn) + ": w.shape[1]=" + std::to_string(w.shape(1)) +
         " must equal a.shape[1]=" + std::to_string(g.nw) + " (words per row)");
  g.k = check_k(k, g.nw, fn, "a.shape[1]", INT32_MAX);
  check_packed(g.a, g.M, g.nw, g.k, fn, "a");
  check_packed(g.w, g.N, g.nw, g.k, fn, "w");
  return g;
}

GemmOperands check_gemm(const Array& a, const BinaryWeights& w, std::int64_t k, const char* fn) {
  GemmOperands g;
  g.a = check<std::uint64_t>(a, fn, "a", 2);
  g.w = w.rows();
  g.w_panels = w.panels();
  g.M = a.shape(0);
  g.N = w.n();
  g.nw = w.nw();
  if (a.shape(1) != g.nw)
    fail(std::string(fn) + ": a.shape[1]=" + std::to_string(a.shape(1)) +
         " must equal the words per row of w (" + std::to_string(g.nw) + ")");
  if (k != static_cast<std::int64_t>(w.k()))
    fail(std::string(fn) + ": k=" + std::to_string(k) + " must equal w.k=" + std::to_string(w.k()));
  g.k = w.k();
  check_packed(g.a, g.M, g.nw, g.k, fn, "a");
  return g;
}

// bgemm (T = int32_t) and bgemm_threshold (T = uint64_t, lo/hi given).
template <typename T, typename Weights>
Result<T> py_bgemm(const char* fn, const Array& a, const Weights& w, std::int64_t k,
                   const Array* lo, const Array* hi, const std::string& kernel, int threads) {
  const GemmOperands g = check_gemm(a, w, k, fn);
  const Output thr = check_threshold(lo, hi, fn, g.N, "one per row of w");
  return run_gemm_op<T>(fn, kernel, threads, {g.M}, g.N, thr,
                        [&](Kernel kern, int nt, const Output& out) {
                          bgemm(kern, g.a, g.M, g.w, g.N, g.nw, g.k, nt, out, g.w_panels);
                        });
}

// ---------------------------------------------------------------------------------------------
// The first layer: bitplane_gemm, U8Weights, u8gemm, u8conv2d, im2col_u8

template <typename T>
Result<T> py_bitplane_gemm(const char* fn, const Array& x, const Array& w, std::int64_t k,
                           const Array* lo, const Array* hi, const std::string& kernel,
                           int threads) {
  const auto* px = check<std::uint8_t>(x, fn, "x", 2);
  const auto* pw = check<std::uint64_t>(w, fn, "w", 2);
  const std::size_t M = x.shape(0), K = x.shape(1), N = w.shape(0), nw = w.shape(1);
  // |s| ≤ 255·K must fit in int32.
  const std::size_t kk = check_k(k, nw, fn, "w.shape[1]", std::int64_t{1} << 23);
  if (kk != K)
    fail(std::string(fn) + ": k=" + std::to_string(k) +
         " must equal x.shape[1]=" + std::to_string(K));
  check_packed(pw, N, nw, kk, fn, "w");
  const Output thr = check_threshold(lo, hi, fn, N, "one per row of w");
  return run_gemm_op<T>(fn, kernel, threads, {M}, N, thr,
                        [&](Kernel kern, int nt, const Output& out) {
                          bitplane_gemm(kern, px, M, K, pw, N, nw, nt, out);
                        });
}

// First-layer weights prepared once for the byte GEMM (u8gemm/kernel.h): validated here, so the
// calls that take them check only the activations.
class U8Weights {
 public:
  U8Weights(const std::uint64_t* w, std::size_t n, std::size_t nw, std::size_t k)
      : n_(n), k_(k), nw_(nw), bits_(w, w + n * nw), bytes_(u8_prepared_bytes(n, k)),
        masks_(std::max<std::size_t>(u8_mask_words(n, k), 1)), wp_(bytes_ + kU8TileSlack) {
    u8_prepare(w, n, nw, k, wp_.p, masks_.data());
    std::memset(wp_.p + bytes_, 0, kU8TileSlack);
  }

  U8Prepared view() const {
    U8Prepared p;
    p.bits = bits_.data();
    p.wp = wp_.p;
    p.wm = masks_.data();
    p.N = n_;
    p.K = k_;
    p.nw = nw_;
    return p;
  }
  std::size_t n() const { return n_; }
  std::size_t k() const { return k_; }
  std::size_t nbytes() const {
    return bytes_ + (bits_.size() + masks_.size()) * sizeof(std::uint64_t);
  }

 private:
  std::size_t n_, k_, nw_;
  std::vector<std::uint64_t> bits_;
  std::size_t bytes_;
  std::vector<std::uint64_t> masks_;
  gemm::AlignedBuffer<std::int8_t> wp_;  // (kU8TileSlack zero bytes past the blocks)
};

void py_u8weights_init(U8Weights* self, const Array& w, std::int64_t k) {
  const char* fn = "U8Weights";
  const auto* pw = check<std::uint64_t>(w, fn, "w", 2);
  const std::size_t n = w.shape(0), nw = w.shape(1);
  const std::size_t kk = check_k(k, nw, fn, "w.shape[1]", std::int64_t{1} << 23);
  check_packed(pw, n, nw, kk, fn, "w");
  new (self) U8Weights(pw, n, nw, kk);
}

template <typename T>
Result<T> py_u8gemm(const char* fn, const Array& x, const U8Weights& w, const Array* lo,
                    const Array* hi, const std::string& kernel, int threads) {
  const auto* px = check<std::uint8_t>(x, fn, "x", 2);
  if (x.shape(1) != w.k())
    fail(std::string(fn) + ": x.shape[1]=" + std::to_string(x.shape(1)) +
         " must equal w.k=" + std::to_string(w.k()));
  const Output thr = check_threshold(lo, hi, fn, w.n(), "one per output (w.n)");
  const std::size_t M = x.shape(0);
  return run_gemm_op<T>(
      fn, kernel, threads, {M}, w.n(), thr,
      [&](Kernel kern, int nt, const Output& out) { u8gemm(kern, px, M, w.view(), nt, out); });
}

// The convolution geometry of uint8 NHWC x (kh, kw, stride, padding, pad_value), w.k checked
// against kh·kw·C when `w` is given (u8conv2d), not for im2col_u8.
ConvGeom check_u8_geometry(const Array& x, const U8Weights* w, std::int64_t kh, std::int64_t kw,
                           nb::handle stride, nb::handle padding, std::int64_t pad_value,
                           const char* fn) {
  ConvGeom g;
  g.B = x.shape(0);
  g.H = x.shape(1);
  g.W = x.shape(2);
  g.c = g.cw = x.shape(3);
  g.O = w ? w->n() : 0;
  g.kh = positive(kh, fn, "kh");
  g.kw = positive(kw, fn, "kw");
  std::tie(g.sh, g.sw) = parse_pair(stride, fn, "stride", 1);
  std::tie(g.ph, g.pw) = parse_pair(padding, fn, "padding", 0);
  if (pad_value < 0 || pad_value > 255)
    fail(std::string(fn) + ": pad_value must be in 0..255, got " + std::to_string(pad_value));
  if (w && (g.kh > (1u << 20) || g.kw > (1u << 20) ||
            checked_mul(checked_mul(g.kh, g.kw, fn), g.c, fn) != w->k()))
    fail(std::string(fn) + ": kh * kw * x.shape[3] = " + std::to_string(g.kh) + " * " +
         std::to_string(g.kw) + " * " + std::to_string(g.c) +
         " must equal w.k=" + std::to_string(w->k()));
  if (!g.compute_output())
    fail(std::string(fn) + ": kernel (" + std::to_string(g.kh) + ", " + std::to_string(g.kw) +
         ") is larger than the padded input (" + std::to_string(g.H + 2 * g.ph) + ", " +
         std::to_string(g.W + 2 * g.pw) + ")");
  return g;
}

template <typename T>
Result<T> py_u8conv2d(const char* fn, const Array& x, const U8Weights& w, std::int64_t kh,
                      std::int64_t kw, nb::handle stride, nb::handle padding,
                      std::int64_t pad_value, const Array* lo, const Array* hi,
                      const std::string& kernel, int threads) {
  const auto* px = check<std::uint8_t>(x, fn, "x", 4);
  const ConvGeom g = check_u8_geometry(x, &w, kh, kw, stride, padding, pad_value, fn);
  const Output thr = check_threshold(lo, hi, fn, g.O, "one per output channel (w.n)");
  return run_gemm_op<T>(fn, kernel, threads, {g.B, g.Ho, g.Wo}, g.O, thr,
                        [&](Kernel kern, int nt, const Output& out) {
                          u8conv2d(kern, g, px, static_cast<std::uint8_t>(pad_value), w.view(), nt,
                                   out);
                        });
}

Result<std::uint8_t> py_im2col_u8(const Array& x, std::int64_t kh, std::int64_t kw,
                                  nb::handle stride, nb::handle padding, std::int64_t pad_value,
                                  const std::string& kernel, int threads) {
  const char* fn = "im2col_u8";
  const auto* px = check<std::uint8_t>(x, fn, "x", 4);
  const ConvGeom g = check_u8_geometry(x, nullptr, kh, kw, stride, padding, pad_value, fn);
  const std::size_t row_len = checked_mul(checked_mul(g.kh, g.kw, fn), g.c, fn);
  return run_op<std::uint8_t>(fn, kernel, threads, {g.B, g.Ho, g.Wo, row_len}, false,
                              [&](Kernel, int nt, std::uint8_t* out) {
                                const std::size_t rows = g.rows(), per = 64;
                                parallel_for((rows + per - 1) / per, nt, [&](std::size_t t) {
                                  im2col_u8_rows(g, px, static_cast<std::uint8_t>(pad_value),
                                                 t * per, std::min(rows, (t + 1) * per), out);
                                });
                              });
}

// ---------------------------------------------------------------------------------------------
// bconv2d, threshold_bits

ConvGeom check_conv(const Array& x, const Array& w, std::int64_t c, nb::handle stride,
                    nb::handle padding, const char* fn, const std::uint64_t** px,
                    const std::uint64_t** pw) {
  *px = check<std::uint64_t>(x, fn, "x", 4);
  *pw = check<std::uint64_t>(w, fn, "w", 4);
  ConvGeom g;
  g.B = x.shape(0);
  g.H = x.shape(1);
  g.W = x.shape(2);
  g.cw = x.shape(3);
  g.O = w.shape(0);
  g.kh = w.shape(1);
  g.kw = w.shape(2);
  if (w.shape(3) != g.cw)
    fail(std::string(fn) + ": w.shape[3]=" + std::to_string(w.shape(3)) +
         " must equal x.shape[3]=" + std::to_string(g.cw) + " (channel words)");
  if (g.kh == 0 || g.kw == 0)
    fail(std::string(fn) + ": w must have a non-empty kernel, got shape " + shape_str(w));
  if (c < 1 || c > 64 * static_cast<std::int64_t>(g.cw))
    fail(std::string(fn) + ": c must be in 1.." + std::to_string(64 * g.cw) +
         " (64 * x.shape[3]), got " + std::to_string(c));
  g.c = static_cast<std::size_t>(c);
  if (g.kh * g.kw * g.c > static_cast<std::size_t>(INT32_MAX / 2))
    fail(std::string(fn) + ": kh * kw * c is too large for exact int32 results");
  std::tie(g.sh, g.sw) = parse_pair(stride, fn, "stride", 1);
  std::tie(g.ph, g.pw) = parse_pair(padding, fn, "padding", 0);
  if (!g.compute_output())
    fail(std::string(fn) + ": kernel (" + std::to_string(g.kh) + ", " + std::to_string(g.kw) +
         ") is larger than the padded input (" + std::to_string(g.H + 2 * g.ph) + ", " +
         std::to_string(g.W + 2 * g.pw) + ")");
  std::size_t bad = 0;
  if (!padding_is_zero(*px, g.B * g.H * g.W, g.cw, g.cw, g.c, &bad))
    fail(std::string(fn) + ": x pixel " + std::to_string(bad) +
         " (flat b, h, w index) has nonzero padding bits at channels >= c=" + std::to_string(g.c) +
         " (padding bits must be zero)");
  if (!padding_is_zero(*pw, g.O * g.kh * g.kw, g.cw, g.cw, g.c, &bad))
    fail(std::string(fn) + ": w tap " + std::to_string(bad) +
         " (flat o, ky, kx index) has nonzero padding bits at channels >= c=" +
         std::to_string(g.c) + " (padding bits must be zero)");
  return g;
}

template <typename T>
Result<T> py_bconv2d(const char* fn, const Array& x, const Array& w, std::int64_t c,
                     nb::handle stride, nb::handle padding, const Array* lo, const Array* hi,
                     const std::string& kernel, int threads) {
  const std::uint64_t *px, *pw;
  const ConvGeom g = check_conv(x, w, c, stride, padding, fn, &px, &pw);
  const Output thr = check_threshold(lo, hi, fn, g.O, "one per output channel");
  return run_gemm_op<T>(
      fn, kernel, threads, {g.B, g.Ho, g.Wo}, g.O, thr,
      [&](Kernel kern, int nt, const Output& out) { bconv2d(kern, g, px, pw, nt, out); });
}

Result<std::uint64_t> py_threshold_bits(const Array& y, const Array& lo, const Array& hi,
                                        const std::string& kernel, int threads) {
  const char* fn = "threshold_bits";
  const auto* py = check<std::int32_t>(y, fn, "y", 2);
  const std::size_t M = y.shape(0), N = y.shape(1);
  const Output thr = check_threshold(&lo, &hi, fn, N, "one per column of y");
  return run_op<std::uint64_t>(fn, kernel, threads, {M, words_for(N)}, false,
                               [&](Kernel kern, int nt, std::uint64_t* out) {
                                 threshold_bits(kern, py, M, N, thr.lo, thr.hi, nt, out);
                               });
}

// ---------------------------------------------------------------------------------------------
// Max pooling

PoolGeom check_pool(const Array& x, std::int64_t k, std::int64_t stride, const char* fn) {
  PoolGeom g;
  g.B = x.shape(0);
  g.H = x.shape(1);
  g.W = x.shape(2);
  g.C = x.shape(3);
  g.k = positive(k, fn, "k");
  g.s = positive(stride, fn, "stride");
  if (g.H < g.k || g.W < g.k)
    fail(std::string(fn) + ": k=" + std::to_string(k) + " is larger than the input (H, W) = (" +
         std::to_string(g.H) + ", " + std::to_string(g.W) + ")");
  g.Ho = (g.H - g.k) / g.s + 1;
  g.Wo = (g.W - g.k) / g.s + 1;
  return g;
}

Result<std::int32_t> py_maxpool2d_int32(const Array& x, std::int64_t k, std::int64_t stride,
                                        const std::string& kernel, int threads) {
  const char* fn = "maxpool2d_int32";
  const auto* px = check<std::int32_t>(x, fn, "x", 4);
  const PoolGeom g = check_pool(x, k, stride, fn);
  return run_op<std::int32_t>(
      fn, kernel, threads, {g.B, g.Ho, g.Wo, g.C}, false,
      [&](Kernel kern, int nt, std::int32_t* out) { maxpool2d_int32(kern, g, px, out, nt); });
}

Result<std::uint64_t> py_maxpool2d_bits(const Array& x, std::int64_t k, std::int64_t stride,
                                        const Array& and_mask, const std::string& kernel,
                                        int threads) {
  const char* fn = "maxpool2d_bits";
  const auto* px = check<std::uint64_t>(x, fn, "x", 4);
  const PoolGeom g = check_pool(x, k, stride, fn);
  const auto* pm = check<std::uint64_t>(and_mask, fn, "and_mask", 1);
  if (and_mask.shape(0) != g.C)
    fail(std::string(fn) + ": and_mask must have shape (" + std::to_string(g.C) +
         ",) (one word per channel word of x), got " + shape_str(and_mask));
  return run_op<std::uint64_t>(
      fn, kernel, threads, {g.B, g.Ho, g.Wo, g.C}, false,
      [&](Kernel kern, int nt, std::uint64_t* out) { maxpool2d_bits(kern, g, px, pm, out, nt); });
}

}  // namespace

// ---------------------------------------------------------------------------------------------

void register_engine_ops(nb::module_& m) {
  using I32 = std::int32_t;
  using U64 = std::uint64_t;
  using Str = const std::string&;
  // The keyword arguments every op takes, last.
  const auto kernel = nb::arg("kernel") = "auto";
  const auto threads = nb::arg("threads") = 0;

  m.def("pack_signs", &py_pack_signs, nb::arg("x"), nb::kw_only(), kernel, threads,
        "Pack the signs of a C-contiguous 2-D float32 or int8 array along its last axis into "
        "uint64 words (bit 1 = negative = -1; sign(0) = +1; padding bits zero).");
  m.def("unpack_signs", &py_unpack_signs, nb::arg("packed"), nb::arg("k"), nb::kw_only(), kernel,
        threads, "Inverse of pack_signs: uint64 [R, W] -> int8 [R, k] of +1/-1.");
  m.def("pack_bitplanes", &py_pack_bitplanes, nb::arg("x"), nb::kw_only(), kernel, threads,
        "uint8 [R, K] -> uint64 [R, 8, ceil(K/64)]: plane n (n = 0 the LSB) has bit i set iff bit "
        "n of x[r, i] is set.");

  m.def(
      "bgemm",
      [](const Array& a, const Array& w, std::int64_t k, Str kn, int nt) {
        return py_bgemm<I32>("bgemm", a, w, k, nullptr, nullptr, kn, nt);
      },
      nb::arg("a"), nb::arg("w"), nb::arg("k"), nb::kw_only(), kernel, threads,
      "Binary GEMM: int32 [M, N] with out[m, n] = k - 2 * popcount(a[m] ^ w[n]), the dot "
      "product of the +1/-1 rows (k real bits per row, padding bits zero).");
  m.def(
      "bgemm_threshold",
      [](const Array& a, const Array& w, std::int64_t k, const Array& lo, const Array& hi, Str kn,
         int nt) { return py_bgemm<U64>("bgemm_threshold", a, w, k, &lo, &hi, kn, nt); },
      nb::arg("a"), nb::arg("w"), nb::arg("k"), nb::arg("lo"), nb::arg("hi"), nb::kw_only(), kernel,
      threads,
      "Fused bgemm + batch norm + sign: packed uint64 [M, ceil(N/64)], bit n of row m is 0 (+1) "
      "iff lo[n] <= x <= hi[n] for x the bgemm value, else 1 (-1).");
  nb::class_<BinaryWeights>(
      m, "BinaryWeights",
      "Hidden-layer weights prepared once for bgemm / bgemm_threshold: the packed +1/-1 rows w "
      "uint64 [n, W] of k real bits (referenced, not copied: do not modify w afterwards) and "
      "their panel layout, which the batch-1 path (fewer than 4 rows) streams.")
      .def("__init__", &py_binaryweights_init, nb::arg("w"), nb::arg("k"))
      .def_prop_ro("n", &BinaryWeights::n, "Outputs (rows of w).")
      .def_prop_ro("k", &BinaryWeights::k, "Real bits per row.")
      .def_prop_ro("nbytes", &BinaryWeights::nbytes, "Bytes of the panel copy.")
      .def("__repr__", [](const BinaryWeights& w) {
        return "BinaryWeights(n=" + std::to_string(w.n()) + ", k=" + std::to_string(w.k()) + ")";
      });
  m.def(
      "bgemm",
      [](const Array& a, const BinaryWeights& w, std::int64_t k, Str kn, int nt) {
        return py_bgemm<I32>("bgemm", a, w, k, nullptr, nullptr, kn, nt);
      },
      nb::arg("a"), nb::arg("w"), nb::arg("k"), nb::kw_only(), kernel, threads,
      "bgemm with prepared BinaryWeights w (k must equal w.k).");
  m.def(
      "bgemm_threshold",
      [](const Array& a, const BinaryWeights& w, std::int64_t k, const Array& lo, const Array& hi,
         Str kn, int nt) { return py_bgemm<U64>("bgemm_threshold", a, w, k, &lo, &hi, kn, nt); },
      nb::arg("a"), nb::arg("w"), nb::arg("k"), nb::arg("lo"), nb::arg("hi"), nb::kw_only(), kernel,
      threads, "bgemm_threshold with prepared BinaryWeights w (k must equal w.k).");

  m.def(
      "bitplane_gemm",
      [](const Array& x, const Array& w, std::int64_t k, Str kn, int nt) {
        return py_bitplane_gemm<I32>("bitplane_gemm", x, w, k, nullptr, nullptr, kn, nt);
      },
      nb::arg("x"), nb::arg("w"), nb::arg("k"), nb::kw_only(), kernel, threads,
      "First-layer GEMM on uint8 inputs (Algorithm 5): int32 [M, N], out[m, n] = "
      "sum_i x[m, i] * w[n, i] with w as +1/-1, via the 8 bit planes of x.");
  m.def(
      "bitplane_gemm_threshold",
      [](const Array& x, const Array& w, std::int64_t k, const Array& lo, const Array& hi, Str kn,
         int nt) {
        return py_bitplane_gemm<U64>("bitplane_gemm_threshold", x, w, k, &lo, &hi, kn, nt);
      },
      nb::arg("x"), nb::arg("w"), nb::arg("k"), nb::arg("lo"), nb::arg("hi"), nb::kw_only(), kernel,
      threads,
      "Fused bitplane_gemm + batch norm + sign: packed uint64 [M, ceil(N/64)], bit n of row m is "
      "0 (+1) iff lo[n] <= s <= hi[n] for s the bitplane_gemm value, else 1 (-1).");
  nb::class_<U8Weights>(m, "U8Weights",
                        "First-layer weights prepared once for the byte GEMM (u8gemm, u8conv2d): "
                        "the packed +1/-1 rows w uint64 [n, W] of k real bits, as int8 blocks.")
      .def("__init__", &py_u8weights_init, nb::arg("w"), nb::arg("k"))
      .def_prop_ro("n", &U8Weights::n, "Outputs (rows of w).")
      .def_prop_ro("k", &U8Weights::k, "Inputs per output (real bits per row of w).")
      .def_prop_ro("nbytes", &U8Weights::nbytes, "Bytes held (prepared blocks + packed copy).")
      .def("__repr__", [](const U8Weights& w) {
        return "U8Weights(n=" + std::to_string(w.n()) + ", k=" + std::to_string(w.k()) + ")";
      });
  m.def(
      "u8gemm",
      [](const Array& x, const U8Weights& w, Str kn, int nt) {
        return py_u8gemm<I32>("u8gemm", x, w, nullptr, nullptr, kn, nt);
      },
      nb::arg("x"), nb::arg("w"), nb::kw_only(), kernel, threads,
      "First-layer GEMM on uint8 inputs as a byte GEMM: int32 [M, n], out[m, j] = "
      "sum_i x[m, i] * w[j, i] (x uint8 [M, k], w a U8Weights of +1/-1 rows); equals "
      "bitplane_gemm.");
  m.def(
      "u8gemm_threshold",
      [](const Array& x, const U8Weights& w, const Array& lo, const Array& hi, Str kn, int nt) {
        return py_u8gemm<U64>("u8gemm_threshold", x, w, &lo, &hi, kn, nt);
      },
      nb::arg("x"), nb::arg("w"), nb::arg("lo"), nb::arg("hi"), nb::kw_only(), kernel, threads,
      "Fused u8gemm + batch norm + sign: packed uint64 [M, ceil(n/64)], bit j of row m is 0 (+1) "
      "iff lo[j] <= s <= hi[j] for s the u8gemm value, else 1 (-1).");
  m.def(
      "u8conv2d",
      [](const Array& x, const U8Weights& w, std::int64_t kh, std::int64_t kw, nb::handle stride,
         nb::handle padding, std::int64_t pad_value, Str kn, int nt) {
        return py_u8conv2d<I32>("u8conv2d", x, w, kh, kw, stride, padding, pad_value, nullptr,
                                nullptr, kn, nt);
      },
      nb::arg("x"), nb::arg("w"), nb::arg("kh"), nb::arg("kw"), nb::arg("stride"),
      nb::arg("padding"), nb::arg("pad_value"), nb::kw_only(), kernel, threads,
      "First convolution on uint8 NHWC x [B, H, W, C]: int32 [B, Ho, Wo, n] = "
      "im2col_u8(x, kh, kw, stride, padding, pad_value) . w^T (w: U8Weights with k = kh*kw*C in "
      "(kh, kw, C) order), without materialising the im2col matrix.");
  m.def(
      "u8conv2d_threshold",
      [](const Array& x, const U8Weights& w, std::int64_t kh, std::int64_t kw, nb::handle stride,
         nb::handle padding, std::int64_t pad_value, const Array& lo, const Array& hi, Str kn,
         int nt) {
        return py_u8conv2d<U64>("u8conv2d_threshold", x, w, kh, kw, stride, padding, pad_value, &lo,
                                &hi, kn, nt);
      },
      nb::arg("x"), nb::arg("w"), nb::arg("kh"), nb::arg("kw"), nb::arg("stride"),
      nb::arg("padding"), nb::arg("pad_value"), nb::arg("lo"), nb::arg("hi"), nb::kw_only(), kernel,
      threads, "Fused u8conv2d + batch norm + sign -> packed uint64 [B, Ho, Wo, ceil(n/64)].");
  m.def("threshold_bits", &py_threshold_bits, nb::arg("y"), nb::arg("lo"), nb::arg("hi"),
        nb::kw_only(), kernel, threads,
        "Threshold and pack int32 y [M, N]: uint64 [M, ceil(N/64)], bit n of row m is 0 (+1) iff "
        "lo[n] <= y[m, n] <= hi[n], else 1 (-1); padding bits zero.");
  m.def("im2col_u8", &py_im2col_u8, nb::arg("x"), nb::arg("kh"), nb::arg("kw"), nb::arg("stride"),
        nb::arg("padding"), nb::arg("pad_value"), nb::kw_only(), kernel, threads,
        "uint8 NHWC [B, H, W, C] -> [B, Ho, Wo, kh*kw*C] patches in (kh, kw, C) order, padded "
        "positions filled with pad_value.");
  m.def(
      "bconv2d",
      [](const Array& x, const Array& w, std::int64_t c, nb::handle stride, nb::handle padding,
         Str kn, int nt) {
        return py_bconv2d<I32>("bconv2d", x, w, c, stride, padding, nullptr, nullptr, kn, nt);
      },
      nb::arg("x"), nb::arg("w"), nb::arg("c"), nb::arg("stride"), nb::arg("padding"),
      nb::kw_only(), kernel, threads,
      "Binary 2-D convolution, NHWC: x uint64 [B, H, W, Cw], w uint64 [O, kh, kw, Cw], c real "
      "channels -> int32 [B, Ho, Wo, O], equal to torch conv2d of the +1/-1 tensors with zero "
      "padding.");
  m.def(
      "bconv2d_threshold",
      [](const Array& x, const Array& w, std::int64_t c, nb::handle stride, nb::handle padding,
         const Array& lo, const Array& hi, Str kn, int nt) {
        return py_bconv2d<U64>("bconv2d_threshold", x, w, c, stride, padding, &lo, &hi, kn, nt);
      },
      nb::arg("x"), nb::arg("w"), nb::arg("c"), nb::arg("stride"), nb::arg("padding"),
      nb::arg("lo"), nb::arg("hi"), nb::kw_only(), kernel, threads,
      "Fused bconv2d + batch norm + sign -> packed uint64 [B, Ho, Wo, ceil(O/64)].");
  m.def("maxpool2d_int32", &py_maxpool2d_int32, nb::arg("x"), nb::arg("k"), nb::arg("stride"),
        nb::kw_only(), kernel, threads,
        "Max pooling of int32 NHWC [B, H, W, C] (no padding, floor mode).");
  m.def("maxpool2d_bits", &py_maxpool2d_bits, nb::arg("x"), nb::arg("k"), nb::arg("stride"),
        nb::arg("and_mask"), nb::kw_only(), kernel, threads,
        "Max pooling of thresholded packed bits [B, H, W, Cw]: per channel the AND of the bits "
        "(and_mask bit 1, increasing threshold) or the OR (bit 0, decreasing threshold).");
}

}  // namespace bindings
}  // namespace binarynet
