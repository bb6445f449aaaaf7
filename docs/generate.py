"""Write the generated pages of the documentation into ``docs/_generated/``.

Run by ``conf.py`` at the start of every build (and by hand as
``python docs/generate.py``). Each page is derived from what the code itself
uses, so it cannot drift from it:

* ``api.md``: the API reference, one autosummary table per family module,
  listing ``xploss.__all__``;
* ``support.md``: the backend table from the adapters (``xploss.backends``),
  the function table from the conformance registry, and the benchmark
  results as ``python -m benchmarks`` wrote them (``benchmarks/results/``);
* ``gallery/``: the stability gallery (``docs/gallery.py``).
"""

from __future__ import annotations

import inspect
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
BENCHMARK_RESULTS = ROOT / "benchmarks" / "results"


def _yes(flag: bool) -> str:
    return "yes" if flag else "—"


def backend_table() -> list[str]:
    from xploss import backends

    rows = [
        "| backend | devices | float dtypes | gradients | compiled | on the build machine |",
        "|---|---|---|---|---|---|",
    ]
    for name, b in backends.ADAPTERS.items():
        reason = b.unavailable_reason()
        here = "usable" if reason is None else f"not checked: {reason}"
        rows.append(
            f"| `{name}` | {', '.join(b.device_kinds)} | {', '.join(b.float_dtypes)} "
            f"| {_yes(b.differentiable)} | {_yes(b.compilable)} | {here} |"
        )
    return rows


def function_table() -> list[str]:
    from xploss.conformance import load_catalog

    rows = [
        "| function | family | differentiable in | float16/bfloat16 result | bound (ULP) |",
        "|---|---|---|---|---|",
    ]
    for name, e in load_catalog().items():
        params = list(inspect.signature(e.func).parameters)
        diff = ", ".join(f"`{params[i]}`" for i in e.differentiable) or "—"
        family = e.func.__module__.rsplit(".", 1)[-1]
        half = "input dtype" if e.half_result == "input" else "float32"
        bound = f"{e.ulps:g}" + (" (scaled, see docstring)" if e.scale is not None else "")
        rows.append(f"| {{func}}`xploss.{name}` | {family} | {diff} | {half} | {bound} |")
    return rows


FAMILIES = {
    "primitives": "Primitives",
    "classification": "Classification",
    "margin": "Margin and hinge",
    "embedding": "Embedding and ranking",
    "segmentation": "Segmentation",
    "sequence": "Sequence",
    "regression": "Regression",
    "_checks": "Validation of values",
}


def api_page() -> str:
    import importlib

    import xploss

    by_module: dict[str, list[str]] = {}
    for name in xploss.__all__:
        by_module.setdefault(getattr(xploss, name).__module__, []).append(name)
    unknown = {m.rsplit(".", 1)[-1] for m in by_module} - set(FAMILIES)
    if unknown:
        msg = f"generate.api_page: no section title for the module(s) {sorted(unknown)}"
        raise ValueError(msg)
    parts = [
        "# API reference",
        "",
        "Every public function of `xploss`, by family. Each page gives the definition, "
        "the stable formula, whose semantics it follows and where it deviates, and an "
        "example that runs as a doctest on `array_api_strict`.",
        "",
    ]
    for short, title in FAMILIES.items():
        module = f"xploss.{short}"
        if module not in by_module:
            continue
        # A private module's docstring describes the module, not the public function.
        doc = getattr(xploss, by_module[module][0]).__doc__ if short.startswith("_") \
            else importlib.import_module(module).__doc__
        summary = (doc or "").strip().split("\n\n")[0]
        parts += [
            f"## {title}", "", " ".join(summary.split()), "",
            "```{eval-rst}", ".. autosummary::", "   :toctree: api", "",
            *(f"   xploss.{n}" for n in sorted(by_module[module])), "```", "",
        ]
    return "\n".join(parts)


def support_page() -> str:
    parts = [
        "# Support matrix and benchmarks",
        "",
        "Generated at every documentation build from the backend adapters, the conformance "
        "registry and the committed benchmark output, so it always describes the code.",
        "",
        "## Backends",
        "",
        "Every function runs on every backend: there is one implementation, written "
        "against the array API standard. A backend adds what its library can do: "
        "gradients (torch autograd, `jax.grad`) and compilation (`torch.compile`, "
        "`jax.jit`) are checked by the conformance suite where it has them. JAX has "
        "float64 only in x64 mode.",
        "",
        *backend_table(),
        "",
        "## Functions",
        "",
        "Every registered function, the arguments whose gradients the suite requires to "
        "be finite, the dtype of its result for half-precision input, and its accuracy "
        "bound against the mpmath oracle (plus half an ULP per addition in the sums the "
        "loss is defined with). The measured errors per backend are in "
        "[the conformance results](../conformance.md).",
        "",
        *function_table(),
        "",
        "## Benchmarks",
        "",
        "Ratios of xploss to each backend's native loss, measured in one process "
        "(`python -m benchmarks`; see the README). Each table below is the file the "
        "benchmark wrote, included as it is.",
        "",
    ]
    for path in sorted(BENCHMARK_RESULTS.glob("*.md")):
        rel = Path("..") / ".." / path.relative_to(ROOT)
        parts += [f"```{{include}} {rel.as_posix()}", ":heading-offset: 2", "```", ""]
    return "\n".join(parts)


def main(outdir: Path) -> None:
    outdir = Path(outdir)
    if outdir.exists():
        shutil.rmtree(outdir)
    outdir.mkdir(parents=True)
    (outdir / "api.md").write_text(api_page())
    (outdir / "support.md").write_text(support_page())
    import gallery

    gallery.main(outdir / "gallery")


if __name__ == "__main__":
    sys.path.insert(0, str(DOCS))
    main(DOCS / "_generated")
