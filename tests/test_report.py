"""The HTML conformance report: it renders, plots what ran, shows failures and
where the peer libraries break; and the command line writes it."""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from helpers import naive_softplus
from xploss.conformance import Entry, load_catalog, run
from xploss.conformance.cli import main
from xploss.conformance.report import _TOP, html_report, peer_curves

from xploss import backends

CATALOG = load_catalog()
VOID = {"meta", "br", "rect", "line", "circle"}


class _Tree(HTMLParser):
    """Checks that every element closes, in order, and collects the svg groups."""

    def __init__(self):
        super().__init__()
        self.stack, self.svgs, self.series, self.errors = [], 0, [], []

    def handle_starttag(self, tag, attrs):
        if tag == "svg":
            self.svgs += 1
        if tag == "g":
            self.series.append(dict(attrs)["data-series"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def _parse(page):
    tree = _Tree()
    tree.feed(page)
    tree.close()
    assert not tree.errors, tree.errors
    assert not tree.stack, tree.stack
    return tree


def _section(page, name):
    return re.search(rf"<section id='{name}'>(.*?)</section>", page, re.S).group(1)


def _numpy_targets():
    return [t for t in backends.targets(["numpy", "array_api_strict"])]


def test_report_renders_matrix_and_one_plot_per_function_and_dtype():
    entries = [CATALOG["softplus"], CATALOG["mse_loss"]]
    targets = _numpy_targets()
    report = run(entries, targets, dtypes=["float64", "float32"])
    page = html_report(report, entries)
    tree = _parse(page)
    assert tree.svgs == 4  # two functions, two dtypes
    # One series per target that has the plot's dtype, every cell a row of the matrix.
    assert sorted(tree.series) == sorted([t.id for e in entries for d in ("float64", "float32")
                                          for t in targets if d in t.backend.dtypes(t)])
    for e in entries:
        section = _section(page, e.name)
        assert section.count("<circle") > 10
        assert f"<a href='#{e.name}'>" in page
    assert page.count("class='ok'") == len(report.cells)
    assert "class='fail'" not in page


def test_report_marks_a_failure_and_draws_its_infinite_errors():
    softplus = CATALOG["softplus"]
    planted = Entry("naive_softplus", naive_softplus, softplus.reference, softplus.cases)
    report = run([planted], backends.targets(["numpy"]), dtypes=["float64"])
    page = html_report(report, [planted])
    _parse(page)
    assert "FAILED" in page
    assert "class='fail'" in page
    section = _section(page, "naive_softplus")
    # exp(x) overflows for large x: inf where the exact value is x, drawn in the top band.
    assert f'cy="{_TOP - 12}"' in section
    assert "failures" in section
    assert "ULP &gt; bound" in section


def test_torch_peer_curve_records_what_it_refuses():
    pytest.importorskip("torch")  # the peer under test (installed by the test extras)
    (f64, f32) = [c for c in peer_curves([CATALOG["cross_entropy"]])
                  if c.peer == "torch.nn.functional"]
    assert (f64.dtype, f32.dtype) == ("float64", "float32")
    # torch raises on a class index out of range, where xploss gives NaN.
    assert "out_of_range_target" in [case for case, _ in f64.raised]
    assert f64.cases > 10
    assert len(f64.points) == f64.cases


def test_peer_curve_shows_a_peer_beyond_the_bound():
    pytest.importorskip("optax")  # the peer under test (installed by the test extras)
    entry = CATALOG["log_cosh_loss"]
    curves = {c.dtype: c for c in peer_curves([entry]) if c.peer == "jax.nn / optax"}
    # optax's log_cosh loses the small residuals to cancellation; xploss holds its bound.
    assert curves["float64"].worst_ulp > 1e6 > entry.ulps
    report = run([entry], backends.targets(["numpy"]), dtypes=["float64"])
    assert report.passed
    page = html_report(report, [entry], list(curves.values()))
    assert "data-series=\"jax.nn / optax\"" in _section(page, "log_cosh_loss")


def test_command_line_writes_the_report_and_json(tmp_path, capsys):
    path, json_path = tmp_path / "report.html", tmp_path / "report.json"
    assert main(["--backend", "numpy", "--function", "softplus", "--function", "mse_loss",
                 "--quick", "--report", str(path), "--json", str(json_path)]) == 0
    data = json.loads(json_path.read_text())
    assert data["combinations"] == [{"backend": "numpy", "device": "cpu", "dtype": d}
                                    for d in ("float64", "float32")]
    assert set(data["worst_ulp"]) == {"softplus", "mse_loss"}
    for cell in data["cells"]:
        assert data["worst_ulp"][cell["function"]][f"numpy:cpu {cell['dtype']}"] == \
            cell["worst_ulp"]
    page = path.read_text(encoding="utf-8")
    assert _parse(page).svgs == 4
    assert "numpy:cpu" in page
    assert "<section id='softplus'>" in page
    assert f"report: {path}" in capsys.readouterr().out


def test_command_line_device_filter(capsys):
    assert main(["--backend", "numpy", "--device", "cpu", "--function", "softplus",
                 "--quick"]) == 0
    assert main(["--backend", "numpy", "--device", "nosuchdevice", "--function",
                 "softplus"]) == 2
    assert "no installed backend has device nosuchdevice" in capsys.readouterr().err


def test_input_magnitude_by_element_row_and_whole():
    from xploss.conformance.runner import input_magnitude

    x = np.array([[1.0, -3.0], [np.inf, 0.5]])
    assert input_magnitude([x], (2, 2)).tolist() == [[1.0, 3.0], [0.0, 0.5]]
    assert input_magnitude([x], (2,)).tolist() == [3.0, 0.5]
    assert input_magnitude([x, np.array([7, 8])], ()).tolist() == 3.0  # integer args ignored
    assert input_magnitude([np.array([2.0, -9.0, 4.0])], (2, 2)).tolist() == [[9.0] * 2] * 2


def test_command_line_colours_a_terminal_only(monkeypatch, capsys):
    from xploss.conformance.cli import use_colour

    class Tty:
        def isatty(self):
            return True

    for var in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(var, raising=False)
    assert use_colour(Tty())
    assert not use_colour(io.StringIO())
    monkeypatch.setenv("TERM", "dumb")
    assert not use_colour(Tty())
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert not use_colour(Tty())
    monkeypatch.delenv("NO_COLOR")
    assert use_colour(io.StringIO())

    argv = ["--backend", "numpy", "--function", "softplus", "--quick"]
    assert main(argv) == 0
    coloured = capsys.readouterr().out
    row = next(line for line in coloured.splitlines() if line.startswith("softplus"))
    assert row.count("\033[32m") == 2
    assert "\033[31m" not in coloured
    assert "\033[32mPASSED\033[0m" in coloured
    monkeypatch.delenv("FORCE_COLOR")
    assert main(argv) == 0
    plain = capsys.readouterr().out  # pytest's capture is not a terminal
    assert "\033[" not in plain
    # The same columns either way: the codes are added after padding.
    def untimed(text):
        return re.sub(r"\d+ s\b", "", text)

    assert untimed(re.sub("\033\\[[0-9]+m", "", coloured)) == untimed(plain)
    assert "2/2 cells" in plain


def test_matrix_paints_a_failed_cell_red():
    from xploss.conformance.cli import print_matrix
    from xploss.conformance.runner import CellResult
    from xploss.conformance.suite import Report

    report = Report(cells=[CellResult("f", "numpy:cpu", "float64", worst_ulp=9.0,
                                      failures=["[case] error 9 ULP > bound 2"]),
                           CellResult("f", "numpy:cpu", "float32", worst_ulp=0.5)])
    out = io.StringIO()
    print_matrix(report, out, colour=True)
    row = out.getvalue().splitlines()[-1]
    assert "\033[31m" in row
    assert "FAIL 9" in row
    assert row.index("\033[31m") < row.index("FAIL 9") < row.index("\033[32m")
