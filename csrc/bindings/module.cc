// nanobind module binarynet._kernels: the compiled half of the engine and the training side's
// fused kernels. The ops are registered by their files (engine_ops.cc, training_ops.cc); this
// file adds the controls: thread count, kernel listing, the default kernel.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <stdexcept>
#include <string>

#include "bindings/checks.h"
#include "kernel_choice.h"
#include "threadpool.h"

namespace nb = nanobind;
using namespace binarynet;

NB_MODULE(_kernels, m) {
  m.doc() = "binarynet compiled kernels (bit packing, XNOR-popcount GEMM and convolution)";

  bindings::register_training_ops(m);
  bindings::register_engine_ops(m);

  m.def(
      "set_num_threads",
      [](int n) {
        if (n < 1 || n > 1024)
          bindings::fail("set_num_threads: n must be in 1..1024, got " + std::to_string(n));
        set_num_threads(n);
      },
      nb::arg("n"), "Set the number of threads the kernels use when called with threads=0.");
  m.def("get_num_threads", &get_num_threads,
        "Number of threads the kernels use when called with threads=0 (default: the hardware "
        "concurrency).");
  m.def("available_kernels", &available_kernels, "Kernels this CPU can run, best last.");
  m.def(
      "default_kernel",
      [] {
        try {
          return default_kernel();
        } catch (const std::invalid_argument& e) {
          bindings::fail(std::string("default_kernel: ") + e.what());
        }
      },
      "The kernel used for kernel='auto': the best available one, or the one named by the "
      "environment variable BINARYNET_KERNEL.");
}
