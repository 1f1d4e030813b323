"""The C back-end (binarynet.backends.c): generated C99 gives the engine's classes and scores bit
for bit — on the host (strict C99, sanitizers, FMA contraction allowed), on Cortex-M4/M7/M55
under QEMU (the examples/cortex-m firmware) and on Armv8-A Linux under qemu-aarch64 — for the
shipped MNIST MLP, a ConvNet and random graphs; and its errors are one line.

Targets whose tools are missing are skipped with the reason (CI installs them: .ci/run)."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from binarynet import pretrained
from binarynet.backends import c as csource
from binarynet.backends import engine
from binarynet.cli import main
from binarynet.deploy import read_model
from binarynet.graph import bnnfile
from binarynet.graph.ops import Conv2d, Dense

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "fuzz"))
sys.path.insert(0, str(ROOT / "tools"))
import bnn_models as bm  # noqa: E402
import csource_targets as ct  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CONVNET = FIXTURES / "cifar10_convnet_tiny.pt"
MCU_IMAGES = 200
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")

need_cc = pytest.mark.skipif(not ct.have("cc"), reason="no host C compiler (cc)")
need_arm = pytest.mark.skipif(
    not ct.have("arm-none-eabi-gcc", "qemu-system-arm", "make"),
    reason="needs arm-none-eabi-gcc (gcc-arm-none-eabi, libnewlib-arm-none-eabi) and "
    "qemu-system-arm",
)
need_riscv = pytest.mark.skipif(
    not ct.have(*ct.BOARDS["rv32"].tools),
    reason="needs riscv64-unknown-elf-gcc (gcc-riscv64-unknown-elf, picolibc-riscv64-unknown-elf) "
    "and qemu-system-riscv32 (qemu-system-misc)",
)
# Every kernel variant the runtime can be forced to on a host C compiler: the XOR-popcount
# (carry-save, one popcount per word) × the popcount of a word (SWAR, byte table, builtin)
HOST_VARIANTS = [
    (f"{xor}-{pop}", (f"-DBNR_XOR_{xor}=1", f"-DBNR_POPCOUNT_{pop}=1"))
    for xor in ("CSA", "WORD")
    for pop in ("SWAR", "TABLE", "BUILTIN")
]
need_aarch64 = pytest.mark.skipif(
    not ct.have("aarch64-linux-gnu-gcc", "qemu-aarch64"),
    reason="needs aarch64-linux-gnu-gcc (gcc-aarch64-linux-gnu) and qemu-aarch64 (qemu-user)",
)


def _sanitizers_work(tmp: Path) -> bool:
    probe = tmp / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    done = subprocess.run(
        ["cc", "-fsanitize=address,undefined", str(probe), "-o", str(tmp / "probe")],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def _random_bnn(seed: int, tmp: Path) -> bnnfile.BNNFile:
    graph, tensors = bm.random_model(bm.RngChooser(np.random.default_rng(seed)))
    path = tmp / f"random{seed}.bnn"
    bnnfile.save(path, graph, tensors)
    return bnnfile.load(path)


def _emit(bnn: bnnfile.BNNFile, directory: Path, name: str) -> csource.CSource:
    return csource.write_c(bnn, directory, name)[0]


def _model(bnn: bnnfile.BNNFile) -> engine.Model:
    return engine.Model(bnn)


def _mnist_images(n: int) -> np.ndarray:
    from binarynet import data

    return np.ascontiguousarray(data.load_dataset("mnist").test.images[:n])


def _random_images(model: engine.Model, n: int, seed: int) -> np.ndarray:
    return bm.random_input(np.random.default_rng(seed), tuple(model.input_shape), n)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("csource")


@pytest.fixture(scope="module")
def shipped(workdir: Path) -> tuple[bnnfile.BNNFile, np.ndarray]:
    return bnnfile.load(pretrained.path("mnist-mlp-256")), _mnist_images(MCU_IMAGES)


@pytest.fixture(scope="module")
def convnet(workdir: Path) -> tuple[bnnfile.BNNFile, np.ndarray]:
    bnn = read_model(CONVNET)
    return bnn, _random_images(_model(bnn), MCU_IMAGES, 1)


@pytest.fixture(scope="module")
def wide(workdir: Path) -> tuple[bnnfile.BNNFile, np.ndarray]:
    """128-channel 3×3 convs on 6×6 (the benchmark's layer, smaller): popcounts of 1 152 bits
    per output, past every 8- and 16-bit partial sum of the kernels."""
    bnn = ct.wide_conv_model(workdir / "wide.bnn", 6, 2)
    return bnn, _random_images(_model(bnn), 4, 2)


# --------------------------------------------------------------------------------------------
# What is generated
# --------------------------------------------------------------------------------------------


def test_generated_files_are_self_contained(workdir: Path) -> None:
    bnn = bnnfile.load(pretrained.path())
    source = csource.emit_c(bnn, "digits")
    assert set(source.files) == {"digits.h", "digits.c"}
    includes = {
        line.split()[1]
        for text in source.files.values()
        for line in text.splitlines()
        if line.startswith("#include")
    }
    # <arm_neon.h> / <arm_mve.h> only where the target has NEON (Armv8-A: vcnt) or Helium (MVE),
    # from its predefined macros
    assert includes == {
        "<stdint.h>", "<stddef.h>", "<string.h>", '"digits.h"', "<arm_neon.h>", "<arm_mve.h>"
    }  # fmt: skip
    neon_guard = "#if defined(__aarch64__) && defined(__ARM_NEON) && defined(__GNUC__)\n"
    assert neon_guard + "#include <arm_neon.h>" in source.source
    assert "#if defined(BNR_XOR_MVE)\n#include <arm_mve.h>" in source.source
    assert "#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)" in source.source
    for needle in ("malloc", "double"):
        assert needle not in source.source, needle  # no heap, no double precision
    # no global mutable state: every file-scope object is const (functions are not objects)
    objects = re.findall(r"^(?:static )?(?!typedef)\w[\w ]*?\b\w+\s*(?:\[[^\]]*\])?\s*(?:=|;)",
                         source.source, re.MULTILINE)  # fmt: skip
    assert objects and all(" const " in f" {o} " for o in objects), objects
    assert "int digits_predict(const uint8_t *input, float *scores, void *arena);" in source.header
    assert f"#define DIGITS_INPUT_BYTES {28 * 28}\n" in source.header
    assert "#define DIGITS_NUM_CLASSES 10\n" in source.header
    assert f"#define DIGITS_ARENA_BYTES {source.arena_bytes}\n" in source.header
    # every weight bit is in the constants: 784·256 + 256·256 + 256·10 bits, rows padded to 64
    weight_bits = 256 * 832 + 256 * 256 + 10 * 256
    assert source.const_bytes >= weight_bits // 8
    assert source.const_bytes < weight_bits // 8 + 8 * 1024


def _readme_c_snippet(path: Path) -> str:
    """The ```c block of ``path``'s microcontroller section."""
    text = path.read_text(encoding="utf-8")
    blocks = re.findall(r"```c\n(.*?)```", text, re.DOTALL)
    assert blocks, f"no C block in {path}"
    return blocks[0]


@need_cc
@pytest.mark.parametrize("doc", ["README.md", "docs/mcu.md"])
def test_readme_c_snippet_compiles_with_werror(tmp_path: Path, doc: str) -> None:
    """The documented C snippet, plus the natural int loop over the classes and a size_t use of
    the byte counts, compiles under -std=c99 -Wall -Wextra -Werror -pedantic against the exported
    model, links and runs: the header's counts are plain int constants."""
    snippet = _readme_c_snippet(ROOT / doc)
    outer = [ln for ln in snippet.splitlines() if ln.startswith(("#include", "static "))]
    inner = [ln for ln in snippet.splitlines() if ln.strip() and ln not in outer]
    assert any("mnist_mlp_predict" in ln for ln in inner), snippet
    csource.write_c(bnnfile.load(pretrained.path()), tmp_path, "mnist_mlp")
    program = "\n".join(
        [
            "#include <stdint.h>",
            "#include <stdio.h>",
            "#include <string.h>",
            *outer,
            "static int classify(const uint8_t *image) {",
            *inner,
            "    for (int i = 0; i < MNIST_MLP_NUM_CLASSES; i++) {",
            "        if (scores[i] > scores[digit]) return -1;",
            "    }",
            "    return digit;",
            "}",
            "int main(void) {",
            "    static uint8_t image[MNIST_MLP_INPUT_BYTES];",
            "    size_t bytes = MNIST_MLP_INPUT_BYTES;",
            "    memset(image, 0, bytes);",
            "    if (sizeof arena < (size_t)MNIST_MLP_ARENA_BYTES) return 1;",
            "    for (int i = 0; i < MNIST_MLP_INPUT_BYTES; i++) image[i] = (uint8_t)(i % 251);",
            '    printf("%d\\n", classify(image));',
            "    return 0;",
            "}",
            "",
        ]
    )
    (tmp_path / "snippet.c").write_text(program)
    exe = tmp_path / "snippet"
    cmd = ["cc", *ct.STRICT, "-O1", f"-I{tmp_path}", str(tmp_path / "snippet.c")]
    cmd += [str(tmp_path / "mnist_mlp.c"), "-o", str(exe)]
    built = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    done = subprocess.run([str(exe)], capture_output=True, text=True, check=True)
    assert 0 <= int(done.stdout) < 10


def test_default_name_is_the_model_name() -> None:
    bnn = bnnfile.load(pretrained.path())
    assert csource.emit_c(bnn).name == "mnist_mlp"
    graph = dataclasses.replace(bnn.graph, provenance={"model": "9 lives"})
    assert csource.default_name(graph) == "bnn_model"


@pytest.mark.parametrize("bad", ["9net", "net-1", "int", "__x", "a" * 41, "", "naïve"])
def test_bad_names_are_refused(bad: str) -> None:
    bnn = bnnfile.load(pretrained.path())
    with pytest.raises(csource.CSourceError, match="not usable as a C name"):
        csource.emit_c(bnn, bad)


def test_gcn_zca_model_is_refused_with_what_to_do() -> None:
    graph, tensors = bm.random_model(bm.RngChooser(np.random.default_rng(5)))
    loaded = bnnfile.validate(bnnfile.graph_from_json(graph), tensors)
    zca = dataclasses.replace(loaded.graph, preprocess={"kind": "gcn-zca", "version": 1})
    with pytest.raises(csource.CSourceError) as err:
        csource.emit_c(dataclasses.replace(loaded, graph=zca))
    message = str(err.value)
    assert "GCN + ZCA" in message
    assert "microcontroller" in message
    assert "--preprocess pixels" in message


# --------------------------------------------------------------------------------------------
# Host: strict C99, sanitizers, FMA contraction
# --------------------------------------------------------------------------------------------


def _check_hosted(
    bnn: bnnfile.BNNFile, images: np.ndarray, directory: Path, name: str, **kw: object
) -> None:
    want = ct.expected_lines(_model(bnn), images)
    got = ct.run_hosted(directory, name, images, **kw)  # type: ignore[arg-type]
    assert ct.compare(got, want) == [], f"{name}: first differences {ct.compare(got, want)[:5]}"


@need_cc
def test_host_shipped_mlp_and_convnet(workdir: Path, shipped, convnet) -> None:
    for label, (bnn, images) in (("mlp", shipped), ("convnet", convnet)):
        _emit(bnn, workdir / label, label)
        _check_hosted(bnn, images, workdir / label, label)


@need_cc
def test_host_random_graphs_strict_c99(workdir: Path) -> None:
    """60 random graphs (MLPs and ConvNets, uint8 and bit inputs, odd sizes, K not a multiple of
    32 or 64, strides, padding wider than the kernel, pools, thresholds of every kind: ties,
    γ < 0 down-sets, constants), 12 images each with the extreme pixels mixed in, built with
    -std=c99 -Wall -Wextra -Werror -pedantic."""
    seen: set[str] = set()
    for seed in range(60):
        bnn = _random_bnn(seed, workdir)
        for i, op in enumerate(bnn.graph.ops):
            x = bnn.values[i]
            seen.add(f"{op.type}:{x.kind}")
            if isinstance(op, Conv2d) and max(op.padding) > 0:
                seen.add(f"padded-conv:{x.kind}")
            if isinstance(op, Dense) and len(x.shape) == 3:
                seen.add("dense-over-hwc")
        d = workdir / f"r{seed}"
        _emit(bnn, d, "net")
        _check_hosted(bnn, _random_images(_model(bnn), 12, seed), d, "net")
    wanted = {
        "dense:u8",
        "dense:bits",
        "conv2d:u8",
        "conv2d:bits",
        "padded-conv:u8",
        "padded-conv:bits",
        "maxpool2d:int32",
        "threshold:int32",
        "scores:int32",
        "dense-over-hwc",
    }
    assert wanted <= seen, wanted - seen


def _pad_value_bnns(workdir: Path) -> list[tuple[str, bnnfile.BNNFile, np.ndarray]]:
    """±1-padded binary convolutions: the trained torch cases padded with −1 and +1, and random
    graphs whose padded convolutions on bits pad with 0, +1 or −1."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from torch_cases import get_case

    cases = []
    for name in ("pm1-epoch-std", "pm1-trained-std", "pp1-trained-std"):
        case = get_case(name)
        cases.append((name, bnnfile.load(case.path), np.concatenate([case.x[:16], case.x[-4:]])))
    for seed in range(300, 312):
        rng = bm.RngChooser(np.random.default_rng(seed))
        graph, tensors = bm.random_model(rng, pad_values=True)
        path = workdir / f"pad{seed}.bnn"
        bnnfile.save(path, graph, tensors)
        bnn = bnnfile.load(path)
        cases.append((f"pad{seed}", bnn, _random_images(_model(bnn), 10, seed)))
    pads = {getattr(op, "pad_value", 0) for _, bnn, _ in cases for op in bnn.graph.ops}
    assert {-1, 1} <= pads, pads
    return cases


@need_cc
@pytest.mark.parametrize("xor", ["CSA", "WORD"])
def test_host_pm1_padded_convolutions(workdir: Path, xor: str) -> None:
    """A padded tap of a ±1 input adds pad·(C − 2·#{w = −1}): the C output equals the engine's
    classes and score bits with each bit-level kernel."""
    for name, bnn, images in _pad_value_bnns(workdir):
        d = workdir / f"{name}-{xor}"
        _emit(bnn, d, "net")
        _check_hosted(bnn, images, d, "net", cflags=(*ct.STRICT, "-O2", f"-DBNR_XOR_{xor}"))


@need_arm
@pytest.mark.parametrize("board", ["m4", "m55"])
def test_cortex_m_pm1_padded_convolutions(workdir: Path, board: str) -> None:
    for name, bnn, images in _pad_value_bnns(workdir)[:4]:
        d = workdir / f"mcu-{name}"
        _emit(bnn, d, "net")
        _check_firmware(bnn, images, d, "net", board)


@need_cc
@pytest.mark.parametrize("xor", ["CSA", "WORD"])
def test_host_sanitizers_and_fma_contraction(workdir: Path, convnet, wide, xor: str) -> None:
    """ASan + UBSan (any report fails), and -ffp-contract=fast with FMA instructions available:
    the scores stay bit-identical (each float32 step is stored to a volatile); for each XOR-
    popcount kernel."""
    if not _sanitizers_work(workdir):
        pytest.skip("cc cannot build with -fsanitize=address,undefined here")
    force = (f"-DBNR_XOR_{xor}=1",)
    sanitize = (*ct.STRICT, *force, "-O1", "-g", "-fsanitize=address,undefined")
    sanitize = (*sanitize, "-fno-sanitize-recover")
    fma = (*ct.STRICT, *force, "-O3", "-ffp-contract=fast")
    if subprocess.run(["cc", "-dumpmachine"], capture_output=True, text=True).stdout.startswith(
        "x86_64"
    ):
        fma = (*fma, "-mfma")
    models = [(convnet[0], convnet[1][:40], "convnet"), (wide[0], wide[1][:2], "wide")]
    models += [(_random_bnn(seed, workdir), None, f"s{seed}") for seed in range(100, 115)]
    for bnn, images, label in models:
        if images is None:
            images = _random_images(_model(bnn), 8, 7)
        d = workdir / f"san-{label}"
        _emit(bnn, d, "net")
        _check_hosted(bnn, images, d, "net", cflags=sanitize, tag=f"asan-{xor}")
        _check_hosted(bnn, images, d, "net", cflags=fma, tag=f"fma-{xor}")


@need_cc
@pytest.mark.parametrize(("variant", "flags"), HOST_VARIANTS, ids=[v for v, _ in HOST_VARIANTS])
def test_kernel_variants_agree(workdir: Path, shipped, wide, variant: str, flags) -> None:
    """Each forced variant gives the engine's bits on random graphs, the shipped MLP and the
    128-channel convs."""
    cflags = (*ct.STRICT, "-O2", *flags)
    for seed in (3, 11, 17):
        bnn = _random_bnn(seed, workdir)
        d = workdir / f"variant-r{seed}"
        _emit(bnn, d, "net")
        images = _random_images(_model(bnn), 10, seed)
        _check_hosted(bnn, images, d, "net", cflags=cflags, tag=variant)
    for label, (bnn, images) in (("mlp", (shipped[0], shipped[1][:50])), ("wide", wide)):
        d = workdir / f"variant-{label}"
        _emit(bnn, d, "net")
        _check_hosted(bnn, images, d, "net", cflags=cflags, tag=variant)


# --------------------------------------------------------------------------------------------
# Cortex-M under QEMU (examples/cortex-m), Armv8-A Linux under qemu-aarch64
# --------------------------------------------------------------------------------------------


def _check_firmware(
    bnn: bnnfile.BNNFile, images: np.ndarray, directory: Path, name: str, board: str,
    extra: str = "", opt: str = "-O2",
) -> None:  # fmt: skip
    want = ct.expected_lines(_model(bnn), images)
    # the images are constants: code memory on MPS2, the 8 MiB QSPI window on the AN547
    elf = ct.build_firmware(directory, name, images, board, opt=opt, extra=extra)
    run = ct.run_firmware(elf, board)
    assert run.stack_bytes > 0
    assert all(c > 0 for c in run.instructions)
    bad = ct.compare(run.lines, want)
    assert bad == [], f"{name} on {board} {extra}: {len(bad)} images differ, first {bad[:5]}"


# (board, forced variant): each core's own choice, and the portable ones forced on it
FIRMWARE_VARIANTS = [
    ("m4", ""),  # carry-save, USADA8
    ("m4", "-DBNR_XOR_WORD"),
    ("m7", ""),
    ("m55", ""),  # MVE
    ("m55", "-DBNR_XOR_CSA"),
]


@need_arm
@pytest.mark.parametrize(("board", "extra"), FIRMWARE_VARIANTS)
def test_cortex_m_shipped_mlp_and_convnet(
    workdir: Path, shipped, convnet, wide, board: str, extra: str
) -> None:
    for label, (bnn, images) in (("mlp", shipped), ("convnet", convnet), ("wide", wide)):
        d = workdir / f"mcu-{label}"
        _emit(bnn, d, label)
        _check_firmware(bnn, images, d, label, board, extra)


@need_arm
@pytest.mark.parametrize("opt", ["-O0", "-Os", "-O3"])
def test_cortex_m_other_optimisation_levels(workdir: Path, wide, convnet, opt: str) -> None:
    """The firmware and the kernels at other -O levels (at -O3 GCC vectorizes the start-up's
    loops with MVE on the M55, so the start-up enables MVE before them)."""
    for board in ("m4", "m55"):
        for label, (bnn, images) in (("wide", wide), ("convnet", (convnet[0], convnet[1][:20]))):
            d = workdir / f"opt-{label}"
            _emit(bnn, d, label)
            _check_firmware(bnn, images, d, label, board, opt=opt)


@need_arm
def test_cortex_m_random_graphs(workdir: Path) -> None:
    for seed in range(200, 206):
        bnn = _random_bnn(seed, workdir)
        d = workdir / f"mcu-r{seed}"
        _emit(bnn, d, "net")
        images = _random_images(_model(bnn), 6, seed)
        _check_firmware(bnn, images, d, "net", ("m4", "m7", "m55")[seed % 3])


@need_riscv
@pytest.mark.parametrize(
    ("board", "extra"), [("rv32", ""), ("rv32-zbb", ""), ("rv32-zbb", "-DBNR_XOR_CSA")]
)
def test_riscv_shipped_mlp_convnet_and_random_graphs(
    workdir: Path, shipped, convnet, wide, board: str, extra: str
) -> None:
    """RV32IMC (carry-save, SWAR popcount) and RV32IMC + Zbb (cpop) under qemu-system-riscv32
    -M virt, the examples/riscv firmware."""
    models = [("mlp", *shipped), ("convnet", *convnet), ("wide", *wide)]
    for seed in range(400, 404):
        bnn = _random_bnn(seed, workdir)
        models.append((f"r{seed}", bnn, _random_images(_model(bnn), 6, seed)))
    for label, bnn, images in models:
        d = workdir / f"rv-{label}"
        _emit(bnn, d, "net")
        _check_firmware(bnn, images, d, "net", board, extra)


@need_riscv
def test_riscv_zbb_uses_cpop(workdir: Path, shipped) -> None:
    """Under -march=rv32imc_zbb the generated code counts bits with cpop (and without Zbb not)."""
    d = workdir / "rv-cpop"
    _emit(shipped[0], d, "net")
    for board, want in (("rv32-zbb", True), ("rv32", False)):
        elf = ct.build_firmware(d, "net", shipped[1][:1], board)
        text = subprocess.run(
            ["riscv64-unknown-elf-objdump", "-d", str(elf)], capture_output=True, text=True
        ).stdout
        assert ("\tcpop\t" in text) == want, board


@need_aarch64
@pytest.mark.parametrize("cpu", ["cortex-a72", "max"])
def test_armv8_linux(workdir: Path, shipped, convnet, cpu: str) -> None:
    flags = (*ct.STRICT, "-O2", "-static")
    runner = ("qemu-aarch64", "-cpu", cpu)
    models = [("mlp", *shipped), ("convnet", *convnet)]
    for seed in range(300, 306):
        bnn = _random_bnn(seed, workdir)
        models.append((f"r{seed}", bnn, _random_images(_model(bnn), 10, seed)))
    for label, bnn, images in models:
        d = workdir / f"a64-{label}"
        _emit(bnn, d, "net")
        want = ct.expected_lines(_model(bnn), images)
        got = ct.run_hosted(
            d, "net", images, flags, cc="aarch64-linux-gnu-gcc", runner=runner, tag=f"a64-{cpu}"
        )
        assert ct.compare(got, want) == [], label


# --------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------


@need_cc
def test_cli_export_c_from_checkpoint_and_bnn(tmp_path: Path, capsys) -> None:
    assert main(["export", str(CONVNET), str(tmp_path / "a"), "--format", "c"]) == 0
    out = capsys.readouterr().out
    assert "cifar10_convnet_predict(input, scores, arena)" in out
    assert (tmp_path / "a" / "cifar10_convnet.c").is_file()
    assert main(["export", "pretrained:mnist-mlp-256", str(tmp_path / "b"), "--format", "c",
                 "--name", "digits"]) == 0  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["digits.c", "digits.h"]
    bnn = bnnfile.load(pretrained.path())
    images = _mnist_images(20)
    _check_hosted(bnn, images, tmp_path / "b", "digits")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["@OUT@", "--format", "c", "--name", "9x"], "not usable as a C name"),
        (["@OUT@", "--name", "net"], "--name is for --format c"),
        (["@OUT@.c", "--format", "c"], "looks like a file name"),
        (["@FILE@/sub", "--format", "c"], "is a file, not a directory"),
    ],
)
def test_cli_export_c_errors(tmp_path: Path, capsys, argv: list[str], message: str) -> None:
    (tmp_path / "afile").write_text("x")
    subs = {"@OUT@": str(tmp_path / "out"), "@FILE@": str(tmp_path / "afile")}
    for key, value in subs.items():
        argv = [a.replace(key, value) for a in argv]
    assert main(["export", "pretrained:mnist-mlp-256", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # nothing written


def test_cli_pretrained_names(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:  # an argument error: argparse's usage line, exit 2
        main(["eval", "pretrained:nope"])
    assert exit_.value.code == 2
    assert (
        "no pretrained model 'nope'; expected one of ['mnist-mlp-256']" in capsys.readouterr().err
    )


def test_cli_pretrained_everywhere(tmp_path: Path, capsys) -> None:
    """pretrained:NAME works wherever a .bnn is taken, and is named as a .bnn where a checkpoint
    is expected."""
    assert main(["bench", "pretrained:mnist-mlp-256", "--batch", "2", "--threads", "1",
                 "--repeat", "2", "--warmup", "1"]) == 0  # fmt: skip
    assert "images/s" in capsys.readouterr().out
    assert main(["export", "pretrained:mnist-mlp-256", str(tmp_path / "m.bnn")]) == 2
    err = capsys.readouterr().err
    assert "mnist-mlp-256.bnn is a .bnn model file" in err
    assert not (tmp_path / "m.bnn").exists()
