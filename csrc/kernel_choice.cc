// Kernel choice: a small, readable function (see kernel_choice.h).
#include "kernel_choice.h"

#include <cstdlib>
#include <stdexcept>

#if BINARYNET_AMX_KERNELS
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if BINARYNET_ARM_KERNELS
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

namespace binarynet {

// (BINARYNET_X86_KERNELS: set by CMakeLists.txt when the avx2.cc / avx512.cc kernels are built,
// i.e. on x86-64.)
#if BINARYNET_X86_KERNELS
bool cpu_has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt") &&
         __builtin_cpu_supports("bmi2");
}

bool cpu_has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vpopcntdq");
}

bool cpu_has_avx512_vnni() {
  __builtin_cpu_init();
  return cpu_has_avx512() && __builtin_cpu_supports("avx512vnni");
}
#if BINARYNET_AMX_KERNELS
namespace {
// CPUID.(EAX=7, ECX=0):EDX bit 24 = AMX-TILE, bit 25 = AMX-INT8.
bool cpuid_has_amx_int8() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return ((d >> 24) & 1) && ((d >> 25) & 1);
}
// Linux keeps the 8 KiB tile state (XFEATURE_XTILEDATA = 18) off until a process asks for it;
// a kernel without that interface (< 5.16) or a refusal answers −1: no AMX then.
bool os_grants_tiles() {
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}
}  // namespace

bool cpu_has_amx() {
  static const bool ok = cpu_has_avx512_vnni() && cpuid_has_amx_int8() && os_grants_tiles();
  return ok;
}
#else
bool cpu_has_amx() { return false; }
#endif
#else
bool cpu_has_amx() { return false; }
bool cpu_has_avx2() { return false; }
bool cpu_has_avx512() { return false; }
bool cpu_has_avx512_vnni() { return false; }
#endif

// (BINARYNET_ARM_KERNELS: set by CMakeLists.txt when the neon*.cc kernels are built, i.e. on
// aarch64. The kernel asks Linux which CPU features it may use: AT_HWCAP.)
#if BINARYNET_ARM_KERNELS
bool cpu_has_neon() { return (getauxval(AT_HWCAP) & HWCAP_ASIMD) != 0; }
bool cpu_has_neon_dotprod() { return cpu_has_neon() && (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0; }
#else
bool cpu_has_neon() { return false; }
bool cpu_has_neon_dotprod() { return false; }
#endif

namespace {

const char* kernel_name(Kernel k) {
  switch (k) {
    case Kernel::Reference: return "reference";
    case Kernel::Portable: return "portable";
    case Kernel::Avx2Table: return "avx2-table";
    case Kernel::Avx2: return "avx2";
    case Kernel::Avx512: return "avx512";
    case Kernel::AmxTiles: return "amx-tiles";
    case Kernel::Amx: return "amx";
    case Kernel::Neon: return "neon";
    case Kernel::NeonDotprod: return "neon-dotprod";
  }
  return "?";
}

Kernel named_kernel(const std::string& name) {
  for (Kernel k :
       {Kernel::Reference, Kernel::Portable, Kernel::Avx2Table, Kernel::Avx2, Kernel::Avx512,
        Kernel::AmxTiles, Kernel::Amx, Kernel::Neon, Kernel::NeonDotprod}) {
    if (name == kernel_name(k)) {
      const bool amx = k == Kernel::Amx || k == Kernel::AmxTiles;
      const bool avx2 = k == Kernel::Avx2 || k == Kernel::Avx2Table;
      const bool ok = (!avx2 || cpu_has_avx2()) && (k != Kernel::Avx512 || cpu_has_avx512()) &&
                      (!amx || cpu_has_amx()) && (k != Kernel::Neon || cpu_has_neon()) &&
                      (k != Kernel::NeonDotprod || cpu_has_neon_dotprod());
      if (!ok)
        throw std::invalid_argument("kernel '" + name +
                                    "' is not supported by this CPU (available: " +
                                    [] {
                                      std::string s;
                                      for (const auto& n : available_kernels())
                                        s += (s.empty() ? "" : ", ") + n;
                                      return s;
                                    }() +
                                    ")");
      return k;
    }
  }
  throw std::invalid_argument(
      "unknown kernel '" + name +
      "' (expected one of 'auto', 'reference', 'portable', 'avx2-table', 'avx2', 'avx512', "
      "'amx-tiles', 'amx', 'neon', 'neon-dotprod')");
}

}  // namespace

std::vector<std::string> available_kernels() {
  std::vector<std::string> names = {"reference", "portable"};
  if (cpu_has_avx2()) {
    names.push_back("avx2-table");  // by name only: the previous AVX2 popcount GEMM
    names.push_back("avx2");
  }
  if (cpu_has_avx512()) names.push_back("avx512");
  if (cpu_has_amx()) {
    names.push_back("amx-tiles");
    names.push_back("amx");  // the default: tiles where they measured faster (kernel_choice.h)
  }
  if (cpu_has_neon()) names.push_back("neon");
  if (cpu_has_neon_dotprod()) names.push_back("neon-dotprod");
  return names;
}

std::string default_kernel() {
  if (const char* env = std::getenv("BINARYNET_KERNEL")) {
    const std::string name(env);
    if (!name.empty() && name != "auto") {
      try {
        return kernel_name(named_kernel(name));
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string("environment variable BINARYNET_KERNEL: ") +
                                    e.what());
      }
    }
  }
  return available_kernels().back();
}

Kernel resolve_kernel(const std::string& name) {
  return named_kernel(name == "auto" ? default_kernel() : name);
}

}  // namespace binarynet
