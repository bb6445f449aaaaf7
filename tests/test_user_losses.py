"""Users' own losses: the worked example (examples/user_loss.py), the snippets of
docs/user-losses.md as written, and a planted bug the suite must catch.

Kept fast: NumPy and torch (the differentiable backend every CI installs), in
float64/float32, one compiled case per cell.
"""

import contextlib
import importlib.util
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import array_api_compat
import numpy as np
import pytest
from xploss.conformance import Case, Entry, check, load_catalog, user

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DOC = ROOT / "docs" / "user-losses.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)

sys.path.insert(0, str(EXAMPLES))
import user_loss  # noqa: E402  (examples/ is not a package)

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="torch not installed")
FAST = {"backends": ["numpy", "torch"], "quick": True}


@needs_torch
def test_example_stable_form_passes_everywhere_checked():
    report = check(user_loss.STABLE, **FAST)
    assert {c.target for c in report.cells} >= {"numpy:cpu", "torch:cpu"}
    report.assert_passed()
    assert {c.grad for c in report.cells if c.target == "torch:cpu"} == {"ok"}
    assert max(c.worst_ulp for c in report.cells) < 1.5


@needs_torch
def test_example_naive_form_fails_for_the_expected_reasons():
    report = check(user_loss.NAIVE, **FAST)
    assert not report.passed
    kinds = report.failures_by_kind()
    # Cancellation near 0 (hundreds of ULP at x = 0.0248), inf/NaN at and around 0.
    accuracy = "\n".join(kinds["accuracy"])
    assert re.search(r"\[branches\] error \d{3,}(\.\d+)? ULP", accuracy)
    assert "inputs (0.0) -> np.float64(nan), exact np.float64(0.5)" in accuracy
    # Non-finite torch gradients where the exact value is finite.
    assert any(f.startswith("torch:cpu") and "not finite" in f for f in kinds["gradient"])
    text = str(report)
    assert "FAILED" in text
    assert "reproduce('user_loss:NAIVE'" in text


def test_docs_contain_the_example_exactly():
    assert (EXAMPLES / "user_loss.py").read_text() in BLOCKS


@needs_torch
def test_docs_snippets_run_as_written():
    """Blocks run in order in one namespace, as a reader would paste them; the
    pytest block's tests are called for each of their parameter sets."""
    namespace = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in BLOCKS:
            exec(compile(block, str(DOC), "exec"), namespace)
    assert "PASSED" in out.getvalue()
    tests = {k: v for k, v in namespace.items() if k.startswith("test_") and callable(v)}
    assert tests, "the pytest block must define tests"
    for name, fn in tests.items():
        (mark,) = fn.pytestmark
        argnames, values = mark.args
        argnames = [argnames] if isinstance(argnames, str) and "," not in argnames \
            else list(argnames)
        assert values, f"{name}: empty parametrisation"
        for v in values:
            fn(**dict(zip(argnames, v if len(argnames) > 1 else (v,), strict=True)))


def test_parametrize_ids_and_never_empty():
    mark = user.parametrize(backends=["numpy"], quick=True)
    assert mark.args[0] == ("target", "dtype")
    assert mark.kwargs["ids"] == ["numpy:cpu-float64", "numpy:cpu-float32"]
    with pytest.raises(ValueError, match="no installed target"):
        user.parametrize(backends=["no-such-backend"])


def test_case_tables_as_list_or_mapping():
    x = np.array([0.5, 2.0])

    def square(a):
        return a * a

    by_mapping = user.entry(square, lambda v: v * v, {"points": x})
    by_list = user.entry(square, lambda v: v * v, [Case("points", (x,))])
    for ent in (by_mapping, by_list):
        assert [c.name for c in ent.cases("float64")] == ["points"]
        assert check(ent, backends=["numpy"], quick=True).passed
    with pytest.raises(TypeError, match="its reference and its cases"):
        check(square)


# ------------------------------------------------------------- a planted bug


def _naive_softplus(x):
    xp = array_api_compat.array_namespace(x)
    return xp.log(1.0 + xp.exp(x))


_SOFTPLUS = load_catalog()["softplus"]
# A private entry: the registered softplus's reference and cases, a naive body.
PLANTED = Entry("naive_softplus", _naive_softplus, _SOFTPLUS.reference, _SOFTPLUS.cases)


def test_planted_naive_softplus_is_caught_with_a_reproduction():
    report = check(PLANTED, backends=["numpy"], dtypes=["float64"])
    assert not report.passed
    (failure, *_) = [f for f in report.failures_by_kind()["accuracy"] if "[special]" in f]
    # The minimal reproducing case: the worst element's input, result and exact value.
    assert re.search(r"at index \(\d+,\): inputs \(\S+\) -> \S+, exact \S+", failure)
    # And a command that reproduces it in a fresh interpreter.
    (command,) = re.findall(r'^\s*(python -c ".*")$', failure, flags=re.M)
    assert "reproduce('test_user_losses:PLANTED', 'special', 'numpy:cpu', 'float64')" in command
    done = subprocess.run(shlex.split(command), cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "naive_softplus(*args" in done.stdout
    assert "ULP:" in done.stdout
