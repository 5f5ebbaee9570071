"""``se-zoo bench`` output details: the table's columns line up without memory figures, and
``--plot`` without matplotlib fails before any benchmarking."""
import sys

from se_zoo import bench
from se_zoo.bench import BenchConfig, bench_models, format_table
from se_zoo.cli import main


def test_table_columns_line_up_without_memory():
    result = bench_models(["se_zoo_resnet18"], BenchConfig(batch_size=2, img_size=32, iters=1, warmup=1, repeats=2,
                                                           memory=False))
    lines = format_table(result).splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("candidate"))
    rows = [line for line in lines[header + 1:] if line.strip() and not line.startswith(("-", "note"))][:3]
    assert len(rows) == 3 and all(" - " in row for row in rows), lines
    # every row ends where the header ends, and the "-" stands under "peak MiB"
    assert {len(row) for row in rows} == {len(lines[header])}, lines
    column = lines[header].index("peak MiB") + len("peak MiB") - 1
    assert all(row[column] == "-" for row in rows), lines


def test_plot_without_matplotlib_fails_before_benchmarking(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(bench, "bench_models", lambda *a, **k: calls.append(a))
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    assert main(["bench", "--model", "se_zoo_resnet18", "--plot", "out.png"]) == 1
    assert calls == []
    assert "--plot needs matplotlib: pip install 'se-zoo[plot]'" in capsys.readouterr().err
