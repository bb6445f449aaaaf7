"""Smoke test of the benchmark harness (benchmarks/): it runs in its quickest mode
on NumPy and writes a well-formed table. No timing is asserted."""

import pytest

pytest.importorskip("scipy")  # the NumPy peer is scipy.special

from benchmarks import problems, run
from benchmarks.report import COLUMNS
from xploss import backends


def _table(text):
    lines = text.splitlines()
    start = lines.index("## Results")
    rows = [line for line in lines[start + 1:] if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def test_quick_numpy_run_writes_a_well_formed_table(tmp_path, capsys):
    out = tmp_path / "numpy.md"
    status = run.main(["--quick", "--backend", "numpy", "--size", "small",
                       "--repeats", "1", "--min-time", "0", "--out", str(out)])
    assert status == 0
    text = out.read_text(encoding="utf-8")
    assert "- **numpy**:" in text
    assert "- **cpu**:" in text
    header, rule, *rows = _table(text)
    assert tuple(header) == COLUMNS
    assert len(rule) == len(COLUMNS)
    assert {row[2] for row in rows} == set(problems.PROBLEMS)
    for row in rows:
        cells = dict(zip(COLUMNS, row, strict=True))
        assert cells["backend"] == "numpy:cpu"
        assert cells["size"] == "64x10"
        assert cells["check"] == "ok"
        assert float(cells["ratio"]) > 0
        assert float(cells["ratio (min)"]) > 0
    assert "numpy:cpu" in capsys.readouterr().out


def test_every_installed_backend_is_timed_on_targets_with_values(tmp_path):
    """The harness times each installed library on its devices, never on a
    target without data (torch's meta device) or one entered through a setting;
    a quick eager torch run completes."""
    names = [n for n, reason in backends.available().items() if reason is None]
    targets = run.timed_targets([n for n in names if n in run.RUNNERS])
    assert targets or not any(n in run.RUNNERS for n in names)
    assert all(not t.abstract and t.setting is None for t in targets)
    if "torch" not in names:
        pytest.skip("torch is not installed")
    assert "torch:cpu" in {t.id for t in targets}
    out = tmp_path / "torch.md"
    status = run.main(["--quick", "--backend", "torch", "--mode", "eager", "--size", "small",
                       "--repeats", "1", "--min-time", "0", "--out", str(out)])
    assert status == 0
    assert "| torch:cpu |" in out.read_text(encoding="utf-8")
