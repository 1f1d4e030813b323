// nanobind module binarynet._kernels: the compiled half of the engine.
//
// This file is the safety layer: every argument is checked here (dtype, rank, C-contiguity,
// shapes, sizes, zero padding bits) and a bad one raises ValueError naming the argument, its value
// and what was expected, before any kernel runs; the kernels themselves assume valid input. Arrays
// are taken untyped so that a wrong dtype is reported (and never silently converted), read-only
// arrays are accepted, and the GIL is released while the kernels run.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "bconv/geometry.h"
#include "bconv/im2col.h"
#include "bgemm/dispatch.h"
#include "bitpack.h"
#include "pool.h"
#include "shift_adamax.h"
#include "threadpool.h"

namespace nb = nanobind;
using namespace binarynet;

namespace {

using Array = nb::ndarray<nb::ro, nb::device::cpu>;
using Shape = std::vector<std::size_t>;

[[noreturn]] void fail(const std::string& msg) { throw nb::value_error(msg.c_str()); }

std::string dtype_name(nb::dlpack::dtype dt) {
  std::string base;
  switch (static_cast<nb::dlpack::dtype_code>(dt.code)) {
    case nb::dlpack::dtype_code::Int: base = "int"; break;
    case nb::dlpack::dtype_code::UInt: base = "uint"; break;
    case nb::dlpack::dtype_code::Float: base = "float"; break;
    case nb::dlpack::dtype_code::Bool: return "bool";
    case nb::dlpack::dtype_code::Complex: base = "complex"; break;
    default: base = "dtype" + std::to_string(dt.code) + "_"; break;
  }
  return base + std::to_string(dt.bits);
}

std::string shape_str(const Array& a) {
  std::string s = "(";
  for (std::size_t i = 0; i < a.ndim(); ++i) {
    s += std::to_string(a.shape(i));
    if (a.ndim() == 1 || i + 1 < a.ndim()) s += i + 1 < a.ndim() ? ", " : ",";
  }
  return s + ")";
}

// Checks dtype T, rank and C-contiguity of argument `name` of function `fn`; returns its data.
template <typename T>
const T* check(const Array& a, const char* fn, const char* name, std::size_t ndim) {
  const nb::dlpack::dtype want = nb::dtype<T>();
  if (a.dtype() != want)
    fail(std::string(fn) + ": " + name + " must have dtype " + dtype_name(want) + ", got " +
         dtype_name(a.dtype()));
  if (a.ndim() != ndim)
    fail(std::string(fn) + ": " + name + " must be " + std::to_string(ndim) + "-D, got shape " +
         shape_str(a));
  bool empty = false;
  for (std::size_t i = 0; i < ndim; ++i) empty = empty || a.shape(i) == 0;
  std::int64_t expect = 1;
  for (std::size_t i = ndim; !empty && i-- > 0;) {
    if (a.shape(i) != 1 && a.stride(i) != expect)
      fail(std::string(fn) + ": " + name +
           " must be C-contiguous (use numpy.ascontiguousarray), got strides that are not");
    expect *= static_cast<std::int64_t>(a.shape(i));
  }
  // A view at an odd byte offset (np.frombuffer(..., offset=1)): reading it as T is undefined
  // behaviour (UBSan reports it; aligned vector loads would fault).
  if (!empty && reinterpret_cast<std::uintptr_t>(a.data()) % alignof(T) != 0)
    fail(std::string(fn) + ": " + name + " must be aligned to " + std::to_string(alignof(T)) +
         " bytes (use numpy.require(x, requirements='CA')), got a misaligned view");
  return static_cast<const T*>(a.data());
}

std::size_t checked_mul(std::size_t a, std::size_t b, const char* fn) {
  if (a != 0 && b > std::numeric_limits<std::size_t>::max() / a)
    fail(std::string(fn) + ": output size overflows");
  return a * b;
}

int check_threads(int threads, const char* fn) {
  if (threads < 0 || threads > 1024)
    fail(std::string(fn) + ": threads must be 0 (the global setting) or in 1..1024, got " +
         std::to_string(threads));
  return resolve_threads(threads);
}

std::size_t positive(std::int64_t v, const char* fn, const char* name) {
  if (v < 1) fail(std::string(fn) + ": " + name + " must be >= 1, got " + std::to_string(v));
  return static_cast<std::size_t>(v);
}

// A Python int as int64; one that does not fit becomes INT64_MAX, out of every range checked
// below (nb::cast would throw std::bad_cast, a RuntimeError in Python).
std::int64_t int64_or_max(nb::handle h) {
  std::int64_t v;
  return nb::try_cast<std::int64_t>(h, v) ? v : std::numeric_limits<std::int64_t>::max();
}

// (int, int) or int → pair; `min` is the smallest value allowed.
std::pair<std::size_t, std::size_t> parse_pair(nb::handle h, const char* fn, const char* name,
                                               std::int64_t min) {
  std::int64_t v[2];
  if (nb::isinstance<nb::int_>(h)) {
    v[0] = v[1] = int64_or_max(h);
  } else if (nb::isinstance<nb::tuple>(h) || nb::isinstance<nb::list>(h)) {
    if (nb::len(h) != 2)
      fail(std::string(fn) + ": " + name + " must be an int or a pair of ints, got " +
           nb::cast<std::string>(nb::repr(h)));
    for (int i = 0; i < 2; ++i) {
      nb::object e = h[i];
      if (!nb::isinstance<nb::int_>(e))
        fail(std::string(fn) + ": " + name + " must be an int or a pair of ints, got " +
             nb::cast<std::string>(nb::repr(h)));
      v[i] = int64_or_max(e);
    }
  } else {
    fail(std::string(fn) + ": " + name + " must be an int or a pair of ints, got " +
         nb::cast<std::string>(nb::repr(h)));
  }
  for (int i = 0; i < 2; ++i)
    if (v[i] < min || v[i] > (1 << 20))
      fail(std::string(fn) + ": " + name + " values must be in " + std::to_string(min) +
           "..1048576, got " + nb::cast<std::string>(nb::repr(h)));
  return {static_cast<std::size_t>(v[0]), static_cast<std::size_t>(v[1])};
}

template <typename T>
nb::ndarray<nb::numpy, T> new_array(const Shape& shape, T** data, bool zero) {
  std::size_t n = 1;
  for (std::size_t s : shape) n = checked_mul(n, s, "allocation");
  T* p = new T[n > 0 ? n : 1];
  if (zero) std::memset(p, 0, (n > 0 ? n : 1) * sizeof(T));
  nb::capsule owner(p, [](void* q) noexcept { delete[] static_cast<T*>(q); });
  *data = p;
  return nb::ndarray<nb::numpy, T>(p, shape.size(), shape.data(), owner);
}

Kernel pick_kernel(const std::string& name, const char* fn) {
  try {
    return resolve_kernel(name);
  } catch (const std::invalid_argument& e) {
    fail(std::string(fn) + ": kernel: " + e.what());
  }
}

// Packed operand [rows, W] with k real bits per row: W ≥ ceil(k/64) and bits ≥ k zero.
void check_packed(const std::uint64_t* p, std::size_t rows, std::size_t nw, std::size_t k,
                  const char* fn, const char* name) {
  std::size_t bad = 0;
  if (!padding_is_zero(p, rows, nw, nw, k, &bad))
    fail(std::string(fn) + ": " + name + " row " + std::to_string(bad) +
         " has nonzero padding bits at positions >= k=" + std::to_string(k) +
         " (padding bits must be zero)");
}

std::size_t check_k(std::int64_t k, std::size_t nw, const char* fn, const char* words_of,
                    std::int64_t max_k) {
  if (k < 1 || k > 64 * static_cast<std::int64_t>(nw))
    fail(std::string(fn) + ": k must be in 1.." + std::to_string(64 * nw) + " (64 * " +
         words_of + "), got " + std::to_string(k));
  if (k > max_k)
    fail(std::string(fn) + ": k=" + std::to_string(k) + " is too large (at most " +
         std::to_string(max_k) + ", for exact int32 results)");
  return static_cast<std::size_t>(k);
}

// ---------------------------------------------------------------------------------------------

nb::ndarray<nb::numpy, std::uint64_t> py_pack_signs(const Array& x) {
  const char* fn = "pack_signs";
  if (x.dtype() != nb::dtype<float>() && x.dtype() != nb::dtype<std::int8_t>())
    fail(std::string(fn) + ": x must have dtype float32 or int8, got " + dtype_name(x.dtype()));
  const bool is_float = x.dtype() == nb::dtype<float>();
  const void* data = is_float ? static_cast<const void*>(check<float>(x, fn, "x", 2))
                              : static_cast<const void*>(check<std::int8_t>(x, fn, "x", 2));
  const std::size_t rows = x.shape(0), k = x.shape(1);
  std::uint64_t* out;
  auto res = new_array<std::uint64_t>({rows, words_for(k)}, &out, false);
  {
    nb::gil_scoped_release release;
    if (is_float)
      pack_signs(static_cast<const float*>(data), rows, k, out);
    else
      pack_signs(static_cast<const std::int8_t*>(data), rows, k, out);
  }
  return res;
}

nb::ndarray<nb::numpy, std::int8_t> py_unpack_signs(const Array& packed, std::int64_t k) {
  const char* fn = "unpack_signs";
  const auto* p = check<std::uint64_t>(packed, fn, "packed", 2);
  const std::size_t rows = packed.shape(0), nw = packed.shape(1);
  if (k < 0 || k > 64 * static_cast<std::int64_t>(nw))
    fail(std::string(fn) + ": k must be in 0.." + std::to_string(64 * nw) +
         " (64 * packed.shape[1]), got " + std::to_string(k));
  std::int8_t* out;
  auto res = new_array<std::int8_t>({rows, static_cast<std::size_t>(k)}, &out, false);
  {
    nb::gil_scoped_release release;
    unpack_signs(p, rows, nw, static_cast<std::size_t>(k), out);
  }
  return res;
}

nb::ndarray<nb::numpy, std::uint64_t> py_pack_bitplanes(const Array& x) {
  const auto* p = check<std::uint8_t>(x, "pack_bitplanes", "x", 2);
  const std::size_t rows = x.shape(0), k = x.shape(1), nw = words_for(k);
  std::uint64_t* out;
  auto res = new_array<std::uint64_t>({rows, 8, nw}, &out, true);
  {
    nb::gil_scoped_release release;
    parallel_for(rows, get_num_threads(), [&](std::size_t r) {
      bitplanes_row(p + r * k, k, out + r * 8 * nw, /*plane_stride=*/nw, /*word_stride=*/1);
    });
  }
  return res;
}

struct GemmOperands {
  const std::uint64_t* a;
  const std::uint64_t* w;
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

const std::int32_t* check_bounds(const Array& v, const char* fn, const char* name, std::size_t n,
                                 const char* what) {
  const auto* p = check<std::int32_t>(v, fn, name, 1);
  if (v.shape(0) != n)
    fail(std::string(fn) + ": " + name + " must have shape (" + std::to_string(n) + ",) (" + what +
         "), got " + shape_str(v));
  return p;
}

nb::ndarray<nb::numpy, std::int32_t> py_bgemm(const Array& a, const Array& w, std::int64_t k,
                                              const std::string& kernel, int threads) {
  const char* fn = "bgemm";
  const GemmOperands g = check_gemm(a, w, k, fn);
  const Kernel kern = pick_kernel(kernel, fn);
  const int nt = check_threads(threads, fn);
  std::int32_t* out;
  auto res = new_array<std::int32_t>({g.M, g.N}, &out, false);
  {
    nb::gil_scoped_release release;
    bgemm(kern, g.a, g.M, g.w, g.N, g.nw, g.k, nt, out);
  }
  return res;
}

nb::ndarray<nb::numpy, std::uint64_t> py_bgemm_threshold(const Array& a, const Array& w,
                                                         std::int64_t k, const Array& lo,
                                                         const Array& hi,
                                                         const std::string& kernel, int threads) {
  const char* fn = "bgemm_threshold";
  const GemmOperands g = check_gemm(a, w, k, fn);
  const auto* plo = check_bounds(lo, fn, "lo", g.N, "one per row of w");
  const auto* phi = check_bounds(hi, fn, "hi", g.N, "one per row of w");
  const Kernel kern = pick_kernel(kernel, fn);
  const int nt = check_threads(threads, fn);
  std::uint64_t* out;
  auto res = new_array<std::uint64_t>({g.M, words_for(g.N)}, &out, true);
  {
    nb::gil_scoped_release release;
    bgemm_threshold(kern, g.a, g.M, g.w, g.N, g.nw, g.k, plo, phi, nt, out);
  }
  return res;
}

// Hidden-layer weights with their panel layout for the batch-1 path, prepared once (see
// bgemm/kernel.h). The packed rows are referenced, not copied: the array is kept alive and must
// not be modified afterwards (the two layouts would disagree).
class BinaryWeights {
 public:
  BinaryWeights(const Array& w, const std::uint64_t* pw, std::size_t n, std::size_t nw,
                std::size_t k)
      : w_(w), pw_(pw), n_(n), nw_(nw), k_(k), words_(panel_words(n, nw)) {
    panels_ = static_cast<std::uint64_t*>(
        std::aligned_alloc(64, (std::max<std::size_t>(words_, 1) * 8 + 63) / 64 * 64));
    if (!panels_) throw std::bad_alloc();
    pack_weight_panels(pw, n, nw, panels_);
  }
  ~BinaryWeights() { std::free(panels_); }
  BinaryWeights(const BinaryWeights&) = delete;
  BinaryWeights& operator=(const BinaryWeights&) = delete;

  const std::uint64_t* rows() const { return pw_; }
  const std::uint64_t* panels() const { return panels_; }
  std::size_t n() const { return n_; }
  std::size_t nw() const { return nw_; }
  std::size_t k() const { return k_; }
  std::size_t nbytes() const { return words_ * 8; }

 private:
  Array w_;  // keeps the packed rows alive
  const std::uint64_t* pw_;
  std::size_t n_, nw_, k_, words_;
  std::uint64_t* panels_ = nullptr;
};

void py_binaryweights_init(BinaryWeights* self, const Array& w, std::int64_t k) {
  const char* fn = "BinaryWeights";
  const auto* pw = check<std::uint64_t>(w, fn, "w", 2);
  const std::size_t n = w.shape(0), nw = w.shape(1);
  const std::size_t kk = check_k(k, nw, fn, "w.shape[1]", INT32_MAX);
  check_packed(pw, n, nw, kk, fn, "w");
  new (self) BinaryWeights(w, pw, n, nw, kk);
}

GemmOperands check_gemm_prepared(const Array& a, const BinaryWeights& w, std::int64_t k,
                                 const char* fn) {
  GemmOperands g;
  g.a = check<std::uint64_t>(a, fn, "a", 2);
  g.w = w.rows();
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

nb::ndarray<nb::numpy, std::int32_t> py_bgemm_prepared(const Array& a, const BinaryWeights& w,
                                                       std::int64_t k, const std::string& kernel,
                                                       int threads) {
  const char* fn = "bgemm";
  const GemmOperands g = check_gemm_prepared(a, w, k, fn);
  const Kernel kern = pick_kernel(kernel, fn);
  const int nt = check_threads(threads, fn);
  std::int32_t* out;
  auto res = new_array<std::int32_t>({g.M, g.N}, &out, false);
  {
    nb::gil_scoped_release release;
    bgemm(kern, g.a, g.M, g.w, g.N, g.nw, g.k, nt, out, w.panels());
  }
  return res;
}

nb::ndarray<nb::numpy, std::uint64_t> py_bgemm_threshold_prepared(
    const Array& a, const BinaryWeights& w, std::int64_t k, const Array& lo, const Array& hi,
    const std::string& kernel, int threads) {
  const char* fn = "bgemm_threshold";
  const GemmOperands g = check_gemm_prepared(a, w, k, fn);
  const auto* plo = check_bounds(lo, fn, "lo", g.N, "one per row of w");
  const auto* phi = check_bounds(hi, fn, "hi", g.N, "one per row of w");
  const Kernel kern = pick_kernel(kernel, fn);
  const int nt = check_threads(threads, fn);
  std::uint64_t* out;
  auto res = new_array<std::uint64_t>({g.M, words_for(g.N)}, &out, true);
  {
    nb::gil_scoped_release release;
    bgemm_threshold(kern, g.a, g.M, g.w, g.N, g.nw, g.k, plo, phi, nt, out, w.panels());
  }
  return res;
}

struct BitplaneOperands {
  const std::uint8_t* x;
  const std::uint64_t* w;
  std::size_t M, K, N, nw;
};

BitplaneOperands check_bitplane(const Array& x, const Array& w, std::int64_t k, const char* fn) {
  BitplaneOperands o;
  o.x = check<std::uint8_t>(x, fn, "x", 2);
  o.w = check<std::uint64_t>(w, fn, "w", 2);
  o.M = x.shape(0);
  o.K = x.shape(1);
  o.N = w.shape(0);
  o.nw = w.shape(1);
  // |s| ≤ 255·K must fit in int32.
  const std::size_t kk = check_k(k, o.nw, fn, "w.shape[1]", std::int64_t{1} << 23);
  if (kk != o.K)
    fail(std::string(fn) + ": k=" + std::to_string(k) + " must equal x.shape[1]=" +
         std::to_string(o.K));
  check_packed(o.w, o.N, o.nw, kk, fn, "w");
  return o;
}

nb::ndarray<nb::numpy, std::int32_t> py_bitplane_gemm(const Array& x, const Array& w,
                                                      std::int64_t k, const std::string& kernel,
                                                      int threads) {
  const char* fn = "bitplane_gemm";
  const BitplaneOperands o = check_bitplane(x, w, k, fn);
  const Kernel kern = pick_kernel(kernel, fn);
  const int nt = check_threads(threads, fn);
  std::int32_t* out;
  auto res = new_array<std::int32_t>({o.M, o.N}, &out, false);
  {
    nb::gil_scoped_release release;
    bitplane_gemm(kern, o.x, o.M, o.K, o.w, o.N, o.nw, nullptr, nullptr, nt, out, nullptr);
  }
  return res;
}

nb::ndarray<nb::numpy, std::uint64_t> py_bitplane_gemm_threshold(
    const Array& x, const Array& w, std::int64_t k, const Array& lo, const Array& hi,
    const std::string& kernel, int threads) {
  const char* fn = "bitplane_gemm_threshold";
  const BitplaneOperands o = check_bitplane(x, w, k, fn);
  const auto* plo = check_bounds(lo, fn, "lo", o.N, "one per row of w");
  const auto* phi = check_bounds(hi, fn, "hi", o.N, "one per row of w");
  const Kernel kern = pick_kernel(kernel, fn);
  const int nt = check_threads(threads, fn);
  std::uint64_t* out;
  auto res = new_array<std::uint64_t>({o.M, words_for(o.N)}, &out, true);
  {
    nb::gil_scoped_release release;
    bitplane_gemm(kern, o.x, o.M, o.K, o.w, o.N, o.nw, plo, phi, nt, nullptr, out);
  }
  return res;
}

// First-layer weights prepared once for the byte GEMM (u8gemm/kernel.h): validated here, so the
// calls that take them check only the activations.
class U8Weights {
 public:
  U8Weights(const std::uint64_t* w, std::size_t n, std::size_t nw, std::size_t k)
      : n_(n), k_(k), nw_(nw), bits_(w, w + n * nw), bytes_(u8_prepared_bytes(n, k)),
        masks_(std::max<std::size_t>(u8_mask_words(n, k), 1)) {
    wp_ = static_cast<std::int8_t*>(std::aligned_alloc(64, (bytes_ + 63) / 64 * 64 + 64));
    if (!wp_) throw std::bad_alloc();
    u8_prepare(w, n, nw, k, wp_, masks_.data());
  }
  ~U8Weights() { std::free(wp_); }
  U8Weights(const U8Weights&) = delete;
  U8Weights& operator=(const U8Weights&) = delete;

  U8Prepared view() const {
    U8Prepared p;
    p.bits = bits_.data();
    p.wp = wp_;
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
  std::int8_t* wp_ = nullptr;
};

void py_u8weights_init(U8Weights* self, const Array& w, std::int64_t k) {
  const char* fn = "U8Weights";
  const auto* pw = check<std::uint64_t>(w, fn, "w", 2);
  const std::size_t n = w.shape(0), nw = w.shape(1);
  const std::size_t kk = check_k(k, nw, fn, "w.shape[1]", std::int64_t{1} << 23);
  check_packed(pw, n, nw, kk, fn, "w");
  new (self) U8Weights(pw, n, nw, kk);
}

const std::int32_t* maybe_bounds(const Array* v, const char* fn, const char* name, std::size_t n) {
  return v ? check_bounds(*v, fn, name, n, "one per output") : nullptr;
}

nb::ndarray<nb::numpy, std::int32_t> py_u8gemm(const Array& x, const U8Weights& w,
                                               const std::string& kernel, int threads) {
  const char* fn = "u8gemm";
  const auto* px = check<std::uint8_t>(x, fn, "x", 2);
  if (x.shape(1) != w.k())
    fail(std::string(fn) + ": x.shape[1]=" + std::to_string(x.shape(1)) + " must equal w.k=" +
         std::to_string(w.k()));
  const Kernel kern = pick_kernel(kernel, fn);
  const int nt = check_threads(threads, fn);
  const std::size_t M = x.shape(0);
  std::int32_t* out;
  auto res = new_array<std::int32_t>({M, w.n()}, &out, false);
  {
    nb::gil_scoped_release release;
    u8gemm(kern, px, M, w.view(), nullptr, nullptr, nt, out, nullptr);
  }
  return res;
}

nb::ndarray<nb::numpy, std::uint64_t> py_u8gemm_threshold(const Array& x, const U8Weights& w,
                                                          const Array& lo, const Array& hi,
                                                          const std::string& kernel,
                                                          int threads) {
  const char* fn = "u8gemm_threshold";
  const auto* px = check<std::uint8_t>(x, fn, "x", 2);
  if (x.shape(1) != w.k())
    fail(std::string(fn) + ": x.shape[1]=" + std::to_string(x.shape(1)) + " must equal w.k=" +
         std::to_string(w.k()));
  const auto* plo = check_bounds(lo, fn, "lo", w.n(), "one per output (w.n)");
  const auto* phi = check_bounds(hi, fn, "hi", w.n(), "one per output (w.n)");
  const Kernel kern = pick_kernel(kernel, fn);
  const int nt = check_threads(threads, fn);
  const std::size_t M = x.shape(0);
  std::uint64_t* out;
  auto res = new_array<std::uint64_t>({M, words_for(w.n())}, &out, true);
  {
    nb::gil_scoped_release release;
    u8gemm(kern, px, M, w.view(), plo, phi, nt, nullptr, out);
  }
  return res;
}

ConvGeom check_u8conv(const Array& x, const U8Weights& w, std::int64_t kh, std::int64_t kw,
                      nb::handle stride, nb::handle padding, std::int64_t pad_value,
                      const char* fn, const std::uint8_t** px) {
  *px = check<std::uint8_t>(x, fn, "x", 4);
  ConvGeom g;
  g.B = x.shape(0);
  g.H = x.shape(1);
  g.W = x.shape(2);
  g.c = g.cw = x.shape(3);
  g.O = w.n();
  g.kh = positive(kh, fn, "kh");
  g.kw = positive(kw, fn, "kw");
  std::tie(g.sh, g.sw) = parse_pair(stride, fn, "stride", 1);
  std::tie(g.ph, g.pw) = parse_pair(padding, fn, "padding", 0);
  if (pad_value < 0 || pad_value > 255)
    fail(std::string(fn) + ": pad_value must be in 0..255, got " + std::to_string(pad_value));
  if (g.kh > (1u << 20) || g.kw > (1u << 20) ||
      checked_mul(checked_mul(g.kh, g.kw, fn), g.c, fn) != w.k())
    fail(std::string(fn) + ": kh * kw * x.shape[3] = " + std::to_string(g.kh) + " * " +
         std::to_string(g.kw) + " * " + std::to_string(g.c) + " must equal w.k=" +
         std::to_string(w.k()));
  if (!g.compute_output())
    fail(std::string(fn) + ": kernel (" + std::to_string(g.kh) + ", " + std::to_string(g.kw) +
         ") is larger than the padded input (" + std::to_string(g.H + 2 * g.ph) + ", " +
         std::to_string(g.W + 2 * g.pw) + ")");
  return g;
}

nb::ndarray<nb::numpy, std::int32_t> py_u8conv2d(const Array& x, const U8Weights& w,
                                                 std::int64_t kh, std::int64_t kw,
                                                 nb::handle stride, nb::handle padding,
                                                 std::int64_t pad_value,
                                                 const std::string& kernel, int threads) {
  const char* fn = "u8conv2d";
  const std::uint8_t* px;
  const ConvGeom g = check_u8conv(x, w, kh, kw, stride, padding, pad_value, fn, &px);
  const Kernel kern = pick_kernel(kernel, fn);
  const int nt = check_threads(threads, fn);
  std::int32_t* out;
  auto res = new_array<std::int32_t>({g.B, g.Ho, g.Wo, g.O}, &out, false);
  {
    nb::gil_scoped_release release;
    u8conv2d(kern, g, px, static_cast<std::uint8_t>(pad_value), w.view(), nullptr, nullptr, nt,
             out, nullptr);
  }
  return res;
}

nb::ndarray<nb::numpy, std::uint64_t> py_u8conv2d_threshold(
    const Array& x, const U8Weights& w, std::int64_t kh, std::int64_t kw, nb::handle stride,
    nb::handle padding, std::int64_t pad_value, const Array& lo, const Array& hi,
    const std::string& kernel, int threads) {
  const char* fn = "u8conv2d_threshold";
  const std::uint8_t* px;
  const ConvGeom g = check_u8conv(x, w, kh, kw, stride, padding, pad_value, fn, &px);
  const auto* plo = check_bounds(lo, fn, "lo", g.O, "one per output channel (w.n)");
  const auto* phi = check_bounds(hi, fn, "hi", g.O, "one per output channel (w.n)");
  const Kernel kern = pick_kernel(kernel, fn);
  const int nt = check_threads(threads, fn);
  std::uint64_t* out;
  auto res = new_array<std::uint64_t>({g.B, g.Ho, g.Wo, words_for(g.O)}, &out, true);
  {
    nb::gil_scoped_release release;
    u8conv2d(kern, g, px, static_cast<std::uint8_t>(pad_value), w.view(), plo, phi, nt, nullptr,
             out);
  }
  return res;
}

nb::ndarray<nb::numpy, std::uint64_t> py_threshold_bits(const Array& y, const Array& lo,
                                                        const Array& hi) {
  const char* fn = "threshold_bits";
  const auto* py = check<std::int32_t>(y, fn, "y", 2);
  const std::size_t M = y.shape(0), N = y.shape(1);
  const auto* plo = check_bounds(lo, fn, "lo", N, "one per column of y");
  const auto* phi = check_bounds(hi, fn, "hi", N, "one per column of y");
  std::uint64_t* out;
  auto res = new_array<std::uint64_t>({M, words_for(N)}, &out, false);
  {
    nb::gil_scoped_release release;
    threshold_bits(py, M, N, plo, phi, get_num_threads(), out);
  }
  return res;
}

nb::ndarray<nb::numpy, std::uint8_t> py_im2col_u8(const Array& x, std::int64_t kh, std::int64_t kw,
                                                  nb::handle stride, nb::handle padding,
                                                  std::int64_t pad_value) {
  const char* fn = "im2col_u8";
  const auto* px = check<std::uint8_t>(x, fn, "x", 4);
  ConvGeom g;
  g.B = x.shape(0);
  g.H = x.shape(1);
  g.W = x.shape(2);
  g.c = g.cw = x.shape(3);
  g.kh = positive(kh, fn, "kh");
  g.kw = positive(kw, fn, "kw");
  std::tie(g.sh, g.sw) = parse_pair(stride, fn, "stride", 1);
  std::tie(g.ph, g.pw) = parse_pair(padding, fn, "padding", 0);
  if (pad_value < 0 || pad_value > 255)
    fail(std::string(fn) + ": pad_value must be in 0..255, got " + std::to_string(pad_value));
  if (!g.compute_output())
    fail(std::string(fn) + ": kernel (" + std::to_string(g.kh) + ", " + std::to_string(g.kw) +
         ") is larger than the padded input (" + std::to_string(g.H + 2 * g.ph) + ", " +
         std::to_string(g.W + 2 * g.pw) + ")");
  const std::size_t row_len = checked_mul(checked_mul(g.kh, g.kw, fn), g.c, fn);
  std::uint8_t* out;
  auto res = new_array<std::uint8_t>({g.B, g.Ho, g.Wo, row_len}, &out, false);
  {
    nb::gil_scoped_release release;
    const std::size_t rows = g.rows(), per = 64;
    parallel_for((rows + per - 1) / per, get_num_threads(), [&](std::size_t t) {
      im2col_u8_rows(g, px, static_cast<std::uint8_t>(pad_value), t * per,
                     std::min(rows, (t + 1) * per), out);
    });
  }
  return res;
}

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
         " (flat o, ky, kx index) has nonzero padding bits at channels >= c=" + std::to_string(g.c) +
         " (padding bits must be zero)");
  return g;
}

nb::ndarray<nb::numpy, std::int32_t> py_bconv2d(const Array& x, const Array& w, std::int64_t c,
                                                nb::handle stride, nb::handle padding,
                                                const std::string& kernel, int threads) {
  const char* fn = "bconv2d";
  const std::uint64_t *px, *pw;
  const ConvGeom g = check_conv(x, w, c, stride, padding, fn, &px, &pw);
  const Kernel kern = pick_kernel(kernel, fn);
  const int nt = check_threads(threads, fn);
  std::int32_t* out;
  auto res = new_array<std::int32_t>({g.B, g.Ho, g.Wo, g.O}, &out, false);
  {
    nb::gil_scoped_release release;
    bconv2d(kern, g, px, pw, nullptr, nullptr, nt, out, nullptr);
  }
  return res;
}

nb::ndarray<nb::numpy, std::uint64_t> py_bconv2d_threshold(const Array& x, const Array& w,
                                                           std::int64_t c, nb::handle stride,
                                                           nb::handle padding, const Array& lo,
                                                           const Array& hi,
                                                           const std::string& kernel,
                                                           int threads) {
  const char* fn = "bconv2d_threshold";
  const std::uint64_t *px, *pw;
  const ConvGeom g = check_conv(x, w, c, stride, padding, fn, &px, &pw);
  const auto* plo = check_bounds(lo, fn, "lo", g.O, "one per output channel");
  const auto* phi = check_bounds(hi, fn, "hi", g.O, "one per output channel");
  const Kernel kern = pick_kernel(kernel, fn);
  const int nt = check_threads(threads, fn);
  std::uint64_t* out;
  auto res = new_array<std::uint64_t>({g.B, g.Ho, g.Wo, words_for(g.O)}, &out, true);
  {
    nb::gil_scoped_release release;
    bconv2d(kern, g, px, pw, plo, phi, nt, nullptr, out);
  }
  return res;
}

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

nb::ndarray<nb::numpy, std::int32_t> py_maxpool2d_int32(const Array& x, std::int64_t k,
                                                        std::int64_t stride) {
  const char* fn = "maxpool2d_int32";
  const auto* px = check<std::int32_t>(x, fn, "x", 4);
  const PoolGeom g = check_pool(x, k, stride, fn);
  std::int32_t* out;
  auto res = new_array<std::int32_t>({g.B, g.Ho, g.Wo, g.C}, &out, false);
  {
    nb::gil_scoped_release release;
    maxpool2d_int32(g, px, out, get_num_threads());
  }
  return res;
}

nb::ndarray<nb::numpy, std::uint64_t> py_maxpool2d_bits(const Array& x, std::int64_t k,
                                                        std::int64_t stride,
                                                        const Array& and_mask) {
  const char* fn = "maxpool2d_bits";
  const auto* px = check<std::uint64_t>(x, fn, "x", 4);
  const PoolGeom g = check_pool(x, k, stride, fn);
  const auto* pm = check<std::uint64_t>(and_mask, fn, "and_mask", 1);
  if (and_mask.shape(0) != g.C)
    fail(std::string(fn) + ": and_mask must have shape (" + std::to_string(g.C) +
         ",) (one word per channel word of x), got " + shape_str(and_mask));
  std::uint64_t* out;
  auto res = new_array<std::uint64_t>({g.B, g.Ho, g.Wo, g.C}, &out, false);
  {
    nb::gil_scoped_release release;
    maxpool2d_bits(g, px, pm, out, get_num_threads());
  }
  return res;
}

using FloatOut = nb::ndarray<float, nb::device::cpu>;

// Checks that a writable argument of shift_adamax_step is a float32 C-contiguous 1-D array of n
// aligned elements; returns its data.
float* check_state(const FloatOut& a, const char* name, std::size_t n) {
  const char* fn = "shift_adamax_step";
  if (a.ndim() != 1)
    fail(std::string(fn) + ": " + name + " must be 1-D, got " + std::to_string(a.ndim()) +
         " dimensions");
  if (a.shape(0) != n)
    fail(std::string(fn) + ": " + name + " must have " + std::to_string(n) +
         " elements (as p), got " + std::to_string(a.shape(0)));
  if (n > 1 && a.stride(0) != 1)
    fail(std::string(fn) + ": " + name + " must be contiguous");
  if (n > 0 && reinterpret_cast<std::uintptr_t>(a.data()) % alignof(float) != 0)
    fail(std::string(fn) + ": " + name + " must be aligned to 4 bytes");
  return a.data();
}

void py_shift_adamax_step(const FloatOut& p, const Array& grad, const FloatOut& exp_avg,
                          const FloatOut& exp_inf, double one_minus_beta1, double beta2,
                          double eps, double step, bool maximize, int threads) {
  const char* fn = "shift_adamax_step";
  const std::size_t n = p.ndim() == 1 ? p.shape(0) : 0;
  float* pp = check_state(p, "p", n);
  const float* pg = check<float>(grad, fn, "grad", 1);
  if (grad.shape(0) != n)
    fail(std::string(fn) + ": grad must have " + std::to_string(n) + " elements (as p), got " +
         std::to_string(grad.shape(0)));
  float* pm = check_state(exp_avg, "exp_avg", n);
  float* pu = check_state(exp_inf, "exp_inf", n);
  const float* arrays[4] = {pp, pg, pm, pu};
  for (int i = 0; i < 4; ++i)
    for (int j = i + 1; j < 4; ++j)
      if (n > 0 && arrays[i] < arrays[j] + n && arrays[j] < arrays[i] + n)
        fail(std::string(fn) + ": p, grad, exp_avg and exp_inf must not overlap");
  if (!(one_minus_beta1 > 0.0 && one_minus_beta1 <= 1.0))
    fail(std::string(fn) + ": one_minus_beta1 must be in (0, 1], got " +
         std::to_string(one_minus_beta1));
  if (!(beta2 >= 0.0 && beta2 < 1.0))
    fail(std::string(fn) + ": beta2 must be in [0, 1), got " + std::to_string(beta2));
  if (!(eps >= 0.0) || !std::isfinite(step))
    fail(std::string(fn) + ": eps must be >= 0 and step finite");
  const ShiftAdaMaxStep st{static_cast<float>(one_minus_beta1), static_cast<float>(beta2),
                           static_cast<float>(eps), static_cast<float>(-step), maximize};
  const int nthreads = check_threads(threads, fn);
  nb::gil_scoped_release release;
  shift_adamax_update(st, pp, pg, pm, pu, n, nthreads);
}

void py_sign_values(const Array& x, const FloatOut& out, int threads) {
  const char* fn = "sign_values";
  const float* px = check<float>(x, fn, "x", 1);
  const std::size_t n = x.shape(0);
  if (out.ndim() != 1 || out.shape(0) != n || (n > 1 && out.stride(0) != 1))
    fail(std::string(fn) + ": out must be a contiguous 1-D float32 array of " +
         std::to_string(n) + " elements (as x)");
  float* po = out.data();
  if (n > 0 && reinterpret_cast<std::uintptr_t>(po) % alignof(float) != 0)
    fail(std::string(fn) + ": out must be aligned to 4 bytes");
  const int nthreads = check_threads(threads, fn);
  nb::gil_scoped_release release;
  sign_values(px, po, n, nthreads);
}

}  // namespace

NB_MODULE(_kernels, m) {
  m.doc() = "binarynet compiled kernels (bit packing, XNOR-popcount GEMM and convolution)";

  m.def("shift_adamax_step", &py_shift_adamax_step, nb::arg("p"), nb::arg("grad"),
        nb::arg("exp_avg"), nb::arg("exp_inf"), nb::kw_only(), nb::arg("one_minus_beta1"),
        nb::arg("beta2"), nb::arg("eps"), nb::arg("step"), nb::arg("maximize") = false,
        nb::arg("threads") = 0,
        "One step of shift-based AdaMax (Algorithm 4) in place, fused into one pass over float32 "
        "1-D arrays: m <- lerp(m, g, 1 - beta1); u <- max(beta2 * u, |g|); "
        "p <- p - step * m / AP2(max(u, eps)). Rounds as binarynet.optim.ShiftAdaMax's torch "
        "operations do.");
  m.def("sign_values", &py_sign_values, nb::arg("x"), nb::arg("out"), nb::kw_only(),
        nb::arg("threads") = 0,
        "out[i] = copysign(1, x[i] + 0.0) for float32 1-D arrays: sign with sign(+-0) = +1, as "
        "binarynet.quantize.sign computes its forward value.");
  m.def("pack_signs", &py_pack_signs, nb::arg("x"),
        "Pack the signs of a C-contiguous 2-D float32 or int8 array along its last axis into "
        "uint64 words (bit 1 = negative = -1; sign(0) = +1; padding bits zero).");
  m.def("unpack_signs", &py_unpack_signs, nb::arg("packed"), nb::arg("k"),
        "Inverse of pack_signs: uint64 [R, W] -> int8 [R, k] of +1/-1.");
  m.def("pack_bitplanes", &py_pack_bitplanes, nb::arg("x"),
        "uint8 [R, K] -> uint64 [R, 8, ceil(K/64)]: plane n (n = 0 the LSB) has bit i set iff bit "
        "n of x[r, i] is set.");
  m.def("bgemm", &py_bgemm, nb::arg("a"), nb::arg("w"), nb::arg("k"), nb::kw_only(),
        nb::arg("kernel") = "auto", nb::arg("threads") = 0,
        "Binary GEMM: int32 [M, N] with out[m, n] = k - 2 * popcount(a[m] ^ w[n]), the dot "
        "product of the +1/-1 rows (k real bits per row, padding bits zero).");
  m.def("bgemm_threshold", &py_bgemm_threshold, nb::arg("a"), nb::arg("w"), nb::arg("k"),
        nb::arg("lo"), nb::arg("hi"), nb::kw_only(), nb::arg("kernel") = "auto",
        nb::arg("threads") = 0,
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
  m.def("bgemm", &py_bgemm_prepared, nb::arg("a"), nb::arg("w"), nb::arg("k"), nb::kw_only(),
        nb::arg("kernel") = "auto", nb::arg("threads") = 0,
        "bgemm with prepared BinaryWeights w (k must equal w.k).");
  m.def("bgemm_threshold", &py_bgemm_threshold_prepared, nb::arg("a"), nb::arg("w"), nb::arg("k"),
        nb::arg("lo"), nb::arg("hi"), nb::kw_only(), nb::arg("kernel") = "auto",
        nb::arg("threads") = 0, "bgemm_threshold with prepared BinaryWeights w (k must equal w.k).");
  m.def("bitplane_gemm", &py_bitplane_gemm, nb::arg("x"), nb::arg("w"), nb::arg("k"),
        nb::kw_only(), nb::arg("kernel") = "auto", nb::arg("threads") = 0,
        "First-layer GEMM on uint8 inputs (Algorithm 5): int32 [M, N], out[m, n] = "
        "sum_i x[m, i] * w[n, i] with w as +1/-1, via the 8 bit planes of x.");
  m.def("bitplane_gemm_threshold", &py_bitplane_gemm_threshold, nb::arg("x"), nb::arg("w"),
        nb::arg("k"), nb::arg("lo"), nb::arg("hi"), nb::kw_only(), nb::arg("kernel") = "auto",
        nb::arg("threads") = 0,
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
  m.def("u8gemm", &py_u8gemm, nb::arg("x"), nb::arg("w"), nb::kw_only(),
        nb::arg("kernel") = "auto", nb::arg("threads") = 0,
        "First-layer GEMM on uint8 inputs as a byte GEMM: int32 [M, n], out[m, j] = "
        "sum_i x[m, i] * w[j, i] (x uint8 [M, k], w a U8Weights of +1/-1 rows); equals "
        "bitplane_gemm.");
  m.def("u8gemm_threshold", &py_u8gemm_threshold, nb::arg("x"), nb::arg("w"), nb::arg("lo"),
        nb::arg("hi"), nb::kw_only(), nb::arg("kernel") = "auto", nb::arg("threads") = 0,
        "Fused u8gemm + batch norm + sign: packed uint64 [M, ceil(n/64)], bit j of row m is 0 (+1) "
        "iff lo[j] <= s <= hi[j] for s the u8gemm value, else 1 (-1).");
  m.def("u8conv2d", &py_u8conv2d, nb::arg("x"), nb::arg("w"), nb::arg("kh"), nb::arg("kw"),
        nb::arg("stride"), nb::arg("padding"), nb::arg("pad_value"), nb::kw_only(),
        nb::arg("kernel") = "auto", nb::arg("threads") = 0,
        "First convolution on uint8 NHWC x [B, H, W, C]: int32 [B, Ho, Wo, n] = "
        "im2col_u8(x, kh, kw, stride, padding, pad_value) . w^T (w: U8Weights with k = kh*kw*C in "
        "(kh, kw, C) order), without materialising the im2col matrix.");
  m.def("u8conv2d_threshold", &py_u8conv2d_threshold, nb::arg("x"), nb::arg("w"), nb::arg("kh"),
        nb::arg("kw"), nb::arg("stride"), nb::arg("padding"), nb::arg("pad_value"), nb::arg("lo"),
        nb::arg("hi"), nb::kw_only(), nb::arg("kernel") = "auto", nb::arg("threads") = 0,
        "Fused u8conv2d + batch norm + sign -> packed uint64 [B, Ho, Wo, ceil(n/64)].");
  m.def("threshold_bits", &py_threshold_bits, nb::arg("y"), nb::arg("lo"), nb::arg("hi"),
        "Threshold and pack int32 y [M, N]: uint64 [M, ceil(N/64)], bit n of row m is 0 (+1) iff "
        "lo[n] <= y[m, n] <= hi[n], else 1 (-1); padding bits zero.");
  m.def("im2col_u8", &py_im2col_u8, nb::arg("x"), nb::arg("kh"), nb::arg("kw"),
        nb::arg("stride"), nb::arg("padding"), nb::arg("pad_value"),
        "uint8 NHWC [B, H, W, C] -> [B, Ho, Wo, kh*kw*C] patches in (kh, kw, C) order, padded "
        "positions filled with pad_value.");
  m.def("bconv2d", &py_bconv2d, nb::arg("x"), nb::arg("w"), nb::arg("c"), nb::arg("stride"),
        nb::arg("padding"), nb::kw_only(), nb::arg("kernel") = "auto", nb::arg("threads") = 0,
        "Binary 2-D convolution, NHWC: x uint64 [B, H, W, Cw], w uint64 [O, kh, kw, Cw], c real "
        "channels -> int32 [B, Ho, Wo, O], equal to torch conv2d of the +1/-1 tensors with zero "
        "padding.");
  m.def("bconv2d_threshold", &py_bconv2d_threshold, nb::arg("x"), nb::arg("w"), nb::arg("c"),
        nb::arg("stride"), nb::arg("padding"), nb::arg("lo"), nb::arg("hi"), nb::kw_only(),
        nb::arg("kernel") = "auto", nb::arg("threads") = 0,
        "Fused bconv2d + batch norm + sign -> packed uint64 [B, Ho, Wo, ceil(O/64)].");
  m.def("maxpool2d_int32", &py_maxpool2d_int32, nb::arg("x"), nb::arg("k"), nb::arg("stride"),
        "Max pooling of int32 NHWC [B, H, W, C] (no padding, floor mode).");
  m.def("maxpool2d_bits", &py_maxpool2d_bits, nb::arg("x"), nb::arg("k"), nb::arg("stride"),
        nb::arg("and_mask"),
        "Max pooling of thresholded packed bits [B, H, W, Cw]: per channel the AND of the bits "
        "(and_mask bit 1, increasing threshold) or the OR (bit 0, decreasing threshold).");

  m.def(
      "set_num_threads",
      [](int n) {
        if (n < 1 || n > 1024)
          fail("set_num_threads: n must be in 1..1024, got " + std::to_string(n));
        set_num_threads(n);
      },
      nb::arg("n"), "Set the number of threads the kernels use when called with threads=0.");
  m.def("get_num_threads", &get_num_threads,
        "Number of threads the kernels use when called with threads=0 (default: the hardware "
        "concurrency).");
  m.def("available_kernels", &available_kernels,
        "Kernels this CPU can run, best last.");
  m.def(
      "default_kernel",
      [] {
        try {
          return default_kernel();
        } catch (const std::invalid_argument& e) {
          fail(std::string("default_kernel: ") + e.what());
        }
      },
      "The kernel used for kernel='auto': the best available one, or the one named by the "
      "environment variable BINARYNET_KERNEL.");
}
