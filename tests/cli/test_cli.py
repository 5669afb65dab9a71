"""The command line: listings, data description, the plan, and one-line errors with exit code 2."""
import json
import subprocess
import sys

import pandas as pd
import pytest
from helpers import run_cli

from methods import METHODS


@pytest.mark.parametrize("what", ["methods", "datasets", "presets", "backbones", "noise"])
def test_ls_lists_names_with_descriptions(capsys, what):
    code, out, _ = run_cli(capsys, "ls", what)
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) >= 3 and all(len(line.split(None, 1)) == 2 for line in lines)
    if what == "methods":
        assert [line.split()[0] for line in lines] == METHODS.names()


def test_data_describe_json_has_exactly_the_documented_keys(capsys):
    code, out, _ = run_cli(capsys, "data", "describe", "--dataset", "digits", "--imbalance", "10",
                           "--noise", "sym", "--noise-rate", "0.4", "--data-seed", "3", "--json")
    assert code == 0
    info = json.loads(out)
    assert set(info) == {"num_classes", "train_size", "test_size", "meta_size", "clean_counts",
                         "noisy_counts", "noise_rate_realized", "transition_matrix"}
    assert info["num_classes"] == 10 and info["train_size"] == sum(info["clean_counts"])
    assert 0.2 < info["noise_rate_realized"] < 0.5


BAD_INPUT = [
    (["run", "grid", "--preset", "quik"], "did you mean 'quick'"),
    (["run", "grid", "--methods", "ce,dall"], "did you mean 'dal'"),
    (["run", "grid", "--seeds", "0,x"], "malformed --seeds"),
    (["run", "one", "--method", "ce", "--dataset", "digit"], "did you mean 'digits'"),
    (["run", "one", "--method", "cee", "--dataset", "digits"], "did you mean 'ce'"),
    (["run", "one", "--method", "ce", "--dataset", "digits", "--backbone", "mpl"], "did you mean 'mlp'"),
    (["run", "one", "--method", "ce", "--dataset", "digits", "--imbalance", "0.5"], "imbalance"),
    (["run", "one", "--method", "ce", "--dataset", "digits", "--noise", "sym", "--noise-rate", "1.0"], "noise rate"),
    (["run", "one", "--method", "ce", "--dataset", "digits", "--noise", "symm", "--noise-rate", "0.2"], "did you mean 'sym'"),
    (["run", "one", "--method", "ce", "--dataset", "digits", "--noise", "asym", "--noise-rate", "0.2"], "asym"),
    (["run", "one", "--method", "dal", "--dataset", "digits", "--hp", "q_strat=0.3"], "did you mean 'q_start'"),
    (["data", "describe", "--dataset", "fashion-mnist", "--data-root", "{empty}"], "fashion-mnist"),
    (["run", "grid", "--out", "{file}/grid"], "--out"),
    (["ls", "method"], "invalid choice"),
    (["run", "one", "--method", "ce", "--dataset", "digits", "--pad-mode", "reflect"], "use --pad-mode constant"),
    (["run", "one", "--method", "ce", "--dataset", "cifar10", "--pad-mode", "reflct"], "did you mean 'reflect'"),
    (["run", "one", "--method", "ce", "--dataset", "digits", "--normalisation", "mwnet"], "--normalisation dataset"),
    (["run", "one", "--method", "ce", "--dataset", "cifar10", "--normalisation", "mmcl"], "did you mean 'mmcls'"),
    (["run", "one", "--method", "ce", "--dataset", "digits", "--noise-sampling", "exact"], "needs a noise model"),
    (["data", "describe", "--dataset", "digits", "--noise", "sym", "--noise-rate", "0.2", "--noise-sampling", "exactt"],
     "did you mean 'exact'"),
    (["run", "one", "--method", "ce", "--dataset", "digits", "--pretrained"],
     "backbone 'mlp' has no pretrained weights"),
    (["run", "one", "--method", "ce", "--dataset", "digits", "--backbone", "resnet18", "--pretrained"],
     "take RGB (3-channel) images"),
    (["run", "one", "--method", "ce", "--dataset", "cifar10", "--backbone", "resnet50",
      "--pretrained", "imagenet1k_v3"], "choose one of: imagenet1k_v1, imagenet1k_v2"),
]


@pytest.mark.parametrize("argv,message", BAD_INPUT)
def test_bad_input_is_one_line_exit_2(capsys, tmp_path, monkeypatch, argv, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("BENCH_DATA", str(empty))
    import noisytail_datasets.fashion_mnist as fm
    import noisytail_datasets.locate as locate

    monkeypatch.setattr(fm, "SYSTEM_DIR", empty)
    monkeypatch.setattr(locate, "CACHE_DIR", empty)
    argv = [a.replace("{empty}", str(empty)).replace("{file}", str(tmp_path / "file")) for a in argv]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err


def test_errors_from_a_real_process_have_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "grid", "--preset", "cifar10-n-lt",
                           "--methods", "ce", "--seeds", "0", "--epochs", "1", "--launcher", "local",
                           "--out", str(tmp_path / "o"), "--data-root", str(tmp_path)],
                          capture_output=True, text=True, env={"BENCH_DATA": str(tmp_path), "PATH": "/usr/bin:/bin",
                                                               "HOME": str(tmp_path)})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "CIFAR-10 files not found" in proc.stderr and "--download" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_dry_run_plans_and_run_one_skips_when_done(capsys, tmp_path):
    out_dir = tmp_path / "grid"
    code, out, _ = run_cli(capsys, "run", "grid", "--dry-run", "--out", str(out_dir))
    n_methods = len(METHODS.default_names())
    # the default preset: 3 cells (long tail alone, noise alone, both) x 3 seeds
    assert code == 0 and f"preset default: {9 * n_methods} runs, {9 * n_methods} to do, 0 already done" in out
    assert not out_dir.exists()
    args = ["run", "one", "--method", "ce", "--dataset", "digits", "--imbalance", "10", "--noise", "sym",
            "--noise-rate", "0.4", "--epochs", "2", "--out", str(tmp_path / "one")]
    code, out, _ = run_cli(capsys, *args)
    assert code == 0 and "[1/1]" in out
    runs = pd.read_csv(tmp_path / "one" / "runs.csv")
    assert runs.status.tolist() == ["done"] and runs.epochs.tolist() == [2]
    # its record in one line, with the numbers the store holds
    line = next(x for x in out.splitlines() if x.startswith("run ") and "record:" in x)
    assert f"last {runs.last_acc[0]:.2f}%" in line and f"{runs.run_id[0]}.json" in line
    code, out, _ = run_cli(capsys, *args)
    assert code == 0 and "already done" in out


def test_validate_resolves_every_preset(capsys):
    code, out, _ = run_cli(capsys, "validate")
    assert code == 0 and "cifar100-n-lt: " in out


def test_protocol_flags_reach_the_data_spec(capsys):
    from bench.cli import build_parser
    from bench.cli.args import data_spec

    args = build_parser().parse_args(["run", "one", "--method", "ce", "--dataset", "cifar10", "--noise", "sym",
                                      "--noise-rate", "0.5", "--pad-mode", "reflect", "--normalisation", "mmcls",
                                      "--noise-sampling", "exact"])
    spec = data_spec(args, 0)
    assert (spec.pad_mode, spec.normalisation, spec.noise_sampling) == ("reflect", "mmcls", "exact")
    defaults = data_spec(build_parser().parse_args(["run", "one", "--method", "ce", "--dataset", "digits"]), 0)
    assert (defaults.pad_mode, defaults.normalisation, defaults.noise_sampling) == \
        ("constant", "dataset", "independent")
    # exact-count flip noise relabels exactly int(r*N) of the N training labels (DivideMix, methods.md §4.3)
    code, out, _ = run_cli(capsys, "data", "describe", "--dataset", "digits", "--noise", "flip", "--noise-rate", "0.3",
                           "--noise-sampling", "exact", "--json")
    info = json.loads(out)
    n = info["train_size"]
    assert code == 0 and round(info["noise_rate_realized"] * n) == int(0.3 * n)


def test_pretrained_flag_reaches_the_run_and_the_engine_loads_the_weights(capsys, tmp_path, monkeypatch):
    """`run one --pretrained`: planned with torchvision's default weights, recorded in the run id, and the
    engine's model starts from them (weights faked: nothing is downloaded)."""
    from dataclasses import replace

    import torch
    import torchvision

    from bench.cli.args import DEFAULT_PRETRAINED
    from bench.grid import run
    from bench.grid.presets import describe_recipe
    from bench.nn import backbones
    from bench.train.engine import build_method
    from noisytail_datasets import DataSpec, build_data

    assert DEFAULT_PRETRAINED == backbones.DEFAULT_PRETRAINED
    launched = []

    def fake_launch(pending, store, launcher, options, hooks=None):
        launched.extend(pending)
        return run.Outcome(store, len(pending), 0)

    monkeypatch.setattr(run, "launch", fake_launch)
    monkeypatch.setattr(run, "check_data_of_pending", lambda store, runs, options: None)  # no CIFAR here
    argv = ["run", "one", "--method", "ce", "--dataset", "cifar10", "--backbone", "resnet18", "--epochs", "1",
            "--out", str(tmp_path / "one")]
    assert run_cli(capsys, *argv, "--pretrained")[0] == 0
    assert run_cli(capsys, *argv)[0] == 0
    pretrained, scratch = launched
    assert (pretrained.pretrained, scratch.pretrained) == ("imagenet1k_v1", "")
    assert pretrained == scratch.with_(pretrained="imagenet1k_v1") and pretrained.run_id != scratch.run_id
    assert describe_recipe(pretrained).startswith("resnet18 pretrained=imagenet1k_v1 1ep")

    torch.manual_seed(5)
    state = torchvision.models.resnet18(weights=None).state_dict()
    monkeypatch.setattr(torchvision.models.ResNet18_Weights, "get_state_dict", lambda self, *a, **k: state)
    cfg = replace(pretrained, data=DataSpec(dataset="random-cifar"))  # RGB data that needs no files
    method = build_method(cfg, build_data(cfg.data), torch.device("cpu"), torch.Generator().manual_seed(0))
    assert torch.equal(method.model.conv1.weight, state["conv1.weight"])
    assert torch.equal(method.model.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])
