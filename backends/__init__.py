"""Backend adapters: the only code in xploss that names an array library.

One small adapter class per library answers the questions the conformance
suite and the tests ask:

* is it installed, and if it cannot run here, why (found without importing it);
* which devices it has, and which floating dtypes each device supports;
* how to build an array from NumPy data on a device, and read one back;
* how to differentiate a scalar function with respect to one argument, in
  reverse mode and forward mode;
* how to compile a function (``jax.jit``, ``torch.compile(fullgraph=True)``);
* how to vectorise one over a leading batch axis (``jax.vmap``, ``torch.func.vmap``).

``xploss.backends.peers`` holds the peer libraries' own losses, which the
conformance report measures beside xploss.

Design rules: an adapter imports its library only when asked for one of the
above; nothing here is imported by ``xploss`` itself; adding a library is one
class and one line in ``ADAPTERS``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ADAPTERS",
    "Backend",
    "Target",
    "available",
    "get",
    "targets",
]

FLOAT_DTYPES = ("float64", "float32", "float16", "bfloat16")


def cache_dir(name: str) -> Path:
    """Where conformance runs keep ``name``'s compiled programs: under
    ``$XPLOSS_CACHE_DIR``, else ``$XDG_CACHE_HOME/xploss``, else ``~/.cache/xploss``."""
    root = os.environ.get("XPLOSS_CACHE_DIR") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xploss"
    return Path(root) / name


@dataclass(frozen=True)
class Target:
    """One backend on one device: what a conformance run is parametrised over."""

    backend: Backend
    device: Any
    label: str
    #: A library setting the target runs under (JAX with x64 off): a callable
    #: returning a context manager, which the runner enters around each run.
    setting: Callable[[], AbstractContextManager] | None = None
    #: Arrays carry shape and dtype but no values (torch's ``meta`` device):
    #: only the results' metadata can be checked.
    abstract: bool = False
    #: Run only when asked for by name (``--device``): a slow target.
    optional: bool = False

    def active(self) -> AbstractContextManager:
        """The target's setting, to enter around every use of its arrays."""
        return self.setting() if self.setting is not None else nullcontext()

    @property
    def id(self) -> str:
        return f"{self.backend.name}:{self.label}"

    def __repr__(self) -> str:
        return f"Target({self.id})"


class Backend:
    """Base adapter. Subclasses set ``name`` and ``module`` and override what differs."""

    name: str = ""
    module: str = ""
    differentiable = False
    compilable = False
    vmappable = False
    #: Whether a quick conformance run computes each case compiled (and one case
    #: per cell also eagerly, to compare): for a library whose eager mode costs
    #: more than compiling the whole function once.
    compiled_first = False
    #: The kinds of device the adapter finds (documentation: the support matrix).
    device_kinds: tuple[str, ...] = ("cpu",)
    #: The floating dtypes it supports (a device may support fewer: ``dtypes``).
    float_dtypes: tuple[str, ...] = FLOAT_DTYPES[:3]

    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def unavailable_reason(self) -> str | None:
        """None when usable here, else why not (never raises)."""
        if not self.installed():
            return f"{self.module} is not installed"
        return None

    @property
    def lib(self):
        return importlib.import_module(self.module)

    def namespace(self):
        import array_api_compat

        return array_api_compat.array_namespace(self.asarray(np.zeros(1), self.targets()[0]))

    def targets(self) -> list[Target]:
        return [Target(self, "cpu", "cpu")]

    def dtypes(self, target: Target) -> tuple[str, ...]:
        return self.float_dtypes

    def native_dtype(self, name: str):
        return getattr(self.lib, name)

    def asarray(self, data, target: Target, dtype: str | None = None):
        """An array of ``data`` on ``target``; ``dtype`` names a float dtype (None keeps data's)."""
        data = np.asarray(data)
        native = None if dtype is None else self.native_dtype(dtype)
        return self._asarray(data, target, native)

    def _asarray(self, data, target, native):
        raise NotImplementedError

    def to_numpy(self, x) -> np.ndarray:
        return np.asarray(x)

    def grad(self, fn, args, argnum):
        """Gradient of the scalar ``fn(*args)`` with respect to ``args[argnum]``."""
        msg = f"{self.name} has no automatic differentiation"
        raise NotImplementedError(msg)

    def jvp(self, fn, args, argnum, tangent):
        """Forward mode: the derivative of the scalar ``fn(*args)`` along
        ``tangent`` in argument ``argnum``."""
        msg = f"{self.name} has no forward-mode differentiation"
        raise NotImplementedError(msg)

    def compile(self, fn):
        msg = f"{self.name} has no compiler"
        raise NotImplementedError(msg)

    def vmap(self, fn):
        """``fn`` mapped over axis 0 of every argument."""
        msg = f"{self.name} has no vectorising map"
        raise NotImplementedError(msg)

    def prepare(self) -> None:
        """Library settings a conformance run needs (called once, by the runner)."""

    @contextmanager
    def computations(self):
        """For a lazy library, a list that records each computation started
        inside the block (a loss must build its result without computing); else
        None, nothing to record."""
        yield None

    def flushes_subnormals(self, target: Target, dtype: str) -> bool:
        """Whether arithmetic on ``target`` treats subnormal inputs as zero (DAZ)."""
        if target.abstract:
            return False
        fi = np.finfo(np.float64 if dtype == "float64" else np.float32)
        sub = float(fi.smallest_normal) / 4
        x = self.asarray(np.array([sub]), target, "float64" if dtype == "float64" else "float32")
        return bool(self.to_numpy(x * 1.0)[0] == 0)


class NumPyBackend(Backend):
    name = module = "numpy"

    def _asarray(self, data, target, native):
        return data.astype(native) if native is not None else data.copy()


class ArrayApiStrictBackend(Backend):
    name = module = "array_api_strict"
    # device1 checks that nothing strays to the default device; no_float64 and
    # no_x64 have no float64 (no_x64 no int64 either), as JAX without x64 mode.
    device_kinds = ("CPU_DEVICE", "device1", "no_float64", "no_x64")
    float_dtypes = ("float64", "float32")

    def targets(self):
        xp = self.lib
        return [Target(self, d, str(d._device)) for d in xp.__array_namespace_info__().devices()
                if d._device in self.device_kinds]

    def dtypes(self, target):
        return self.float_dtypes[1:] if target.label.startswith("no_") else self.float_dtypes

    def _asarray(self, data, target, native):
        xp = self.lib
        if native is None:
            native = getattr(xp, str(data.dtype))
            if native == xp.int64 and target.label == "no_x64":
                native = xp.int32
        return xp.asarray(data, dtype=native, device=target.device)

    def to_numpy(self, x):
        xp = self.lib
        return np.asarray(xp.asarray(x, device=xp.Device("CPU_DEVICE"))._array)


class TorchBackend(Backend):
    name = module = "torch"
    differentiable = compilable = vmappable = True
    device_kinds = ("cpu", "cuda", "mps", "meta")
    float_dtypes = FLOAT_DTYPES

    def targets(self):
        torch = self.lib
        out = [Target(self, torch.device("cpu"), "cpu")]
        out += [Target(self, torch.device("cuda", i), f"cuda:{i}")
                for i in range(torch.cuda.device_count())]
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            out.append(Target(self, torch.device("mps"), "mps"))
        # Shapes and dtypes only: any read of a value (a host synchronisation) fails.
        out.append(Target(self, torch.device("meta"), "meta", abstract=True))
        return out

    def dtypes(self, target):
        if target.label == "mps":
            return self.float_dtypes[1:]
        return self.float_dtypes

    def _asarray(self, data, target, native):
        torch = self.lib
        t = torch.from_numpy(data.copy(order="C"))  # (ascontiguousarray makes 0-d 1-d)
        return t.to(device=target.device, dtype=native) if native is not None \
            else t.to(device=target.device)

    def to_numpy(self, x):
        x = x.detach().cpu()
        if x.dtype == self.lib.bfloat16:
            x = x.float()
        return x.numpy()

    def grad(self, fn, args, argnum):
        torch = self.lib
        args = list(args)
        args[argnum] = args[argnum].detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(fn(*args), args[argnum], allow_unused=True)
        return torch.zeros_like(args[argnum]) if g is None else g

    def jvp(self, fn, args, argnum, tangent):
        import warnings

        def partial(a):
            return fn(*args[:argnum], a, *args[argnum + 1:])

        with warnings.catch_warnings():
            # Forward mode's first use scripts a helper inside torch, which warns
            # that torch.jit.script is deprecated: torch's own call, not the caller's.
            warnings.filterwarnings("ignore", message=".*torch.jit.script. is deprecated")
            return self.lib.func.jvp(partial, (args[argnum],), (tangent,))[1]

    def prepare(self):
        import warnings

        # Dynamo notes once that it traces through array-api-compat's lru_cache'd
        # helpers; the traced code is the same, the note is noise in a report.
        warnings.filterwarnings("ignore", message="Dynamo detected a call to a `functools")

    def compile(self, fn):
        # Dynamo caches by code object: the conformance runner compiles many
        # closures of one function, which would hit the recompile limit (a hard
        # error under fullgraph). Each compilation here starts from a clean cache.
        self.lib._dynamo.reset()
        return self.lib.compile(fn, fullgraph=True, dynamic=False)

    def vmap(self, fn):
        return self.lib.func.vmap(fn)


class JaxBackend(Backend):
    name = module = "jax"
    differentiable = compilable = vmappable = True
    # Eager JAX compiles every primitive for each new shape and dtype: a function
    # of a few hundred operations costs hundreds of XLA compilations per case
    # shape, several times one compilation of the whole function under jit.
    compiled_first = True
    device_kinds = ("cpu", "gpu", "tpu")
    float_dtypes = FLOAT_DTYPES

    def prepare(self):
        config = self.lib.config
        # float64 needs x64 mode; without it JAX silently computes in float32.
        config.update("jax_enable_x64", True)
        # Compiled programs are kept on disk between runs (as torch.compile's are
        # by default), unless the caller has chosen a cache of its own.
        if not config.jax_compilation_cache_dir:
            config.update("jax_compilation_cache_dir", str(cache_dir("jax")))
            config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

    def targets(self):
        jax = self.lib
        devices = jax.devices()
        out = [Target(self, d, f"{d.platform}:{d.id}") for d in devices]
        if jax.config.jax_enable_x64:
            # JAX's default, x64 off, as most users run it: float32 only, and
            # 64-bit integers become 32-bit.
            first = devices[0]
            out.append(Target(self, first, f"{first.platform}:{first.id}:x32",
                              setting=lambda: jax.enable_x64(False)))
        return out

    def dtypes(self, target):
        # Without x64 mode JAX has no float64.
        x64 = self.lib.config.jax_enable_x64 and target.setting is None
        return self.float_dtypes if x64 else self.float_dtypes[1:]

    def native_dtype(self, name):
        return getattr(self.lib.numpy, name)

    def _asarray(self, data, target, native):
        jax = self.lib
        if native is None and data.dtype == np.int64 and not jax.config.jax_enable_x64:
            data = data.astype(np.int32)
        return jax.device_put(data.astype(native) if native is not None else data, target.device)

    def to_numpy(self, x):
        x = np.asarray(x)
        return x.astype(np.float32) if x.dtype.name == "bfloat16" else x

    def grad(self, fn, args, argnum):
        def partial(a):
            return fn(*args[:argnum], a, *args[argnum + 1:])

        return self.lib.grad(partial)(args[argnum])

    def jvp(self, fn, args, argnum, tangent):
        def partial(a):
            return fn(*args[:argnum], a, *args[argnum + 1:])

        return self.lib.jvp(partial, (args[argnum],), (tangent,))[1]

    def compile(self, fn):
        return self.lib.jit(fn)

    def vmap(self, fn):
        return self.lib.vmap(fn)


class CuPyBackend(Backend):
    name = module = "cupy"
    device_kinds = ("cuda",)

    def unavailable_reason(self):
        reason = super().unavailable_reason()
        if reason:
            return reason
        try:
            count = self.lib.cuda.runtime.getDeviceCount()
        except Exception as exc:  # no driver, no runtime: report, never raise
            return f"cupy is installed but CUDA is not usable: {exc}"
        return None if count else "cupy is installed but there is no CUDA device"

    def targets(self):
        cp = self.lib
        return [Target(self, cp.cuda.Device(i), f"cuda:{i}")
                for i in range(cp.cuda.runtime.getDeviceCount())]

    def _asarray(self, data, target, native):
        with target.device:
            return self.lib.asarray(data, dtype=native)

    def to_numpy(self, x):
        return self.lib.asnumpy(x)


class DaskBackend(Backend):
    name = "dask"
    module = "dask"
    device_kinds = ("cpu", "distributed")

    def targets(self):
        out = [Target(self, "cpu", "cpu")]
        if importlib.util.find_spec("distributed") is not None:
            # The same arrays computed by a distributed scheduler: graphs that
            # must travel to workers (serialisable, no local state). Each task
            # costs a round trip, many times the local schedulers' cost: only
            # when asked for.
            out.append(Target(self, "cpu", "distributed", setting=self._distributed,
                              optional=True))
        return out

    @staticmethod
    @contextmanager
    def _distributed():
        import dask
        from distributed import Client, LocalCluster

        # An in-process cluster per cell, reachable from this machine only,
        # without a dashboard (starting one takes about 0.1 s). It is closed on
        # the way out: its threads would otherwise outlive the cell and keep
        # drawing from the global random generator.
        with (LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                           protocol="tcp", host="127.0.0.1", dashboard_address=None) as cluster,
              Client(cluster, set_as_default=False) as client,
              dask.config.set(scheduler=client)):
            yield

    def unavailable_reason(self):
        reason = super().unavailable_reason()
        if reason is None and importlib.util.find_spec("dask.array") is None:
            return "dask is installed without dask.array"
        return reason

    def native_dtype(self, name):
        return np.dtype(name)

    def _asarray(self, data, target, native):
        import dask.array as da

        data = data.astype(native) if native is not None else data
        # Two chunks along the first axis where possible, so reductions combine chunks.
        chunks = tuple(max(1, (n + 1) // 2) if i == 0 else n for i, n in enumerate(data.shape))
        return da.from_array(data, chunks=chunks or ())

    def to_numpy(self, x):
        return np.asarray(x.compute())

    @contextmanager
    def computations(self):
        from dask.callbacks import Callback

        seen = []
        with Callback(start=lambda dsk: seen.append(len(dsk))):
            yield seen


ADAPTERS: dict[str, Backend] = {
    b.name: b
    for b in (NumPyBackend(), ArrayApiStrictBackend(), TorchBackend(), JaxBackend(),
              CuPyBackend(), DaskBackend())
}


def get(name: str) -> Backend:
    try:
        return ADAPTERS[name]
    except KeyError:
        msg = f"unknown backend {name!r}; known: {', '.join(ADAPTERS)}"
        raise ValueError(msg) from None


def available() -> dict[str, str | None]:
    """Every known backend mapped to None (usable) or the reason it is not."""
    return {name: b.unavailable_reason() for name, b in ADAPTERS.items()}


def targets(names=None, *, optional=False) -> list[Target]:
    """Every (backend, device) pair usable here, optionally limited to ``names``;
    the optional ones (see :class:`Target`) only with ``optional``."""
    out = []
    for name, reason in available().items():
        if reason is None and (names is None or name in names):
            out.extend(t for t in get(name).targets() if optional or not t.optional)
    return out
