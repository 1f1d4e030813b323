// The training side of binarynet._kernels: the shift AdaMax update and the sign of latent
// weights (shift_adamax.h), used by binarynet.training.optim / binarynet.training.quantize on CPU
// float32 tensors, in place. They take the same kernel / threads keywords as the engine's ops; each
// has one implementation (baseline ISA, vectorised by the compiler), which every valid kernel name
// selects.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "bindings/checks.h"
#include "shift_adamax.h"

namespace binarynet {
namespace bindings {
namespace {

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
  if (n > 1 && a.stride(0) != 1) fail(std::string(fn) + ": " + name + " must be contiguous");
  if (n > 0 && reinterpret_cast<std::uintptr_t>(a.data()) % alignof(float) != 0)
    fail(std::string(fn) + ": " + name + " must be aligned to 4 bytes");
  return a.data();
}

void py_shift_adamax_step(const FloatOut& p, const Array& grad, const FloatOut& exp_avg,
                          const FloatOut& exp_inf, double one_minus_beta1, double beta2, double eps,
                          double step, bool maximize, const std::string& kernel, int threads) {
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
  run_op<void>(fn, kernel, threads, {}, false,
               [&](Kernel, int nt) { shift_adamax_update(st, pp, pg, pm, pu, n, nt); });
}

void py_sign_values(const Array& x, const FloatOut& out, const std::string& kernel, int threads) {
  const char* fn = "sign_values";
  const float* px = check<float>(x, fn, "x", 1);
  const std::size_t n = x.shape(0);
  if (out.ndim() != 1 || out.shape(0) != n || (n > 1 && out.stride(0) != 1))
    fail(std::string(fn) + ": out must be a contiguous 1-D float32 array of " + std::to_string(n) +
         " elements (as x)");
  float* po = out.data();
  if (n > 0 && reinterpret_cast<std::uintptr_t>(po) % alignof(float) != 0)
    fail(std::string(fn) + ": out must be aligned to 4 bytes");
  run_op<void>(fn, kernel, threads, {}, false, [&](Kernel, int nt) { sign_values(px, po, n, nt); });
}

}  // namespace

void register_training_ops(nb::module_& m) {
  m.def("shift_adamax_step", &py_shift_adamax_step, nb::arg("p"), nb::arg("grad"),
        nb::arg("exp_avg"), nb::arg("exp_inf"), nb::kw_only(), nb::arg("one_minus_beta1"),
        nb::arg("beta2"), nb::arg("eps"), nb::arg("step"), nb::arg("maximize") = false,
        nb::arg("kernel") = "auto", nb::arg("threads") = 0,
        "One step of shift-based AdaMax (Algorithm 4) in place, fused into one pass over float32 "
        "1-D arrays: m <- lerp(m, g, 1 - beta1); u <- max(beta2 * u, |g|); "
        "p <- p - step * m / AP2(max(u, eps)). Rounds as "
        "binarynet.training.optim.ShiftAdaMax's torch operations do.");
  m.def("sign_values", &py_sign_values, nb::arg("x"), nb::arg("out"), nb::kw_only(),
        nb::arg("kernel") = "auto", nb::arg("threads") = 0,
        "out[i] = copysign(1, x[i] + 0.0) for float32 1-D arrays: sign with sign(+-0) = +1, as "
        "binarynet.training.quantize.sign computes its forward value.");
}

}  // namespace bindings
}  // namespace binarynet
