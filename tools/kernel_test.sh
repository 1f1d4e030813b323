#!/usr/bin/env bash
# Builds and runs the standalone kernel test program (csrc/tests/kernel_test.cc): every kernel
# variant against the reference kernels, without Python.
#
#   tools/kernel_test.sh native [ARGS...]   host compiler ($CXX, default g++); on x86-64 with the
#                                           AVX2 / AVX-512 kernels (those the CPU has are run)
#   tools/kernel_test.sh arm64 [ARGS...]    cross-compiled with aarch64-linux-gnu-g++ -static
#                                           (the NEON kernels) and run under qemu-aarch64 twice:
#                                           -cpu cortex-a72 (no dot product: "neon") and
#                                           -cpu max (dot product: "neon" and "neon-dotprod")
#
# ARGS go to the program (--seed S, --cases N, --kernel NAME). Exit status 0 iff every run
# passes; 77 if the arm64 tools are missing (Debian: apt-get install g++-aarch64-linux-gnu
# qemu-user). Objects go to build/kernel_test/<target>/ (rebuilt when a source is newer).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-native}
shift || true
out=build/kernel_test/$target
mkdir -p "$out"

common="csrc/kernel_choice.cc csrc/threadpool.cc csrc/bgemm/bgemm.cc csrc/bgemm/portable.cc
  csrc/u8gemm/u8gemm.cc csrc/u8gemm/portable.cc csrc/bconv/bconv.cc csrc/pool/pool.cc
  csrc/tests/kernel_test.cc"
case $target in
  native)
    cxx=${CXX:-g++}
    defs=""
    extra=""
    ldflags="-pthread"
    if [ "$(uname -m)" = x86_64 ]; then
      defs="-DBINARYNET_X86_KERNELS=1"
      extra="csrc/bgemm/avx2.cc csrc/bgemm/avx2_table.cc csrc/bgemm/avx512.cc csrc/u8gemm/avx2.cc
        csrc/u8gemm/avx512.cc"
      # the AMX kernels where the compiler knows them (as CMakeLists.txt checks)
      if echo 'int main(){}' | $cxx -x c++ -mamx-tile -mamx-int8 - -o /dev/null 2>/dev/null; then
        defs="$defs -DBINARYNET_AMX_KERNELS=1"
        extra="$extra csrc/bgemm/amx.cc csrc/u8gemm/amx.cc"
      fi
    elif [ "$(uname -m)" = aarch64 ]; then
      defs="-DBINARYNET_ARM_KERNELS=1"
      extra="csrc/bgemm/neon.cc csrc/u8gemm/neon.cc csrc/u8gemm/neon_dotprod.cc"
    fi
    ;;
  arm64)
    cxx=${CROSS_CXX:-aarch64-linux-gnu-g++}
    for tool in "$cxx" qemu-aarch64; do
      if ! command -v "$tool" >/dev/null; then
        echo "tools/kernel_test.sh: $tool not found (Debian: apt-get install g++-aarch64-linux-gnu qemu-user)" >&2
        exit 77
      fi
    done
    defs="-DBINARYNET_ARM_KERNELS=1"
    extra="csrc/bgemm/neon.cc csrc/u8gemm/neon.cc csrc/u8gemm/neon_dotprod.cc"
    ldflags="-static -pthread"
    ;;
  *)
    echo "usage: tools/kernel_test.sh native|arm64 [--seed S] [--cases N] [--kernel NAME]" >&2
    exit 2
    ;;
esac

# Per-file ISA flags, as in CMakeLists.txt.
isa_flags() {
  case $1 in
    csrc/bgemm/avx2.cc | csrc/bgemm/avx2_table.cc) echo "-mavx2 -mpopcnt -mbmi -mbmi2" ;;
    csrc/bgemm/avx512.cc) echo "-mavx512f -mavx512bw -mavx512vl -mavx512vpopcntdq -mavx2 -mpopcnt -mbmi2" ;;
    csrc/u8gemm/avx2.cc) echo "-mavx2" ;;
    csrc/u8gemm/avx512.cc) echo "-mavx512f -mavx512bw -mavx512vl -mavx512vnni -mavx2" ;;
    csrc/u8gemm/neon_dotprod.cc) echo "-march=armv8.2-a+dotprod" ;;
    csrc/bgemm/amx.cc | csrc/u8gemm/amx.cc)
      echo "-mamx-tile -mamx-int8 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx2" ;;
  esac
  # Warnings for the test program and the NEON kernels (the rest is built by CMake with its own).
  case $1 in
    csrc/tests/* | csrc/*/neon*) echo "-Wall -Wextra" ;;
  esac
}

objs=()
pids=()
for src in $common $extra; do
  obj=$out/$(echo "$src" | tr / _).o
  objs+=("$obj")
  # Rebuild when the source or any header of csrc/ is newer than the object.
  if [ ! -f "$obj" ] || [ -n "$(find csrc -newer "$obj" -name '*.h' -print -quit)" ] || [ "$src" -nt "$obj" ]; then
    # shellcheck disable=SC2046
    $cxx -std=c++17 -O2 -Icsrc $defs $(isa_flags "$src") -c "$src" -o "$obj" &
    pids+=($!)
  fi
done
for pid in "${pids[@]}"; do wait "$pid"; done
# shellcheck disable=SC2086
$cxx -o "$out/kernel_test" "${objs[@]}" $ldflags

if [ "$target" = native ]; then
  "$out/kernel_test" "$@"
else
  echo "== qemu-aarch64 -cpu cortex-a72 (Armv8.0: no dot product)"
  qemu-aarch64 -cpu cortex-a72 "$out/kernel_test" "$@"
  echo "== qemu-aarch64 -cpu max (dot product)"
  qemu-aarch64 -cpu max "$out/kernel_test" "$@"
fi
