"""The documentation: the strict Sphinx build, the doctests of its pages, the
example scripts it shows, and its coverage of ``xploss.__all__``."""

import doctest
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import xploss
from xploss import backends

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
PAGES = sorted(DOCS.glob("*.md"))


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    """The site, built as CI builds it: warnings are errors."""
    for module in ("sphinx", "pydata_sphinx_theme", "numpydoc", "myst_parser", "sphinx_design",
                   "matplotlib"):
        pytest.importorskip(module)
    out = tmp_path_factory.mktemp("html")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(DOCS), str(out)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    return out


def test_build_renders_every_public_function(html):
    for name in xploss.__all__:
        page = html / "_generated" / "api" / f"xploss.{name}.html"
        assert page.is_file(), f"no API page for xploss.{name}"
    # The math of the docstrings reaches the page as MathJax input, with MathJax
    # itself shipped in the site (it renders offline).
    ce = (html / "_generated" / "api" / "xploss.cross_entropy.html").read_text()
    assert r"\operatorname{softmax}" in ce
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()


def test_build_includes_gallery_and_support_matrix(html):
    gallery = html / "_generated" / "gallery"
    pngs = sorted(p.name for p in (gallery / "_images").glob("*.png")) or \
        sorted(p.name for p in html.glob("_images/*.png"))
    assert len(pngs) >= 8, pngs
    support = (html / "_generated" / "support.html").read_text()
    for name in backends.ADAPTERS:
        assert f"<code class=\"docutils literal notranslate\"><span class=\"pre\">{name}" \
            in support, name


def test_every_public_function_has_a_migration_row():
    rows = [line for line in (DOCS / "migration.md").read_text().splitlines()
            if line.startswith("|")]
    mapped = set(re.findall(r"\{func\}`xploss\.(\w+)`", "\n".join(rows)))
    assert set(xploss.__all__) - mapped == set()
    assert mapped - set(xploss.__all__) == set()


def _pycon_blocks(page):
    return re.findall(r"^```pycon\n(.*?)^```", page.read_text(), flags=re.S | re.M)


DOCTEST_PAGES = [p for p in PAGES if _pycon_blocks(p)]


@pytest.mark.parametrize("page", DOCTEST_PAGES, ids=[p.name for p in DOCTEST_PAGES])
def test_page_doctests(page):
    # Every ``pycon`` block of the page, run in order in one namespace.
    text = "\n".join(_pycon_blocks(page))
    test = doctest.DocTestParser().get_doctest(text, {}, page.name, str(page), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    with np.errstate(all="ignore"):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def _missing_modules(script):
    imports = re.findall(r"^(?:import|from) (\w+)", script.read_text(), flags=re.M)
    return [m for m in imports if importlib.util.find_spec(m) is None]


SCRIPTS = sorted(EXAMPLES.glob("*.py"))
# Smaller than the documented default so the test stays quick; the code path is the same.
ARGS = {"dask_eval.py": ["2000000"]}
# What a script must print, in this order, besides exiting with 0.
PRINTS = {"user_loss.py": ["== stable ==", "PASSED", "== naive ==", "FAILED"]}


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_example_runs(script):
    missing = _missing_modules(script)
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed")
    if script.name.startswith("cupy"):
        reason = backends.get("cupy").unavailable_reason()
        if reason:
            pytest.skip(reason)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(EXAMPLES)])}
    proc = subprocess.run([sys.executable, str(script), *ARGS.get(script.name, [])],
                          capture_output=True, text=True, cwd=ROOT, env=env, check=False,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    pos = 0
    for expected in PRINTS.get(script.name, []):
        pos = proc.stdout.find(expected, pos)
        assert pos >= 0, (expected, proc.stdout[-3000:])
