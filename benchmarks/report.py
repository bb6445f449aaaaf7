"""The results table (terminal and Markdown) and the machine it was measured on."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import re
import sys
from dataclasses import dataclass

__all__ = ["COLUMNS", "Row", "machine", "machine_slug", "markdown", "terminal_line"]

LIBRARIES = ("xploss", "array-api-compat", "numpy", "scipy", "torch", "jax", "jaxlib",
             "optax", "dask", "cupy")

COLUMNS = ("backend", "mode", "function", "size", "pass", "xploss", "native",
           "ratio", "ratio (min)", "mem xploss", "mem native", "check")


@dataclass(frozen=True)
class Row:
    """One measured comparison; times in seconds per call, memory in bytes."""

    target: str
    mode: str
    function: str
    size: str
    pass_: str
    xploss: float
    native: float
    xploss_min: float
    native_min: float
    mem_xploss: int | None
    mem_native: int | None
    check: str

    @property
    def ratio(self) -> float:
        return self.xploss / self.native

    @property
    def ratio_min(self) -> float:
        return self.xploss_min / self.native_min

    def cells(self) -> tuple[str, ...]:
        return (self.target, self.mode, self.function, self.size, self.pass_,
                format_time(self.xploss), format_time(self.native),
                f"{self.ratio:.2f}", f"{self.ratio_min:.2f}",
                format_bytes(self.mem_xploss), format_bytes(self.mem_native), self.check)


def format_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_bytes(n: int | None) -> str:
    if n is None:
        return "n/m"
    value, unit = float(n), "B"
    for bigger in ("KiB", "MiB", "GiB"):
        if value < 1000:
            break
        value, unit = value / 1024, bigger
    return f"{value:.3g} {unit}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpus() -> list[str]:
    """CUDA device names, asked of torch only where it is already imported."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def machine(settings: dict[str, str]) -> dict[str, str]:
    """What the numbers depend on: hardware, software versions, run settings."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": f"{os.cpu_count()} logical, {usable} usable by this process",
        "gpu": ", ".join(_gpus()) or "none",
        "os": platform.platform(),
        "python": platform.python_version(),
    }
    # glibc's malloc returns freed memory above these thresholds to the OS, so
    # eager code with many input-sized temporaries pays page faults on every
    # call; the settings in force are part of what the numbers depend on.
    tuning = [f"{k}={v}" for k, v in sorted(os.environ.items())
              if k.startswith("MALLOC_") or k == "LD_PRELOAD"]
    info["allocator"] = ", ".join(tuning) or "default (no MALLOC_* settings, no LD_PRELOAD)"
    for lib in LIBRARIES:
        try:
            info[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            continue
    info.update(settings)
    return info


def machine_slug() -> str:
    """A file name for this machine: CPU model, core count, first GPU."""
    words = [_cpu_model(), f"{os.cpu_count()}c", *(_gpus()[:1])]
    return re.sub(r"[^a-z0-9]+", "-", " ".join(words).lower()).strip("-")


def terminal_line(cells, widths) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def _md_row(cells) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def markdown(rows: list[Row], info: dict[str, str], notes: list[str]) -> str:
    lines = ["# xploss benchmarks", "", "## Machine", ""]
    lines += [f"- **{k}**: {v}" for k, v in info.items()]
    lines += ["", "## How to read", "",
              "`xploss` and `native` are median seconds per call over interleaved "
              "repetitions; `ratio` = xploss / native of the medians (below 1: xploss "
              "is faster), `ratio (min)` the same of the minima. `mem`: peak bytes "
              "allocated by one call beyond its inputs (n/m: not measured, see the "
              "method per backend below). `check`: xploss and the peer agree on the "
              "value (and gradient) to 1e-4 relative (float32) or 1e-9 (float64).",
              ""]
    lines += [f"- {n}" for n in notes]
    lines += ["", "## Results", "", _md_row(COLUMNS),
              "|" + "|".join("---:" if c in _NUMERIC else "---" for c in COLUMNS) + "|"]
    lines += [_md_row(r.cells()) for r in rows]
    return "\n".join(lines) + "\n"


_NUMERIC = frozenset(("xploss", "native", "ratio", "ratio (min)", "mem xploss", "mem native"))
