#!/usr/bin/env bash
# The package on emulated arm64 (make test-arm64): an arm64 Python from Debian's packages in a
# sysroot, run by qemu-aarch64; the extension cross-compiled by CMake from this CMakeLists.txt
# (the NEON files) with aarch64-linux-gnu-g++; NumPy and the test tools as aarch64 wheels from
# PyPI; then, under -cpu cortex-a72 (no dot product: `neon`) and -cpu max (dot product:
# `neon-dotprod` too; a run whose emulated CPU does not get the NEON variants it should fails):
#   * tests/backends/engine/test_kernels.py, tests/backends/engine/test_engine_inputs.py, tests/graph/test_fuzz_bnn.py,
#     tests/analysis/test_bench.py (every kernel variant of the emulated CPU against the NumPy oracle,
#     hostile inputs, damaged .bnn files, binarynet bench; the tests that need torch skip:
#     there is no torch on the emulated side);
#   * tools/engine_golden.py check: models exported here by torch (MLPs, the CIFAR-10 ConvNet at
#     1/8 width, an odd-shaped ConvNet) run on the arm64 engine with every kernel variant, scores
#     bit-identical to torch's.
# --smoke (make test-arm64-smoke, in CI): the same sysroot, wheels and cross-compiled extension,
# imported under both CPUs, and one exported model (the odd-shaped ConvNet: first-layer and binary
# convolutions with strides and padding, pools on integers and on bits, dense layers) checked with
# every kernel variant; no pytest.
#
#   tools/test_arm64.sh [--smoke] [PYTHON]   (PYTHON: the host venv with torch; default
#                                             build/venv/bin/python)
#
# PYTHON is used as an absolute path but not resolved: a venv's bin/python is a symlink to the
# base interpreter, and CMake given the target would find the base interpreter's packages (no
# nanobind) instead of the venv's.
# Needs: aarch64-linux-gnu-g++, qemu-aarch64 (installed by tools/install_cross_tools.sh when
# missing, where apt-get may run), apt-get (Debian bookworm sources; a private apt state under
# build/arm64/apt, the system's is not touched), pip, cmake (or pip's). Everything goes to
# build/arm64/ and is reused by the next run. ARM64_TESTS overrides the test files.
# Exit status 77 when a tool is missing and cannot be installed.
set -euo pipefail
smoke=0
if [ "${1:-}" = --smoke ]; then
  smoke=1
  shift
fi
caller=$PWD
cd "$(dirname "$0")/.."
PY=${1:-${PYTHON:-$PWD/build/venv/bin/python}}
case $PY in
  /*) ;;
  */*) PY=$caller/$PY ;;
  *) PY=$(command -v "$PY" || echo "$PY") ;;
esac
if [ ! -x "$PY" ]; then
  echo "tools/test_arm64.sh: $PY is not an executable Python (make test-arm64 builds build/venv)" >&2
  exit 2
fi
OUT=build/arm64
SYSROOT=$OUT/sysroot
SITE=$OUT/site
TESTS=${ARM64_TESTS:-tests/backends/engine/test_kernels.py tests/backends/engine/test_engine_inputs.py tests/graph/test_fuzz_bnn.py tests/analysis/test_bench.py}
start=$(date +%s)
say() { printf '[arm64 %4ds] %s\n' $(($(date +%s) - start)) "$*"; }

missing() {
  local tool
  for tool in aarch64-linux-gnu-g++ qemu-aarch64 apt-get dpkg; do
    command -v $tool >/dev/null || echo $tool
  done
}
if [ -n "$(missing)" ]; then
  tools/install_cross_tools.sh aarch64
  if [ -n "$(missing)" ]; then
    echo "tools/test_arm64.sh: $(missing | tr '\n' ' ')not found (Debian: apt-get install" \
      "g++-aarch64-linux-gnu qemu-user)" >&2
    exit 77
  fi
fi
mkdir -p $OUT

# 1. An arm64 Python 3.11 from Debian's packages, unpacked into a sysroot (no dpkg database,
#    no foreign architecture added to the system: a private apt state).
if [ ! -x $SYSROOT/usr/bin/python3.11 ]; then
  say "downloading Debian's arm64 python3.11 into $SYSROOT"
  APT=$PWD/$OUT/apt
  mkdir -p $APT/state/lists/partial $APT/cache/archives/partial $APT/debs
  touch $APT/status
  opts=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o Dir::State=$APT/state
        -o Dir::State::status=$APT/status -o Dir::Cache=$APT/cache -o Debug::NoLocking=1)
  apt-get "${opts[@]}" -qq update
  (cd $APT/debs && apt-get "${opts[@]}" -qq download libc6 libgcc-s1 libstdc++6 libexpat1 \
    libffi8 libbz2-1.0 liblzma5 zlib1g libssl3 libsqlite3-0 libuuid1 libncursesw6 libtinfo6 \
    libreadline8 libcrypt1 libdb5.3 libgdbm6 libgdbm-compat4 libnsl2 libtirpc3 libgssapi-krb5-2 \
    libk5crypto3 libkrb5-3 libkrb5support0 libkeyutils1 libcom-err2 libzstd1 libpython3.11 \
    libpython3.11-dev libpython3.11-minimal libpython3.11-stdlib python3.11 python3.11-minimal \
    media-types 2>&1 | grep -v "unsandboxed" || true)
  rm -rf $SYSROOT && mkdir -p $SYSROOT
  for deb in $APT/debs/*.deb; do dpkg -x "$deb" $SYSROOT; done
fi
# The emulated interpreter as a host executable: a wrapper that runs it under qemu-aarch64
# (-cpu $QEMU_CPU) and passes itself as argv[0], so that sys.executable is the wrapper and the
# tests' child processes (subprocess.run([sys.executable, ...])) run under QEMU too, without
# binfmt_misc.
PYQ=$PWD/$SYSROOT/usr/bin/python3.11-qemu
cat > "$PYQ" <<WRAPPER
#!/bin/sh
exec qemu-aarch64 -cpu \${QEMU_CPU:-max} -L $PWD/$SYSROOT -0 "\$0" $PWD/$SYSROOT/usr/bin/python3.11 "\$@"
WRAPPER
chmod +x "$PYQ"
# run CPU ARGS...: the emulated interpreter with the cross-built package and the wheels.
run() { QEMU_CPU=$1 PYTHONPATH=$PWD/$OUT/pkg:$PWD/$SITE "$PYQ" "${@:2}"; }

# 2. NumPy, safetensors, pytest, hypothesis as aarch64 wheels.
if [ ! -d $SITE/numpy ]; then
  say "aarch64 wheels into $SITE"
  "$PY" -m pip install --quiet --disable-pip-version-check --target $SITE --only-binary=:all: \
    --platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64 \
    --platform manylinux_2_28_aarch64 --python-version 3.11 --implementation cp \
    "numpy>=1.24,<2.3" "safetensors>=0.4" tqdm rich pytest hypothesis 2>&1 | grep -v "^WARNING: Location" || true
fi

# 3. The extension, cross-compiled by CMake from CMakeLists.txt (aarch64: the NEON files).
"$PY" -c "import nanobind" 2>/dev/null || "$PY" -m pip install --quiet "nanobind>=2.4"
CMAKE=$(command -v cmake || true)
if [ -z "$CMAKE" ]; then
  "$PY" -m pip install --quiet cmake
  CMAKE=$(dirname "$PY")/cmake
fi
cat > $OUT/toolchain.cmake <<'TOOLCHAIN'
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
TOOLCHAIN
say "cross-compiling binarynet._kernels for aarch64"
"$CMAKE" -S . -B $OUT/cmake -DCMAKE_TOOLCHAIN_FILE=$PWD/$OUT/toolchain.cmake \
  -DCMAKE_BUILD_TYPE=Release -DPython_EXECUTABLE="$PY" \
  -DPython_INCLUDE_DIR=$PWD/$SYSROOT/usr/include/python3.11 \
  "-DCMAKE_CXX_FLAGS=-idirafter $PWD/$SYSROOT/usr/include" >/dev/null
"$CMAKE" --build $OUT/cmake -j "$(nproc)" >/dev/null
rm -rf $OUT/pkg && mkdir -p $OUT/pkg
cp -r src/binarynet $OUT/pkg/
find $OUT/pkg -name '*.so' -delete
so=$(ls $OUT/cmake/_kernels*.so)
cp "$so" $OUT/pkg/binarynet/_kernels.cpython-311-aarch64-linux-gnu.so

# 4. The golden models, made here with torch.
if [ $smoke = 1 ]; then
  GOLDEN=$OUT/golden-smoke
  say "exporting the golden model (torch, host)"
  "$PY" tools/engine_golden.py make $GOLDEN --only odd >/dev/null
else
  GOLDEN=$OUT/golden
  say "exporting the golden models (torch, host)"
  "$PY" tools/engine_golden.py make $GOLDEN >/dev/null
fi

# The NEON variants each emulated CPU must get: neon on both, neon-dotprod on max only
# (cortex-a72 is Armv8.0: a dot-product kernel chosen there would be a wrong CPU check).
status=0
for cpu in cortex-a72 max; do
  kernels=$(run $cpu -c 'import binarynet._kernels as K; print(" ".join(K.available_kernels()))') || kernels=
  say "qemu-aarch64 -cpu $cpu: kernels $kernels"
  has() { case " $kernels " in *" $1 "*) return 0 ;; esac; return 1; }
  has neon || { say "FAILED: -cpu $cpu has no neon kernels"; status=1; }
  if [ $cpu = max ]; then
    has neon-dotprod || { say "FAILED: -cpu max has no neon-dotprod kernels"; status=1; }
  elif has neon-dotprod; then
    say "FAILED: -cpu $cpu (no dot product) offers neon-dotprod"; status=1
  fi
  if [ $smoke = 0 ]; then
    # shellcheck disable=SC2086
    run $cpu -m pytest -q -p no:cacheprovider $TESTS 2>&1 | tail -3 || status=1
  fi
  if [ $smoke = 1 ]; then
    run $cpu tools/engine_golden.py check $GOLDEN || status=1
  else
    run $cpu tools/engine_golden.py check $GOLDEN | tail -1 || status=1
  fi
done
say "done (status $status)"
exit $status
