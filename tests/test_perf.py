"""`bench perf` output shape (timing values themselves are benchmarks, not tests)."""
import json

from bench.cli import main
from bench.perf import run_perf
from methods import METHODS


def test_rows_cover_bare_and_every_method_with_ratios():
    rows = run_perf(backbone="mlp", batch=32, iters=2, warmup=1, measure_memory=False)
    assert [r["method"] for r in rows] == ["bare", *METHODS.names()]
    by_name = {r["method"]: r for r in rows}
    assert by_name["ce"]["ratio_to_ce"] == 1.0
    for r in rows:
        assert r["sec_per_iter"] > 0
        assert r["ratio_to_ce"] == r["sec_per_iter"] / by_name["ce"]["sec_per_iter"]


def test_cli_json_is_one_list_with_the_documented_keys(capsys):
    assert main(["perf", "--backbone", "mlp", "--batch", "16", "--iters", "2", "--methods", "dal", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in rows] == ["bare", "ce", "dal"]
    for r in rows:
        assert {"method", "sec_per_iter", "ratio_to_ce", "peak_mem_mb"} <= set(r)
        assert r["peak_mem_mb"] > 0
