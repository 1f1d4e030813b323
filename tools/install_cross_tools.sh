#!/usr/bin/env bash
# Installs (Debian/Ubuntu, apt-get) the cross compilers and emulators the device tests use, when
# missing: arm-none-eabi-gcc + newlib and qemu-system-arm (the C back-end on Cortex-M),
# aarch64-linux-gnu-gcc/g++ and qemu-aarch64 (generated C and the NEON kernels on Armv8-A),
# riscv64-unknown-elf-gcc + picolibc and qemu-system-riscv32 (the C back-end on RV32).
# Without them those tests skip with the reason; this script warns and never fails the build.
#
#   tools/install_cross_tools.sh           every tool above
#   tools/install_cross_tools.sh aarch64   only the Armv8-A ones (tools/test_arm64.sh)
set -uo pipefail
need=()
if [ "${1:-}" != aarch64 ]; then
    command -v arm-none-eabi-gcc >/dev/null || need+=(gcc-arm-none-eabi libnewlib-arm-none-eabi)
    command -v qemu-system-arm >/dev/null || need+=(qemu-system-arm)
fi
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
command -v aarch64-linux-gnu-g++ >/dev/null || need+=(g++-aarch64-linux-gnu)
command -v riscv64-unknown-elf-gcc >/dev/null || need+=(gcc-riscv64-unknown-elf)
[ -e /usr/lib/picolibc/riscv64-unknown-elf/picolibc.specs ] || need+=(picolibc-riscv64-unknown-elf)
command -v qemu-system-riscv32 >/dev/null || need+=(qemu-system-misc)
if [ ${#need[@]} -eq 0 ]; then
    echo "cross tools: all present"
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    apt=(apt-get)
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    apt=(sudo -n apt-get)
else
    echo "warning: cannot install ${need[*]} (not root, no sudo): their tests will be skipped" >&2
    exit 0
fi
echo "cross tools: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! { "${apt[@]}" update -qq && "${apt[@]}" install -y -qq --no-install-recommends "${need[@]}"; } \
    >/tmp/binarynet-apt.log 2>&1; then
    echo "warning: apt-get could not install ${need[*]} (see /tmp/binarynet-apt.log):" \
        "their tests will be skipped" >&2
fi
exit 0
