"""The xploss conformance suite: every registered function, on every installed
backend and device, checked against an mpmath oracle.

Public API
----------
``Entry``, ``Case``, ``register``
    Describe a function (yours too) with its reference and input tables.
``run``
    Run entries on targets and dtypes; returns a :class:`Report`.
``reproduce``
    Re-run one failing case and print inputs, result and exact value.
``check``, ``user``
    Check your own function: ``check(func, reference, cases)`` on every
    installed backend, and pytest helpers in ``xploss.conformance.user``
    (see docs/user-losses.md).

The command ``xploss-conformance`` (``python -m xploss.conformance``) prints
the matrix and exits non-zero on any failure.
"""

from .registry import REGISTRY, Case, Entry, register
from .suite import Report, default_dtypes, reproduce, run
from .user import CheckReport, check

__all__ = ["REGISTRY", "Case", "CheckReport", "Entry", "Report", "check", "default_dtypes",
           "register", "reproduce", "run"]


def load_catalog():
    """Register the entries of every public xploss function (idempotent)."""
    from . import catalog  # noqa: F401  (registers on import)

    return REGISTRY
