"""The conformance suite under pytest: one test per function × target × dtype,
and one cross-backend agreement test per function × dtype.

Ids read like ``test_cell[cross_entropy-torch:cpu-float32]``; a failure message
lists every failing case with a copy-pasteable reproduction command.
"""

import os

import pytest
from xploss.conformance import load_catalog
from xploss.conformance.runner import agreement, run_cell
from xploss.conformance.suite import default_dtypes

from xploss import backends

TARGETS = backends.targets()  # conftest.py has prepared them (JAX x64)

REGISTRY = load_catalog()
# CI runs the quick profile (16-bit dtypes in the full one, XPLOSS_FULL=1).
QUICK = os.environ.get("XPLOSS_FULL", "") != "1"
CELLS = [(name, t, dtype) for name in REGISTRY for t in TARGETS
         for dtype in default_dtypes(t, quick=QUICK)]
assert CELLS, "the conformance parametrisation must never be empty"

_results = {}


def _cell(name, target, dtype):
    key = (name, target.id, dtype)
    if key not in _results:
        _results[key] = run_cell(REGISTRY[name], target, dtype,
                                 compile_cases=1 if QUICK else None)
    return _results[key]


@pytest.mark.parametrize(("name", "target", "dtype"), CELLS,
                         ids=[f"{n}-{t.id}-{d}" for n, t, d in CELLS])
def test_cell(name, target, dtype):
    cell = _cell(name, target, dtype)
    assert cell.passed, "\n".join(cell.failures)


AGREE = sorted({(name, dtype) for name, _, dtype in CELLS})


@pytest.mark.parametrize(("name", "dtype"), AGREE, ids=[f"{n}-{d}" for n, d in AGREE])
def test_backends_agree(name, dtype):
    cells = [_cell(name, t, dtype) for t in TARGETS if dtype in default_dtypes(t, quick=QUICK)]
    assert len(cells) >= 2 or len(TARGETS) < 2
    failures = agreement(cells)
    assert not failures, "\n".join(failures)
