"""The targets beyond each library's ordinary devices, and what each one
catches: Dask computing before the result is read, torch's meta device (no
values: shapes, dtypes and host reads), array-api-strict's devices without
64-bit types, JAX with x64 off, and JAX on a second host device."""

import json
import os
import subprocess
import sys
import threading

import pytest
from xploss.conformance import Entry, load_catalog
from xploss.conformance.runner import run_cell

import xploss
from xploss import backends

REGISTRY = load_catalog()


def _host_branch_softplus(x):
    """Correct eagerly, but reads a value on the host."""
    return xploss.softplus(x) if float(x[0]) == float(x[0]) else x


def _special(backend, label):
    """The target ``label`` of ``backend``, or a skip where it is not installed."""
    if backends.get(backend).unavailable_reason():
        pytest.skip(f"{backend} is not installed")
    found = [t for t in backends.get(backend).targets() if t.label == label]
    if not found:
        pytest.skip(f"{backend} has no target {label}")
    return found[0]


def test_lazy_backend_check_catches_a_computation():
    """On Dask a loss must build its result without computing anything."""
    target = _special("dask", "cpu")
    good = REGISTRY["softplus"]
    host = Entry("softplus", _host_branch_softplus, good.reference, good.cases)
    cell = run_cell(host, target, "float64")
    assert not cell.passed
    # _host_branch_softplus reads x[0] twice.
    assert "not lazy: 2 computation(s) started before the result was read" in cell.failures[0]
    assert run_cell(good, target, "float64").passed


def test_meta_device_checks_metadata_and_catches_a_host_read():
    """torch's meta device has no values: every function must run on it (no host
    synchronisation) and give the documented shape and dtype, gradients too."""
    target = _special("torch", "meta")
    good = REGISTRY["softmax"]
    cell = run_cell(good, target, "float32")
    assert cell.passed, cell.failures
    assert cell.grad == "ok"
    host = Entry("softplus", _host_branch_softplus, good.reference, REGISTRY["softplus"].cases)
    cell = run_cell(host, target, "float32")
    assert not cell.passed
    assert "raised" in cell.failures[0]

    def flattened_on_meta(x, axis=-1):
        """softmax, flattened where the device is meta (the expected shape is NumPy's)."""
        y = xploss.softmax(x, axis=axis)
        return y.reshape(-1) if getattr(x, "is_meta", False) else y

    cell = run_cell(Entry("softmax", flattened_on_meta, good.reference, good.cases), target,
                    "float32")
    assert "result shape" in "\n".join(cell.failures)


def _integer_sum_softplus(x):
    """Correct, but sums an integer mask with the default dtype: int64, which a
    device without 64-bit types lacks."""
    import array_api_compat

    xp = array_api_compat.array_namespace(x)
    n = xp.sum(xp.astype(x == x, xp.int32))
    return xploss.softplus(x) + xp.astype(n - n, x.dtype)


def test_device_without_64_bit_types_catches_an_int64_temporary():
    target = _special("array_api_strict", "no_x64")
    assert target.backend.dtypes(target) == ("float32",)
    good = REGISTRY["softplus"]
    planted = Entry("softplus", _integer_sum_softplus, good.reference, good.cases)
    cell = run_cell(planted, target, "float32", grads=False)
    assert not cell.passed
    assert "does not support dtype" in cell.failures[0]
    numpy_cpu = _special("numpy", "cpu")
    assert run_cell(planted, numpy_cpu, "float32").passed
    assert run_cell(good, target, "float32").passed


def test_jax_x32_target_runs_with_x64_off():
    """JAX's default setting (x64 off) as a target of its own: float32 only,
    each run inside it, and 64-bit integer data held as int32."""
    target = _special("jax", "cpu:0:x32")
    jax = target.backend.lib
    assert jax.config.jax_enable_x64  # the other targets keep x64 on
    assert target.backend.dtypes(target) == ("float32", "float16", "bfloat16")
    good = REGISTRY["cross_entropy"]
    seen = []

    def spy(*args, **kwargs):
        seen.append((jax.config.jax_enable_x64, str(args[1].dtype)))
        return xploss.cross_entropy(*args, **kwargs)

    cell = run_cell(Entry("cross_entropy", spy, good.reference, good.cases), target, "float32",
                    compile_cases=1)
    assert cell.passed, cell.failures
    assert {x64 for x64, _ in seen} == {False}
    assert "int32" in {dtype for _, dtype in seen}
    assert jax.config.jax_enable_x64


# One function or more from every module; the whole catalog runs with the
# command in docs/conformance-guide.md.
SECOND_DEVICE = ["softplus", "logsumexp", "cross_entropy", "binary_cross_entropy_with_logits",
                 "kl_div", "sigmoid_focal_loss", "multilabel_margin_loss", "huber_loss",
                 "msle_loss", "cosine_similarity", "triplet_margin_loss", "ntxent_loss",
                 "dice_loss", "ctc_loss"]


def test_jax_on_a_second_host_device(tmp_path):
    """With several host devices every array of a call stays on the second one
    (jit, grad and vmap included): a constant built without the input's device
    lands on the first, and JAX refuses to mix them. JAX reads the device count
    at start-up, hence a fresh interpreter."""
    if backends.get("jax").unavailable_reason():
        pytest.skip("jax is not installed")
    out = tmp_path / "cells.json"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    functions = [a for name in SECOND_DEVICE for a in ("--function", name)]
    proc = subprocess.run([sys.executable, "-m", "xploss.conformance", "--quick", "--backend",
                           "jax", "--device", "cpu:1", "--dtype", "float32", *functions,
                           "--json", str(out)], env=env, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    cells = json.loads(out.read_text())["cells"]
    assert {(c["function"], c["target"]) for c in cells} == {
        (name, "jax:cpu:1") for name in SECOND_DEVICE}
    assert all(c["passed"] for c in cells)


# The workers' threads compute outside the runner's np.errstate: NumPy's
# overflow warnings on the cases beyond the range reach the global filters.
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_dask_on_a_distributed_cluster():
    """Dask's arrays computed by a distributed scheduler (an in-process cluster
    on 127.0.0.1): an optional target, run only when named."""
    pytest.importorskip("distributed")
    target = _special("dask", "distributed")
    assert target.optional
    assert target not in backends.targets(["dask"])
    assert target in backends.targets(["dask"], optional=True)
    before = set(threading.enumerate())
    for name in ("softplus", "cross_entropy", "huber_loss"):
        cell = run_cell(REGISTRY[name], target, "float64")
        assert cell.passed, cell.failures
    # The cluster is closed with its cell: no thread of it is left to run
    # (and draw from the global random generator) under the tests after it.
    # distributed's process-wide offload pool stays, idle.
    left = [t.name for t in set(threading.enumerate()) - before
            if t.is_alive() and not t.name.startswith("Dask-Offload")]
    assert not left, left
