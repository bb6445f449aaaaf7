"""The committed oracle vectors: current for every catalog function, equal to
what the generator computes with mpmath, read by the runner in place of the
live references, and a stale or missing one fails the case that needs it."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from xploss.conformance import load_catalog, vectors
from xploss.conformance import runner as runner_module
from xploss.conformance.runner import run_cell

from xploss import backends

CATALOG = load_catalog()
NUMPY = next(t for t in backends.targets(["numpy"]) if t.label == "cpu")


@pytest.fixture
def fresh_references(monkeypatch):
    """An empty reference cache, so that the run reads the vectors again."""
    monkeypatch.setattr(runner_module.REFERENCES, "_store", {})


def test_every_catalog_case_has_a_current_vector():
    """Fails for a function registered without vectors, a case table changed
    since, or references changed without regenerating
    (``python -m xploss.conformance.vectors``)."""
    assert vectors.stale(CATALOG.values()) == []


def test_the_vectors_are_what_mpmath_gives_now():
    """Every stored value is recomputed from its mpmath reference, bit for bit."""
    pytest.importorskip("ml_dtypes")  # bfloat16 rounding, as the generator does it
    fresh = vectors.generate(CATALOG.values())
    assert len(fresh) == len(vectors._stored()[1])
    for key, (digest, hi, lo) in fresh.items():
        name, case_name, dtype = key.split("/")
        case = next(c for c in CATALOG[name].cases(dtype) if c.name == case_name)
        stored = vectors.lookup(CATALOG[name], case, dtype, digest)
        assert stored is not None, key
        np.testing.assert_array_equal(stored[0], hi, err_msg=key)
        np.testing.assert_array_equal(stored[1], lo, err_msg=key)


def test_the_runner_reads_the_vectors(monkeypatch, fresh_references):
    def unavailable(*args, **kwargs):
        msg = "computed live"
        raise AssertionError(msg)

    vectors.code_digest()  # of the real code, before the patch
    monkeypatch.setattr(vectors, "compute", unavailable)
    for name in ("softplus", "cross_entropy", "ctc_loss"):
        cell = run_cell(CATALOG[name], NUMPY, "float32", grads=False)
        assert cell.passed, cell.failures


def test_other_entries_and_other_roundings_are_computed_live(fresh_references):
    # A user's entry under a catalog name: its own reference, never the vectors.
    entry = dataclasses.replace(CATALOG["softplus"], reference=lambda x: np.vectorize(
        lambda v: 2 * v, otypes=[object])(x.astype(object)))
    assert not vectors.is_catalog_entry(entry)
    cell = run_cell(entry, NUMPY, "float64", grads=False)
    assert not cell.passed  # softplus is not 2x

    # The catalog's case held otherwise than the generator rounds it (as a
    # target that flushes subnormals does): no vector, and no staleness.
    entry = CATALOG["softplus"]
    case = entry.cases("float32")[0]
    args, kwargs = vectors.held_inputs(case, "float32")
    args[0] = np.nextafter(args[0], math.inf)
    assert vectors.lookup(entry, case, "float32",
                          vectors.input_digest(args, kwargs, "float32")) is None


def _break(monkeypatch, change):
    code, index, hi, lo = vectors._stored()
    index = dict(index)
    code = change(index) or code
    monkeypatch.setattr(vectors, "_stored", lambda: (code, index, hi, lo))


@pytest.mark.parametrize(("change", "message"), [
    (lambda index: index.pop("softplus/" + CATALOG["softplus"].cases("float32")[0].name
                             + "/float32") and None,
     "no oracle vector for softplus/"),
    (lambda index: index.update({k: ("0" * 64, *v[1:]) for k, v in index.items()}),
     "was made from other inputs"),
    (lambda index: "f" * 64, "made by other reference code"),
])
def test_a_stale_vector_fails_the_case(monkeypatch, fresh_references, change, message):
    _break(monkeypatch, change)
    cell = run_cell(CATALOG["softplus"], NUMPY, "float32", grads=False)
    assert not cell.passed
    assert any(message in f and "python -m xploss.conformance.vectors" in f
               for f in cell.failures), cell.failures[:2]
    assert vectors.stale([CATALOG["softplus"]])


def test_case_inputs_are_the_same_on_every_machine(monkeypatch):
    """No case input goes through NumPy's transcendental functions, whose last
    bit varies between processors (a machine with other SIMD paths would find
    every such case's vector made from other inputs): moving each of their
    results by an ULP leaves every case's digest as it is."""
    def digests():
        return {(name, case.name, dtype): vectors.input_digest(
                    *vectors.held_inputs(case, dtype), dtype)
                for name, entry in CATALOG.items() for dtype in ("float64", "float32")
                for case in entry.cases(dtype)}

    before = digests()
    for name in ("exp", "expm1", "log", "log1p", "log2", "log10", "power", "float_power",
                 "exp2", "tanh", "sinh", "cosh", "sin", "cos", "arctan"):
        fn = getattr(np, name)
        monkeypatch.setattr(np, name, lambda *a, fn=fn, **k: np.nextafter(fn(*a, **k), math.inf))
    after = digests()
    assert [key for key in before if before[key] != after[key]] == []


def test_the_check_command(capsys):
    assert vectors.main(["--check"]) == 0
    assert "0 stale or missing vector(s)" in capsys.readouterr().out
