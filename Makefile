# binarynet: `make test` and `make demo` work on a fresh machine with only the package registries.
# Each creates (once) a virtual environment in $(VENV) and installs the package into it.

PYTHON ?= python3
VENV ?= build/venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
SOURCES := pyproject.toml CMakeLists.txt $(shell find csrc src -type f -not -name '*.pyc' 2>/dev/null)

.PHONY: test demo bench lint format clean sanitize test-arm-kernels test-arm64 test-arm64-smoke \
	test-finn

PIP := $(BIN)/pip install --quiet --disable-pip-version-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The build requirements of pyproject.toml in the venv itself, and every install below with
# --no-build-isolation: CMake's build folder (build/<wheel tag>, pyproject's build-dir) then stays
# valid from one install to the next, so adding extras or reinstalling after an edit recompiles
# only what changed. (An isolated build hands CMake a new temporary nanobind each time: every
# kernel is compiled again.) cmake comes from PyPI where the machine has none.
$(VENV)/.build-deps: $(BIN)/python
	$(PIP) "scikit-build-core>=0.10" "nanobind>=2.4" $$(command -v cmake >/dev/null || echo "cmake>=3.18")
	touch $@

# torch is pinned here (the CPU build, installed from a local file on our machines);
# pyproject.toml itself accepts torch>=2.2. `make demo` installs the training extras only;
# `make test` adds the test, GPU and QONNX extras (no recompilation, above).
$(VENV)/.installed-train: $(VENV)/.build-deps $(SOURCES)
	$(PIP) "$(TORCH)"
	$(PIP) --no-build-isolation ".[train]"
	touch $@

$(VENV)/.installed: $(VENV)/.build-deps $(SOURCES)
	$(PIP) "$(TORCH)"
	$(PIP) --no-build-isolation ".[test,gpu,qonnx]"
	touch $@ $(VENV)/.installed-train

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

# The kernels built with ASan + UBSan, their tests under the sanitizers, and a bounded fuzzing
# run of the .bnn loader (tools/sanitize.sh; FUZZ_SECONDS=0 skips the fuzzing).
sanitize: $(VENV)/.installed
	tools/sanitize.sh $(BIN)/python

# The kernel test program (csrc/tests/kernel_test.cc) cross-compiled for aarch64 and run under
# qemu-aarch64 as a Cortex-A72 and as -cpu max (dot product): the NEON kernels against the
# reference. Needs aarch64-linux-gnu-g++ and qemu-aarch64, not the venv.
test-arm-kernels:
	tools/kernel_test.sh arm64

# The package on emulated arm64: Debian's arm64 Python under qemu-aarch64, the extension
# cross-compiled from CMakeLists.txt, the kernel / engine-input tests and the engine's
# bit-exactness against torch on exported models (tools/test_arm64.sh; ~10 minutes). The venv's
# interpreter goes as an absolute path, its symlink unresolved (CMake must see the venv's nanobind).
# test-arm64-smoke (CI): the same cross-built extension under both emulated CPUs, one exported
# model bit-identical to torch with every kernel variant, no pytest.
test-arm64: $(VENV)/.installed
	tools/test_arm64.sh $(abspath $(BIN))/python

test-arm64-smoke: $(VENV)/.installed
	tools/test_arm64.sh --smoke $(abspath $(BIN))/python

# FINN's compiler (finn-plus 1.6.1, no Vivado) on the QONNX exports for FINN: its default steps to
# one dataflow partition of hardware layers, FINN's executor against the engine on 100 images, its
# estimate reports (tests/backends/qonnx/test_finn.py). FINN gets its own environment,
# $(FINN_VENV), built by tools/finn_env.sh (~3 minutes on a warm pip cache).
FINN_VENV ?= build/venv-finn

test-finn: $(VENV)/.installed
	tools/finn_env.sh $(FINN_VENV) "$(TORCH)"
	BINARYNET_FINN_PYTHON=$(abspath $(FINN_VENV))/bin/python $(BIN)/python -m pytest -q \
	  tests/backends/qonnx/test_finn.py

demo: $(VENV)/.installed-train
	rm -rf runs/demo
	$(BIN)/binarynet train --recipe mnist-demo --out runs/demo

# clang-format for csrc/ (style in .clang-format), pinned so that every machine formats alike: the
# PyPI wheel, in the venv (a few MiB, no torch needed).
CLANG_FORMAT_VERSION := 23.1.5
CSRC_FILES = $(shell find csrc -type f \( -name '*.h' -o -name '*.cc' -o -name '*.c' -o -name '*.cpp' \) | sort)

$(VENV)/.clang-format-$(CLANG_FORMAT_VERSION): $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check "clang-format==$(CLANG_FORMAT_VERSION)"
	touch $@

# clang-format over csrc/ (fails on any file it would change; `make format` rewrites them), style
# (ruff) over every Python tree, types (mypy, configured in pyproject.toml) over src/.
lint: $(VENV)/.installed $(VENV)/.clang-format-$(CLANG_FORMAT_VERSION)
	@$(BIN)/clang-format --dry-run -Werror $(CSRC_FILES) || { \
	  echo "make lint: csrc/ is not formatted as .clang-format says; run 'make format'" \
	    "(clang-format $(CLANG_FORMAT_VERSION), installed into $(VENV))" >&2; exit 1; }
	$(BIN)/ruff check src tests benchmarks tools fuzz examples
	$(BIN)/ruff format --check src tests benchmarks tools fuzz examples
	$(BIN)/mypy

# Formats every C/C++ file under csrc/ in place (clang-format, pinned above).
format: $(VENV)/.clang-format-$(CLANG_FORMAT_VERSION)
	$(BIN)/clang-format -i $(CSRC_FILES)

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/mnist_mlp.py speed

clean:
	rm -rf build runs .pytest_cache
