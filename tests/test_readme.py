"""The README and the docs cannot rot: the Python example runs as written, every ``binarynet``
command line of a shell block parses with the real parser, the README's commands on the shipped
model run, and every relative link points to a file and heading that exist."""

from __future__ import annotations

import re
import shlex
import unicodedata
from pathlib import Path

import numpy as np
import pytest

import binarynet.training.trainer
from binarynet.cli import build_parser, main
from binarynet.data import Split, Splits, mnist_sample

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
# docs/architecture.md is kept by its own tests' owner; every other page is checked here.
PAGES = [README, *sorted(p for p in (REPO / "docs").glob("*.md") if p.name != "architecture.md")]


def python_example() -> str:
    """The first ``python`` code block of the README."""
    blocks = [text for language, text in code_blocks(README) if language == "python"]
    assert blocks, "README.md has no ```python block"
    return blocks[0]


def code_blocks(page: Path) -> list[tuple[str, str]]:
    """(language, text) of every fenced code block of a page, fences paired in order."""
    blocks, language, lines = [], None, []
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            if language is None:
                language, lines = line[3:].strip(), []
            else:
                blocks.append((language, "\n".join(lines) + "\n"))
                language = None
        elif language is not None:
            lines.append(line)
    assert language is None, f"{page.name}: a code block is not closed"
    return blocks


def _binarynet_args(words: list[str]) -> list[str] | None:
    """The arguments of ``binarynet ARGS`` or ``... -m binarynet.cli ARGS``, else None."""
    if words[:1] == ["binarynet"]:
        return words[1:]
    for i in range(len(words) - 1):
        if words[i : i + 2] == ["-m", "binarynet.cli"]:
            return words[i + 2 :]
    return None


def shell_commands(page: Path) -> list[list[str]]:
    """The ``binarynet`` command lines of a page's ``bash`` (or unlabelled) code blocks, as
    argument lists without the program name: continuations joined, comments, pipes and
    ``&&`` / ``;`` chains split; ``torchrun ... -m binarynet.cli ARGS`` gives ARGS."""
    commands = []
    for language, block in code_blocks(page):
        if language not in ("bash", "sh", ""):
            continue
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            segment: list[str] = []
            for word in [*words, ";"]:
                if word not in ("|", "&&", ";"):
                    segment.append(word)
                    continue
                args = _binarynet_args(segment)
                if args is not None:
                    commands.append(args)
                segment = []
    return commands


def test_readme_python_example_trains_exports_and_predicts(tmp_path, monkeypatch, capsys):
    code = python_example()
    for step in ("Trainer(", "export_checkpoint(", "engine.load(", ".predict(", "export_c("):
        assert step in code
    s = mnist_sample()  # the example's data, cut to a tenth so that the test takes seconds
    small = Splits(
        Split(s.train.images[:800], s.train.labels[:800]),
        Split(s.valid.images[:200], s.valid.labels[:200]),
        Split(s.test.images[:200], s.test.labels[:200]),
        name="mnist-sample-small",
    )
    monkeypatch.setattr(binarynet.training.trainer, "load_splits", lambda cfg: small)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    out = capsys.readouterr().out
    match = re.search(r"test error (\d+\.\d\d)%", out)
    assert match, out
    error = float(match.group(1)) / 100
    assert error < 0.5  # trained: far better than chance (90 %)
    predicted, labels = namespace["predicted"], small.test.labels
    assert error == pytest.approx(np.mean(predicted != labels), abs=5e-5)
    assert (tmp_path / "runs" / "api" / "best.pt").is_file()
    assert (tmp_path / "runs" / "api.bnn").is_file()
    assert sorted(p.suffix for p in (tmp_path / "runs" / "api-c").iterdir()) == [".c", ".h"]
    assert 20 < float(out.strip().splitlines()[-1]) < 32  # the compression, float32 / deployed


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_binarynet_command_line_parses(page, capsys):
    commands = shell_commands(page)
    parser = build_parser()
    for args in commands:
        try:
            parsed = parser.parse_args(args)
        except SystemExit as exit:  # --help exits 0; a wrong option exits 2
            assert exit.code == 0, f"{page.name}: binarynet {shlex.join(args)}"
            continue
        assert parsed.command, args
    capsys.readouterr()


def test_readme_shows_every_command_and_format():
    commands = shell_commands(README)
    assert {args[0] for args in commands if args} >= {
        "train",
        "export",
        "eval",
        "bench",
        "summary",
        "plot",
    }
    formats = {args[args.index("--format") + 1] for args in commands if "--format" in args}
    assert formats == {"c", "qonnx"}
    assert ["--help"] in commands


def test_readme_commands_on_the_shipped_model_run(tmp_path, monkeypatch, capsys):
    """The README's commands that need no training (those on ``pretrained:`` and ``--gemm``)
    run as written, in a fresh directory."""
    monkeypatch.chdir(tmp_path)
    runnable = [a for a in shell_commands(README) if any("pretrained:" in w for w in a)]
    runnable += [a for a in shell_commands(README) if a[:2] == ["bench", "--gemm"]]
    assert len(runnable) >= 6
    for args in runnable:
        if "qonnx" in args:
            pytest.importorskip("onnx")
        if args[0] == "bench":
            args = [*args, "--repeat", "2", "--warmup", "1"]
        assert main(args) == 0, args
    capsys.readouterr()
    assert (tmp_path / "firmware" / "model" / "mnist_mlp.h").is_file()
    assert (tmp_path / "mnist.onnx").is_file()


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces → '-'."""
    text = re.sub(r"[`*_]|\[|\]\([^)]*\)", "", heading).strip().lower()
    kept = "".join(c for c in text if c in " -" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def prose(page: Path) -> str:
    """A page without its code blocks."""
    kept, fenced = [], False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            kept.append(line)
    return "\n".join(kept)


def _anchors(page: Path) -> set[str]:
    text = prose(page)
    return {_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_point_to_files_and_headings(page):
    text = prose(page)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), f"{page.name}: {target}"


def test_readme_is_short_and_says_what_is_not_how_it_came_to_be():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    for phrase in (r"\bissue \d+", r"\bused to\b", r"\bno longer\b", r"\bbefore this change\b"):
        assert not re.search(phrase, text, re.I), phrase


TRACKER_REFERENCE = re.compile(r"\b(?:issue|ticket)s?\s+#?\d+", re.I)


def test_no_file_cites_an_issue_tracker_the_repository_does_not_ship():
    """Code, tests and docs say what the code does and why, not which tracker entry asked for it
    (a citation of another project's tracker is a URL; results JSON is data)."""
    repo = README.parent
    folders = ("src", "tests", "docs", "csrc", "benchmarks", "tools", "fuzz", "examples")
    files = [p for d in folders for p in (repo / d).rglob("*") if p.is_file()]
    files += [README, repo / "Makefile"]
    found = []
    for path in files:
        if path.suffix not in (".py", ".md", ".c", ".h", ".cc", ".sh", ".txt", "") or (
            "results" in path.parts
        ):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for line in text.splitlines():
            if TRACKER_REFERENCE.search(line):
                found.append(f"{path.relative_to(repo)}: {line.strip()[:80]}")
    assert not found, found
