// The safety layer of binarynet._kernels: every argument is checked (dtype, rank, C-contiguity,
// alignment, shapes, sizes, zero padding bits) and a bad one raises ValueError naming the
// function, the argument, its value and what was expected, before any kernel runs; the kernels
// themselves assume valid input. Arrays are taken untyped so that a wrong dtype is reported (and
// never silently converted), and read-only arrays are accepted.
//
// run_op is the one wrapper every binding ends with: kernel choice, thread count, output array,
// GIL release, the call.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>  // (nb::cast<std::string> in checks.cc, std::string arguments)

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "gemm/driver.h"
#include "kernel_choice.h"

namespace binarynet {
namespace bindings {

namespace nb = nanobind;

using Array = nb::ndarray<nb::ro, nb::device::cpu>;
using Shape = std::vector<std::size_t>;
template <typename T>
using Result = nb::ndarray<nb::numpy, T>;

[[noreturn]] void fail(const std::string& msg);
std::string dtype_name(nb::dlpack::dtype dt);
std::string shape_str(const Array& a);

// Checks dtype T, rank and C-contiguity (and alignment) of argument `name` of function `fn`;
// returns its data.
void check_layout(const Array& a, nb::dlpack::dtype want, std::size_t align, const char* fn,
                  const char* name, std::size_t ndim);
template <typename T>
const T* check(const Array& a, const char* fn, const char* name, std::size_t ndim) {
  check_layout(a, nb::dtype<T>(), alignof(T), fn, name, ndim);
  return static_cast<const T*>(a.data());
}

std::size_t checked_mul(std::size_t a, std::size_t b, const char* fn);
// threads: 0 (the global setting) or 1..1024 → the thread count to use.
int check_threads(int threads, const char* fn);
// kernel: "auto" or a name of available_kernels().
Kernel pick_kernel(const std::string& name, const char* fn);
std::size_t positive(std::int64_t v, const char* fn, const char* name);
// (int, int) or int → pair; `min` is the smallest value allowed.
std::pair<std::size_t, std::size_t> parse_pair(nb::handle h, const char* fn, const char* name,
                                               std::int64_t min);
// Packed operand [rows, nw] with k real bits per row: bits ≥ k zero.
void check_packed(const std::uint64_t* p, std::size_t rows, std::size_t nw, std::size_t k,
                  const char* fn, const char* name);
// k in 1..64·nw (words_of names nw) and at most max_k.
std::size_t check_k(std::int64_t k, std::size_t nw, const char* fn, const char* words_of,
                    std::int64_t max_k);
// int32 [n] (one bound per output; `what` says so in the message).
const std::int32_t* check_bounds(const Array& v, const char* fn, const char* name, std::size_t n,
                                 const char* what);
// The threshold of a fused op (lo, hi: int32 [n]), or none (both null: the int32 variant).
gemm::Output check_threshold(const Array* lo, const Array* hi, const char* fn, std::size_t n,
                             const char* what);

// A new NumPy array of `shape` (zeroed if `zero`); *data points at its elements.
template <typename T>
Result<T> new_array(const Shape& shape, T** data, bool zero) {
  std::size_t n = 1;
  for (std::size_t s : shape) n = checked_mul(n, s, "allocation");
  T* p = new T[n > 0 ? n : 1];
  if (zero) std::memset(p, 0, (n > 0 ? n : 1) * sizeof(T));
  nb::capsule owner(p, [](void* q) noexcept { delete[] static_cast<T*>(q); });
  *data = p;
  return Result<T>(p, shape.size(), shape.data(), owner);
}

// The one wrapper of every op binding, called once its own arguments are checked: resolves
// `kernel` and `threads` (ValueError naming fn), allocates the output T[shape] (zeroed if
// `zero`), releases the GIL and runs call(kernel, threads, out). With T = void (the in-place
// training ops) there is no output: call(kernel, threads).
template <typename T, typename Call>
auto run_op(const char* fn, const std::string& kernel, int threads, const Shape& shape, bool zero,
            Call&& call) {
  const Kernel kern = pick_kernel(kernel, fn);
  const int nt = check_threads(threads, fn);
  if constexpr (std::is_void_v<T>) {
    nb::gil_scoped_release release;
    call(kern, nt);
  } else {
    T* out;
    auto res = new_array<T>(shape, &out, zero);
    {
      nb::gil_scoped_release release;
      call(kern, nt, out);
    }
    return res;
  }
}

// run_op for the ops with n outputs per row and a fused threshold variant: T = int32_t gives the
// values [lead..., n]; T = uint64_t the threshold bits [lead..., ceil(n/64)] (zeroed) of `thr`
// (from check_threshold). The epilogue's output is set up here, once for every op:
// call(kernel, threads, const gemm::Output&).
template <typename T, typename Call>
Result<T> run_gemm_op(const char* fn, const std::string& kernel, int threads, Shape lead,
                      std::size_t n, const gemm::Output& thr, Call&& call) {
  static_assert(std::is_same_v<T, std::int32_t> || std::is_same_v<T, std::uint64_t>);
  constexpr bool kBits = std::is_same_v<T, std::uint64_t>;
  lead.push_back(kBits ? words_for(n) : n);
  return run_op<T>(fn, kernel, threads, lead, kBits, [&](Kernel kern, int nt, T* res) {
    gemm::Output out = thr;
    if constexpr (kBits)
      out.bits = res;
    else
      out.values = res;
    call(kern, nt, out);
  });
}

// The parts of the module, one per concern (bindings/engine_ops.cc, bindings/training_ops.cc).
void register_engine_ops(nb::module_& m);
void register_training_ops(nb::module_& m);

}  // namespace bindings
}  // namespace binarynet
