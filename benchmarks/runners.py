"""How each library runs a problem: modes, passes, synchronisation and memory.

One small runner per array library, in the manner of the backend adapters
(which they use for devices, array construction and compilation). A runner
turns a :class:`~benchmarks.problems.Problem` and its arrays into two
zero-argument callables, xploss and the native peer, that return only once
their result is ready, and measures peak memory where it can be measured
honestly:

* torch on CUDA: ``torch.cuda.max_memory_allocated`` above the memory held
  before the call;
* JAX (every device): the XLA compiler's own figure for the compiled
  program's temporary buffers (``memory_analysis().temp_size_in_bytes``),
  which excludes the arguments and the output;
* NumPy and Dask: ``tracemalloc`` peak during one call (NumPy reports its
  array buffers to tracemalloc; Dask's worker threads are traced too);
* torch on CPU and CuPy: not measured (torch's CPU allocator is invisible to
  tracemalloc and has no peak counter; CuPy's memory pool has none either).

Frameworks are imported only inside the runner that needs them.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["RUNNERS", "Runner"]

FWD, FWD_BWD = "fwd", "fwd+bwd"


class Runner:
    """Base runner: eager forward only, timed against a NumPy/SciPy peer."""

    passes: tuple[str, ...] = (FWD,)
    modes: tuple[str, ...] = ("eager",)
    memory_method = "not measured"

    def __init__(self, target, dtype: str, threads: int | None):
        self.target = target
        self.adapter = target.backend
        self.dtype = dtype
        self.threads = threads

    def peer(self, mode: str) -> str:
        return "numpy + scipy.special"

    def unavailable(self, mode: str) -> str | None:
        """Why ``mode`` cannot run here (a missing peer library), else None."""
        return None

    def arrays(self, data: tuple[np.ndarray, ...]) -> tuple[Any, ...]:
        """The problem's NumPy data on this target (float data in ``self.dtype``)."""
        return tuple(self.adapter.asarray(a, self.target, self.dtype if a.dtype.kind == "f"
                                          else None) for a in data)

    def build(self, mode, pass_, problem, data) -> tuple[Callable[[], Any], Callable[[], Any]]:
        raise NotImplementedError

    def peak_memory(self, mode, pass_, fn) -> int | None:
        """Peak bytes allocated by one call of ``fn`` beyond what was held before."""
        return None

    def to_numpy(self, result) -> list[np.ndarray]:
        items = result if isinstance(result, tuple | list) else (result,)
        return [np.asarray(self.adapter.to_numpy(r), dtype=np.float64) for r in items]


def _tracemalloc_peak(fn) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    del result
    return peak


def _scipy_peer(problem, arrays):
    import scipy.special

    return lambda: problem.scipy(np, scipy.special, *arrays)


class NumPyRunner(Runner):
    memory_method = "tracemalloc peak"

    def unavailable(self, mode):
        import importlib.util

        return None if importlib.util.find_spec("scipy") else "scipy is not installed"

    def build(self, mode, pass_, problem, data):
        arrays = self.arrays(data)
        return (lambda: problem.xploss(*arrays)), _scipy_peer(problem, arrays)

    def peak_memory(self, mode, pass_, fn):
        return _tracemalloc_peak(fn)


class DaskRunner(NumPyRunner):
    """xploss on Dask arrays (graph built and computed per call) against the
    NumPy/SciPy peer on the same data in memory: the cost of staying lazy."""

    memory_method = "tracemalloc peak (all threads)"

    def peer(self, mode):
        return "numpy + scipy.special (in memory)"

    def build(self, mode, pass_, problem, data):
        arrays = self.arrays(data)
        in_memory = tuple(np.asarray(a, dtype=self.dtype) if a.dtype.kind == "f" else a
                          for a in data)
        return (lambda: problem.xploss(*arrays).compute()), _scipy_peer(problem, in_memory)

    def to_numpy(self, result):
        return [np.asarray(result, dtype=np.float64)]  # both sides are computed already


class CuPyRunner(Runner):
    def peer(self, mode):
        return "cupy + cupyx.scipy.special"

    def unavailable(self, mode):
        import importlib.util

        return None if importlib.util.find_spec("cupyx.scipy.special") else \
            "cupyx.scipy.special is not available"

    def build(self, mode, pass_, problem, data):
        import cupy
        import cupyx.scipy.special

        arrays = self.arrays(data)
        device = self.target.device

        def synced(fn):
            def run():
                out = fn()
                device.synchronize()
                return out
            return run

        return (synced(lambda: problem.xploss(*arrays)),
                synced(lambda: problem.scipy(cupy, cupyx.scipy.special, *arrays)))


class TorchRunner(Runner):
    passes = (FWD, FWD_BWD)
    modes = ("eager", "compile")

    def __init__(self, target, dtype, threads):
        super().__init__(target, dtype, threads)
        torch = self.adapter.lib
        if threads is not None:
            torch.set_num_threads(threads)
        self.cuda = target.device.type == "cuda"
        self.memory_method = ("torch.cuda.max_memory_allocated" if self.cuda else
                              "not measured (CPU allocator has no peak counter)")

    def peer(self, mode):
        return "torch.nn.functional" + (" (torch.compile)" if mode == "compile" else "")

    def build(self, mode, pass_, problem, data):
        torch = self.adapter.lib
        F = torch.nn.functional
        arrays = self.arrays(data)

        def ours(*a):
            return problem.xploss(*a)

        def native(*a):
            return problem.torch(F, *a)

        if mode == "compile":
            # The adapter compiles with fullgraph=True (a graph break is an error)
            # and resets Dynamo first: compile both before either runs.
            ours, native = self.adapter.compile(ours), self.adapter.compile(native)
        return self._step(ours, pass_, arrays), self._step(native, pass_, arrays)

    def _step(self, fn, pass_, arrays):
        torch = self.adapter.lib
        sync = (lambda: torch.cuda.synchronize(self.target.device)) if self.cuda else (lambda: None)
        if pass_ == FWD:
            def run():
                out = fn(*arrays)
                sync()
                return out
            return run
        x = arrays[0].detach().clone().requires_grad_(True)
        rest = arrays[1:]

        def run_grad():
            loss = fn(x, *rest)
            (grad,) = torch.autograd.grad(loss, x)
            sync()
            return loss.detach(), grad
        return run_grad

    def peak_memory(self, mode, pass_, fn):
        if not self.cuda:
            return None
        cuda = self.adapter.lib.cuda
        device = self.target.device
        cuda.synchronize(device)
        base = cuda.memory_allocated(device)
        cuda.reset_peak_memory_stats(device)
        result = fn()
        peak = cuda.max_memory_allocated(device) - base
        del result
        return peak


class JaxRunner(Runner):
    passes = (FWD, FWD_BWD)
    modes = ("jit",)
    memory_method = "XLA temp buffers (compiled memory_analysis)"

    def peer(self, mode):
        return "optax (jax.jit)"

    def unavailable(self, mode):
        import importlib.util

        return None if importlib.util.find_spec("optax") else "optax is not installed"

    def build(self, mode, pass_, problem, data):
        import jax
        import optax

        arrays = self.arrays(data)

        def ours(*a):
            return problem.xploss(*a)

        def native(*a):
            return problem.optax(optax, *a)

        def jitted(fn):
            compiled = jax.jit(fn if pass_ == FWD else jax.value_and_grad(fn))

            def run():
                return jax.block_until_ready(compiled(*arrays))
            run.compiled = compiled
            run.arrays = arrays
            return run

        return jitted(ours), jitted(native)

    def peak_memory(self, mode, pass_, fn):
        analysis = fn.compiled.lower(*fn.arrays).compile().memory_analysis()
        return None if analysis is None else int(analysis.temp_size_in_bytes)


RUNNERS: dict[str, type[Runner]] = {
    "numpy": NumPyRunner,
    "dask": DaskRunner,
    "cupy": CuPyRunner,
    "torch": TorchRunner,
    "jax": JaxRunner,
}
