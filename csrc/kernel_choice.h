// Kernel choice, shared by every op: the variants (a plain reference kernel beside the optimised
// ones), which of them this CPU can run, and the name → variant resolution of the `kernel`
// argument and of the environment variable BINARYNET_KERNEL. Baseline ISA.
#pragma once

#include <string>
#include <vector>

namespace binarynet {

// Avx2 ("avx2"): the AVX2 kernels, the popcount GEMM with carry-save adders (bgemm/avx2.cc);
// Avx2Table ("avx2-table"): the same but the popcount GEMM of the previous AVX2 kernel, the nibble
// table on every word (bgemm/avx2_table.cc), kept by name for comparison (slower everywhere it was
// measured; docs/results.md). Amx ("amx"): the avx512 kernels, but the byte GEMM on AMX tiles
// (TDPBUSD). AmxTiles
// ("amx-tiles"): also the popcount GEMM on AMX tiles (±1 expansion + TDPBSSD, bgemm/amx.cc),
// which measured slower than VPOPCNTDQ on the machine of csrc/README.md: chosen by name only.
// Neon: aarch64 Advanced SIMD (every aarch64 CPU); NeonDotprod: the same binary kernels, and the
// first layer's byte GEMM with the Armv8.2 dot-product instructions (SDOT).
enum class Kernel {
  Reference,
  Portable,
  Avx2Table,
  Avx2,
  Avx512,
  AmxTiles,
  Amx,
  Neon,
  NeonDotprod
};

// Kernels this CPU can run, best last.
std::vector<std::string> available_kernels();
// Best available kernel, or the one named by the environment variable BINARYNET_KERNEL.
// Throws std::invalid_argument if that variable names an unknown or unavailable kernel.
std::string default_kernel();
// "auto" or a kernel name → Kernel. Throws std::invalid_argument (unknown / not on this CPU).
Kernel resolve_kernel(const std::string& name);

// The CPU checks (false where the x86 kernels are not built). They also test that the OS saves
// the AVX/AVX-512 register state (libgcc's __builtin_cpu_supports reads XCR0).
bool cpu_has_avx2();
bool cpu_has_avx512();       // F, BW, VL, VPOPCNTDQ
bool cpu_has_avx512_vnni();  // the above + VNNI (the byte GEMM's VPDPBUSD)
// The above + AMX-TILE + AMX-INT8, and the OS has granted this process the tile state (Linux:
// arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA), asked once, here; refused → false).
// false too where the AMX kernels are not built (a compiler without -mamx-int8).
bool cpu_has_amx();
// The aarch64 checks (false where the NEON kernels are not built): Advanced SIMD, and the
// dot-product extension (getauxval(AT_HWCAP) & HWCAP_ASIMDDP).
bool cpu_has_neon();
bool cpu_has_neon_dotprod();

}  // namespace binarynet
