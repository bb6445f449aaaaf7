"""Doctest set-up: the examples show naive formulas overflowing next to xploss,
so NumPy's floating-point warnings are silenced inside doctests only (the unit
tests keep every warning an error)."""

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _quiet_naive_examples(request):
    if isinstance(request.node, pytest.DoctestItem):
        with np.errstate(all="ignore"):
            yield
    else:
        yield
