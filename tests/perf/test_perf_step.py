"""`bench perf` output shape (timing values themselves are benchmarks, not tests)."""
import json

import pytest

from bench.cli import main
from bench.perf.step import run_perf
from methods import METHODS


def test_rows_cover_bare_and_every_method_with_ratios():
    rows = run_perf(backbone="mlp", batch=32, iters=2, warmup=1, measure_memory=False)
    routed = [f"{n}[{route}]" if "meta_grad" in METHODS.get(n).defaults else n
              for n in METHODS.names() for route in (("jvp", "unrolled") if "meta_grad" in METHODS.get(n).defaults
                                                     else ("",))]
    assert [r["method"] for r in rows] == ["bare", *routed]
    assert "mwnet[jvp]" in routed and "mwnet[unrolled]" in routed and "ce" in routed
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


def test_epoch_mode_measures_a_dividemix_epoch_against_ce_and_its_cost_model():
    import math

    from bench.core.errors import UsageError
    from bench.perf.epoch import format_epoch_perf, run_epoch_perf

    r = run_epoch_perf("dividemix", dataset="digits", backbone="mlp", step_repeats=3)
    labeled = [f * r["train_size"] for f in r["labeled_fraction"]]
    assert r["iterations"] == sum(math.ceil(round(n) / 64) for n in labeled)
    assert all(0.0 < f < 1.0 for f in r["labeled_fraction"])
    assert r["epoch_s"] > 0 and r["ce_epoch_s"] > 0 and r["ratio_to_ce"] == r["epoch_s"] / r["ce_epoch_s"]
    parts = r["iterations"] * r["mixmatch_step_s"] + 2 * r["inference_pass_s"] + 2 * r["gmm_fit_s"]
    assert r["model_s"] == pytest.approx(parts)
    assert "measured / model" in format_epoch_perf(r)
    with pytest.raises(UsageError, match="DivideMix"):
        run_epoch_perf("ce", dataset="digits", backbone="mlp")


def test_one_route_only_and_the_candidate_runs_that_route(capsys):
    from bench.perf.step import make_step

    assert main(["perf", "--backbone", "mlp", "--batch", "16", "--iters", "1", "--methods", "mwnet,dal",
                 "--meta-grad", "unrolled", "--json"]) == 0
    assert [r["method"] for r in json.loads(capsys.readouterr().out)] == ["bare", "ce", "mwnet[unrolled]", "dal"]
    step = make_step("gdw[unrolled]", "mlp", 16, __import__("torch").device("cpu"))
    assert step.__closure__ and any(getattr(c.cell_contents, "hp", {}).get("meta_grad") == "unrolled"
                                    for c in step.__closure__ if hasattr(c.cell_contents, "hp"))
