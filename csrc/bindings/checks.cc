// Argument checks of the bindings (see checks.h). Every message names the function and the
// argument; tests match several of them verbatim.
#include "bindings/checks.h"

#include <cstdint>
#include <limits>
#include <stdexcept>

#include "bitpack.h"
#include "threadpool.h"

namespace binarynet {
namespace bindings {

void fail(const std::string& msg) { throw nb::value_error(msg.c_str()); }

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

void check_layout(const Array& a, nb::dlpack::dtype want, std::size_t align, const char* fn,
                  const char* name, std::size_t ndim) {
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
  if (!empty && reinterpret_cast<std::uintptr_t>(a.data()) % align != 0)
    fail(std::string(fn) + ": " + name + " must be aligned to " + std::to_string(align) +
         " bytes (use numpy.require(x, requirements='CA')), got a misaligned view");
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

Kernel pick_kernel(const std::string& name, const char* fn) {
  try {
    return resolve_kernel(name);
  } catch (const std::invalid_argument& e) {
    fail(std::string(fn) + ": kernel: " + e.what());
  }
}

std::size_t positive(std::int64_t v, const char* fn, const char* name) {
  if (v < 1) fail(std::string(fn) + ": " + name + " must be >= 1, got " + std::to_string(v));
  return static_cast<std::size_t>(v);
}

namespace {

// A Python int as int64; one that does not fit becomes INT64_MAX, out of every range checked
// below (nb::cast would throw std::bad_cast, a RuntimeError in Python).
std::int64_t int64_or_max(nb::handle h) {
  std::int64_t v;
  return nb::try_cast<std::int64_t>(h, v) ? v : std::numeric_limits<std::int64_t>::max();
}

}  // namespace

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
    fail(std::string(fn) + ": k must be in 1.." + std::to_string(64 * nw) + " (64 * " + words_of +
         "), got " + std::to_string(k));
  if (k > max_k)
    fail(std::string(fn) + ": k=" + std::to_string(k) + " is too large (at most " +
         std::to_string(max_k) + ", for exact int32 results)");
  return static_cast<std::size_t>(k);
}

const std::int32_t* check_bounds(const Array& v, const char* fn, const char* name, std::size_t n,
                                 const char* what) {
  const auto* p = check<std::int32_t>(v, fn, name, 1);
  if (v.shape(0) != n)
    fail(std::string(fn) + ": " + name + " must have shape (" + std::to_string(n) + ",) (" + what +
         "), got " + shape_str(v));
  return p;
}

gemm::Output check_threshold(const Array* lo, const Array* hi, const char* fn, std::size_t n,
                             const char* what) {
  gemm::Output thr;
  if (lo) thr.lo = check_bounds(*lo, fn, "lo", n, what);
  if (hi) thr.hi = check_bounds(*hi, fn, "hi", n, what);
  return thr;
}

}  // namespace bindings
}  // namespace binarynet
