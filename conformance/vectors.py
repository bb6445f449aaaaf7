"""Oracle vectors: the mpmath reference values of every catalog function over
its case tables, committed in ``conformance/data/vectors.npz``.

A run reads its references from here instead of recomputing them, and a
vector that is missing or stale fails the case that needs it:

* every (function, case, dtype) of the catalog has a vector, keyed by the
  digest of the inputs the reference sees (the case's arrays rounded to the
  dtype, the options); a case whose inputs changed no longer matches;
* the file records the digest of the code that produced it (the references
  module, the conversion to float64 pairs and the generator's rounding,
  digest and evaluation); a change to any of them makes every vector stale.

Regenerate after changing a case table or a reference, and commit the result::

    python -m xploss.conformance.vectors           # rewrite the file
    python -m xploss.conformance.vectors --check   # report what is stale, exit 1 if any

Each vector holds the exact value as two float64 arrays, ``hi + lo`` (hi the
value rounded to float64, lo the rounding error, see ``runner._split``), as
the references of :mod:`xploss.conformance.references` give it: evaluated at
60 significant digits and again at doubled precision until it settles. A
target that holds other values than the generator's rounding (one that
flushes subnormal inputs to zero, torch rounding float64 to bfloat16 through
float32), and entries that are not the catalog's (a user's own), have their
references computed live. bfloat16
inputs are rounded with ``ml_dtypes`` (installed with JAX) when the file is
generated; reading the file does not need it.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
from functools import cache
from pathlib import Path

import numpy as np

PATH = Path(__file__).with_name("data") / "vectors.npz"
DTYPES = ("float64", "float32", "float16", "bfloat16")


class StaleVector(LookupError):
    """The committed vector for a case is missing or was made from other inputs or code."""


def _numpy_dtype(name):
    if name == "bfloat16":
        import ml_dtypes

        return ml_dtypes.bfloat16
    return np.dtype(name)


def held_inputs(case, dtype):
    """The case's arguments as a target holding ``dtype`` holds them (floats
    rounded to ``dtype``, as float64), and its options likewise."""
    from .registry import as_float_args

    def held(a):
        return np.asarray(a).astype(_numpy_dtype(dtype)).astype(np.float64)

    args = [held(a) if f else a for a, f in zip(case.args, as_float_args(case.args), strict=True)]
    # Array options reach the reference as float64 (see ``runner._held_kwargs``).
    kwargs = {k: ((held(v) if v.dtype.kind == "f" else v.astype(np.float64))
                  if isinstance(v, np.ndarray) else v) for k, v in case.kwargs.items()}
    return args, kwargs


def input_digest(args, kwargs, dtype):
    """SHA-256 of what the reference is called with."""
    h = hashlib.sha256(dtype.encode())

    def add(v):
        if isinstance(v, (np.ndarray, np.generic)):
            a = np.ascontiguousarray(v)
            h.update(f"array {a.dtype.str} {a.shape}".encode())
            h.update(a.tobytes())
        else:
            h.update(f"{type(v).__name__} {v!r}".encode())

    for a in args:
        add(a)
    for k in sorted(kwargs):
        h.update(k.encode())
        add(kwargs[k])
    return h.hexdigest()


@cache
def code_digest():
    """SHA-256 of the code the vectors come from (as it was imported)."""
    from . import references, runner

    h = hashlib.sha256()
    for obj in (references, runner._split, held_inputs, input_digest, compute):
        h.update(inspect.getsource(obj).encode())
    return h.hexdigest()


@cache
def _stored():
    """(code digest, {key: (input digest, offset, shape)}, hi, lo), or None without a file."""
    if not PATH.exists():
        return None
    with np.load(PATH, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        return meta["code"], meta["vectors"], data["hi"], data["lo"]


def _key(name, case, dtype):
    return f"{name}/{case}/{dtype}"


def is_catalog_entry(entry):
    """Whether ``entry`` computes the catalog's reference over the catalog's cases."""
    from . import load_catalog

    own = load_catalog().get(entry.name)
    return own is not None and own.reference is entry.reference and own.cases is entry.cases


def _generator_digest(case, dtype):
    try:
        return input_digest(*held_inputs(case, dtype), dtype)
    except ImportError:  # bfloat16 without ml_dtypes: the generator's rounding is unknown
        return None


def lookup(entry, case, dtype, digest):
    """The committed (hi, lo) for this case, whose inputs as the target holds
    them have the :func:`input_digest` ``digest``; None where they differ from
    the generator's rounding of a current case (flushed subnormals, another
    rounding: the reference is then computed live); :class:`StaleVector` where
    the file has no vector for the case as it is now, or was made by other
    code."""
    key = _key(entry.name, case.name, dtype)
    stored = _stored()
    if stored is None:
        problem = f"no oracle vectors at {PATH}"
    elif stored[0] != code_digest():
        problem = "the oracle vectors were made by other reference code"
    elif key not in stored[1]:
        problem = f"no oracle vector for {key}"
    else:
        _, index, hi, lo = stored
        stored_digest, offset, shape = index[key]
        if digest == stored_digest:
            size = int(np.prod(shape))
            return (hi[offset:offset + size].reshape(shape).copy(),
                    lo[offset:offset + size].reshape(shape).copy())
        if stored_digest == _generator_digest(case, dtype):
            return None
        problem = f"the oracle vector for {key} was made from other inputs"
    msg = f"{problem}; regenerate them with: python -m xploss.conformance.vectors"
    raise StaleVector(msg)


def compute(entry, case, dtype, args, kwargs):
    """The exact value as (hi, lo), from the mpmath reference."""
    from .runner import _split

    kwargs = dict(kwargs)
    if entry.reference_takes_dtype:
        kwargs["dtype_name"] = dtype
    return _split(entry.reference(*args, **kwargs))


def generate(entries):
    """{key: (input digest, hi, lo)} for every case of ``entries`` in every dtype."""
    out = {}
    for entry in entries:
        for dtype in DTYPES:
            for case in entry.cases(dtype):
                args, kwargs = held_inputs(case, dtype)
                with np.errstate(all="ignore"):
                    hi, lo = compute(entry, case, dtype, args, kwargs)
                out[_key(entry.name, case.name, dtype)] = (
                    input_digest(args, kwargs, dtype), hi, lo)
    return out


def stale(entries):
    """Messages for every case of ``entries`` whose vector is missing or stale."""
    problems = []
    for entry in entries:
        for dtype in DTYPES:
            for case in entry.cases(dtype):
                try:
                    lookup(entry, case, dtype, input_digest(*held_inputs(case, dtype), dtype))
                except StaleVector as exc:
                    problems.append(str(exc))
    return problems


def write(vectors, path=PATH):
    """Every vector's values in two flat arrays; an index gives each one's place."""
    index, offset = {}, 0
    for key, (digest, hi, _) in vectors.items():
        index[key] = (digest, offset, list(hi.shape))
        offset += hi.size
    hi = np.concatenate([v[1].ravel() for v in vectors.values()])
    lo = np.concatenate([v[2].ravel() for v in vectors.values()])
    meta = {"code": code_digest(), "vectors": index}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, meta=np.array(json.dumps(meta, sort_keys=True)), hi=hi, lo=lo)
    _stored.cache_clear()


def main(argv=None):
    from . import load_catalog

    p = argparse.ArgumentParser(prog="python -m xploss.conformance.vectors",
                                description="Write (or check) the committed oracle vectors.")
    p.add_argument("--check", action="store_true",
                   help="list the missing or stale vectors; exit 1 if there are any")
    args = p.parse_args(argv)
    entries = list(load_catalog().values())
    if args.check:
        problems = stale(entries)
        for msg in dict.fromkeys(problems):
            print(msg)
        print(f"{len(problems)} stale or missing vector(s)")
        return 1 if problems else 0
    vectors = generate(entries)
    write(vectors)
    size = sum(v[1].size for v in vectors.values())
    print(f"{PATH}: {len(vectors)} vectors, {size} values")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
