"""The registry covers the public API, and the suite catches a planted bug."""

import inspect

import numpy as np
import pytest
from helpers import naive_softplus, value_targets
from xploss.conformance import Entry, load_catalog
from xploss.conformance.runner import run_cell

import xploss
from xploss import backends

REGISTRY = load_catalog()
#: Public names that are not loss functions (the validation-mode context manager).
NOT_LOSSES = {"validation"}


def test_every_public_function_is_registered():
    assert set(xploss.__all__) == set(REGISTRY) | NOT_LOSSES


@pytest.mark.parametrize("name", xploss.__all__)
def test_signature_arrays_positional_options_keyword(name):
    params = inspect.signature(getattr(xploss, name)).parameters.values()
    for p in params:
        if p.default is inspect.Parameter.empty:
            assert p.kind is inspect.Parameter.POSITIONAL_ONLY, p
        else:
            assert p.kind is inspect.Parameter.KEYWORD_ONLY, p


@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_entry_has_cases(name, dtype):
    assert REGISTRY[name].cases(dtype)


def test_planted_naive_softplus_is_caught():
    """The textbook formula overflows and underflows: the suite must say where."""
    good = REGISTRY["softplus"]
    planted = Entry("softplus", naive_softplus, good.reference, good.cases)
    (numpy_cpu,) = backends.get("numpy").targets()
    with np.errstate(all="ignore"):
        cell = run_cell(planted, numpy_cpu, "float64")
    assert not cell.passed
    text = "\n".join(cell.failures)
    assert "[special]" in text
    assert "reproduce('softplus', 'special', 'numpy:cpu', 'float64')" in text


def _host_branch_softplus(x):
    """Correct eagerly, but reads a value on the host: no vmap can trace it."""
    return xploss.softplus(x) if float(x[0]) == float(x[0]) else x


VMAP_TARGETS = [t for t in value_targets(backends.targets()) if t.backend.vmappable]


@pytest.mark.parametrize("target", VMAP_TARGETS, ids=[t.id for t in VMAP_TARGETS])
def test_vmap_check_catches_what_does_not_vectorise(target):
    good = REGISTRY["softplus"]
    host = Entry("softplus", _host_branch_softplus, good.reference, good.cases)
    cell = run_cell(host, target, "float64", compile_cases=0, grads=False)
    assert cell.vmapped == "n/a"  # compile_cases=0: no compiled and no vmapped case
    # Every case compiled and vmapped (a quick run on JAX would already fail to
    # compile the function, as no jit can trace it either).
    cell = run_cell(host, target, "float64", compile_cases=None, grads=False)
    assert cell.vmapped == "FAIL"
    assert "vmapped run raised" in "\n".join(cell.failures)
    cell = run_cell(good, target, "float64", compile_cases=None, grads=False)
    assert cell.vmapped == "ok", cell.failures



FIRST = [t for t in value_targets(backends.targets()) if t.backend.compiled_first]


@pytest.mark.parametrize("target", FIRST, ids=[t.id for t in FIRST])
def test_quick_cells_run_compiled_where_eager_costs_more(target):
    """A quick cell (one compiled case) on a compiled-first backend (JAX) runs
    every case, with its gradients, compiled, and one case eagerly."""
    good = REGISTRY["softplus"]
    concrete = type(target.backend.asarray(np.zeros(1), target))
    calls = []

    def spy(x):
        calls.append(type(x) is concrete)  # a tracer when compiled
        return xploss.softplus(x)

    cell = run_cell(Entry("softplus", spy, good.reference, good.cases), target, "float64",
                    compile_cases=1)
    assert cell.passed, cell.failures
    assert (cell.compiled, cell.vmapped, cell.grad) == ("ok", "ok", "ok")
    # One call on concrete arrays; traced: each case's value, the vmapped case,
    # and the gradients.
    assert sum(calls) == 1
    assert len(calls) - 1 > len(good.cases("float64")) + 1
    # A function that unrolls a loop stays eager: every case's value is computed
    # on concrete arrays.
    calls.clear()
    cell = run_cell(Entry("softplus", spy, good.reference, good.cases, unrolled=True), target,
                    "float64", compile_cases=1)
    assert cell.passed, cell.failures
    assert sum(calls) >= len(good.cases("float64"))

