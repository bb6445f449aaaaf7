"""Every Python example in README.md runs as written (and prints what it says)."""

import contextlib
import importlib.util
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def _needs(block):
    return [m for m in ("torch", "jax") if re.search(rf"^import {m}\b", block, flags=re.M)]


@pytest.mark.parametrize("block", BLOCKS, ids=[f"example{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(block):
    for module in _needs(block):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} not installed")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, str(README), "exec"), {})
    # Printed values quoted in the example's comments must be what it prints.
    printed = " ".join(out.getvalue().split())
    for expected in re.findall(r"# (\[[^\]]*\])", block):
        assert " ".join(expected.split()) in printed, (expected, printed)


def test_main_job_passes_on_numpy(capsys):
    # README's first command runs `xploss-conformance` with its defaults: every
    # function and every dtype NumPy has, float16 included (not the CI's quick
    # profile). Its NumPy part must pass.
    from xploss.conformance.cli import main

    assert main(["--backend", "numpy"]) == 0, capsys.readouterr().out[-3000:]
