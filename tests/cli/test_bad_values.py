"""Every value of every subcommand is checked before any work (issue 14): a bad one is one line on stderr
('bench: error: …', argparse's own errors included), exit code 2, no traceback, and nothing written.

`CASES` holds at least one bad value for each parameter of each subcommand;
`test_every_parameter_has_a_bad_value` keeps it complete when a flag is added. Nothing here trains: a
grid case is a `--dry-run`, and every other value fails before a run, a timing or a plot starts."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from helpers import run_cli

from bench.core.errors import UsageError
from bench.core.hparams import Range, check_value

GRID = ("run", "grid", "--dry-run")
ONE = ("run", "one", "--method", "ce", "--dataset", "digits", "--epochs", "1")
DESCRIBE = ("data", "describe", "--dataset", "digits")
TUNE = ("tune", "--preset", "quick", "--methods", "ce", "--trials", "2", "--cell", "digits:10:sym:0.4", "--dry-run")
PERF = ("perf", "--methods", "ce", "--iters", "1", "--warmup", "0")
NOWHERE = "{tmp}/nowhere"
REPO = Path(__file__).resolve().parents[2]
#: the README report's committed records, and a file without its section markers
RECORDS, NO_MARKERS = REPO / "results/reports/fmnist-n-lt", REPO / "pyproject.toml"

#: (command, parameter, argv, a fragment of the one-line message)
CASES: list[tuple[str, str, tuple[str, ...], str]] = [
    # ------------------------------------------------------------------ run grid (all dry runs)
    ("run grid", "--preset", (*GRID, "--preset", ""), "argument --preset: must not be empty"),
    ("run grid", "--preset", (*GRID, "--preset", "quik"), "did you mean 'quick'"),
    ("run grid", "--methods", (*GRID, "--methods", ","), "names no method"),
    ("run grid", "--seeds", (*GRID, "--seeds", "4294967296"), "from 0 to 4294967295"),
    ("run grid", "--seeds", (*GRID, "--seeds", "-1"), "from 0 to 4294967295"),
    ("run grid", "--epochs", (*GRID, "--epochs", "0"), "argument --epochs: must be an integer >= 1"),
    ("run grid", "--launcher", (*GRID, "--launcher", "slurm"), "invalid choice: 'slurm'"),
    ("run grid", "--cpus-per-trial", (*GRID, "--cpus-per-trial", "nan"), "'nan' is not a finite number"),
    ("run grid", "--cpus-per-trial", (*GRID, "--cpus-per-trial", "inf"), "'inf' is not a finite number"),
    ("run grid", "--cpus-per-trial", (*GRID, "--cpus-per-trial", "0"), "must be a number > 0"),
    ("run grid", "--cpus-per-trial", (*GRID, "--cpus-per-trial", "100000"), "CPUs of this machine; use at most"),
    ("run grid", "--gpus-per-trial", (*GRID, "--gpus-per-trial", "nan"), "'nan' is not a finite number"),
    ("run grid", "--gpus-per-trial", (*GRID, "--gpus-per-trial", "-1"), "must be a number >= 0"),
    ("run grid", "--gpus-per-trial", (*GRID, "--gpus-per-trial", "99"), "--gpus-per-trial 99 asks for more than"),
    ("run grid", "--address", (*GRID, "--address", ""), "argument --address: must not be empty"),
    ("run grid", "--address", (*GRID, "--address", "127.0.0.1:1"), "--address 127.0.0.1:1: no Ray cluster answers"),
    ("run grid", "--dry-run", ("run", "grid", "--dry-run=yes"), "ignored explicit argument 'yes'"),
    ("run grid", "--short-run", (*GRID, "--short-run=1"), "ignored explicit argument '1'"),
    ("run grid", "--checkpoint-every", (*GRID, "--checkpoint-every", "0"), "must be an integer >= 1, got 0"),
    ("run grid", "--max-failures", (*GRID, "--max-failures", "-1"), "must be an integer >= 0, got -1"),
    ("run grid", "--out", (*GRID, "--out", ""), "argument --out: must not be empty"),
    ("run grid", "--amp", (*GRID, "--amp", "fp8"), "unknown --amp 'fp8'"),
    ("run grid", "--channels-last", (*GRID, "--channels-last", "maybe"), "unknown --channels-last 'maybe'"),
    ("run grid", "--compile", (*GRID, "--compile=1"), "ignored explicit argument '1'"),
    ("run grid", "--deterministic", (*GRID, "--deterministic=1"), "ignored explicit argument '1'"),
    ("run grid", "--device", (*GRID, "--device", "tpu"), "unknown --device 'tpu'"),
    ("run grid", "--device", (*GRID, "--device", "cuda:99"), "--device cuda:99: this machine has"),
    ("run grid", "--data-root", (*GRID, "--data-root", ""), "argument --data-root: must not be empty"),
    ("run grid", "--data-root", ("run", "grid", "--preset", "gdw-table2", "--methods", "ce", "--seeds", "0",
                                 "--epochs", "1", "--launcher", "local", "--data-root", "{tmp}"), "CIFAR-10 files not found"),
    ("run grid", "--download", (*GRID, "--download=1"), "ignored explicit argument '1'"),
    ("run grid", "--data-workers", (*GRID, "--data-workers", "-1"), "must be an integer >= 0, got -1"),
    ("run grid", "--val-fraction", (*GRID, "--val-fraction", "0.9"), "must be a number >= 0 and <= 0.5"),
    ("run grid", "--cell", (*GRID, "--cell", "digits:5:sym:0.4"), "unknown cell of preset 'default'"),
    ("run grid", "--hparams-from", (*GRID, "--hparams-from", NOWHERE), "cannot read it"),
    ("run grid", "--hparams-from", (*GRID, "--hparams-from", ""), "argument --hparams-from: must not be empty"),
    ("run grid", "--logger", (*GRID, "--logger", "tensorbord"), "did you mean 'tensorboard'"),
    ("run grid", "--verbose", (*GRID, "--verbose=1"), "ignored explicit argument '1'"),
    ("run grid", "--logger", (*GRID, "--launcher", "local", "--logger", "tensorboard"), "use --launcher ray"),
    # ------------------------------------------------------------------ run one
    ("run one", "--method", (*ONE, "--method", ""), "argument --method: must not be empty"),
    ("run one", "--method", (*ONE, "--method", "cee"), "did you mean 'ce'"),
    ("run one", "--dataset", (*ONE, "--dataset", "random-cifar"), "no default recipe for `run one`"),
    ("run one", "--dataset", (*ONE, "--dataset", ""), "argument --dataset: must not be empty"),
    ("run one", "--imbalance", (*ONE, "--imbalance", "1e12"), "would have no training image"),
    ("run one", "--imbalance", (*ONE, "--imbalance", "0.5"), "must be a number >= 1"),
    ("run one", "--imbalance", (*ONE, "--imbalance", "nan"), "'nan' is not a finite number"),
    ("run one", "--noise", (*ONE, "--noise", "symm", "--noise-rate", "0.2"), "did you mean 'sym'"),
    ("run one", "--noise-rate", (*ONE, "--noise", "sym", "--noise-rate", "1"), "must be a number >= 0 and < 1"),
    ("run one", "--noise-rate", (*ONE, "--noise-rate", "x"), "'x' is not a number"),
    ("run one", "--order", (*ONE, "--order", "lt"), "unknown order 'lt'"),
    ("run one", "--meta-per-class", (*ONE, "--meta-per-class", "100000"), "would have no training image"),
    ("run one", "--meta-per-class", (*ONE, "--meta-per-class", "-1"), "must be an integer >= 0"),
    ("run one", "--noise-sampling", (*ONE, "--noise-sampling", "exactt"), "did you mean 'exact'"),
    ("run one", "--pad-mode", (*ONE, "--pad-mode", "reflect"), "use --pad-mode constant"),
    ("run one", "--normalisation", (*ONE, "--normalisation", "mwnet"), "--normalisation dataset"),
    ("run one", "--image-size", (*ONE, "--image-size", "-1"), "must be an integer >= 0"),
    ("run one", "--image-size", (*ONE, "--image-size", "32"), "cannot be resized"),
    ("run one", "--backbone", (*ONE, "--backbone", "mpl"), "did you mean 'mlp'"),
    ("run one", "--backbone", (*ONE, "--backbone", ""), "argument --backbone: must not be empty"),
    ("run one", "--pretrained", (*ONE, "--pretrained"), "has no pretrained weights"),
    ("run one", "--seed", (*ONE, "--seed", "4294967296"), "must be an integer >= 0 and <= 4294967295"),
    ("run one", "--seed", (*ONE, "--seed", "-1"), "must be an integer >= 0 and <= 4294967295"),
    ("run one", "--seed", (*ONE, "--seed", "1.5"), "'1.5' is not an integer"),
    ("run one", "--data-seed", (*ONE, "--data-seed", "4294967296"), "must be an integer >= 0 and <= 4294967295"),
    ("run one", "--epochs", (*ONE, "--epochs", "0"), "argument --epochs: must be an integer >= 1"),
    ("run one", "--batch-size", (*ONE, "--batch-size", "0"), "argument --batch-size: must be an integer >= 1"),
    ("run one", "--lr", (*ONE, "--lr", "0"), "argument --lr: must be a number > 0"),
    ("run one", "--lr", (*ONE, "--lr", "nan"), "'nan' is not a finite number"),
    ("run one", "--hp", ("run", "one", "--method", "dal", "--dataset", "digits", "--hp", "q_start=abc"),
     "hyperparameter q_start must be a number, got 'abc'"),
    ("run one", "--hp", ("run", "one", "--method", "dal", "--dataset", "digits", "--hp", "q_start=NaN"),
     "hyperparameter q_start must be a number"),
    ("run one", "--hp", ("run", "one", "--method", "dal", "--dataset", "digits", "--hp", "q_start"),
     "expected KEY=VALUE"),
    ("run one", "--hp", ("run", "one", "--method", "mwnet", "--dataset", "digits", "--hp", "hidden=1.5"),
     "hyperparameter hidden must be an integer, got 1.5"),
    ("run one", "--hp", ("run", "one", "--method", "mwnet", "--dataset", "digits", "--hp", "meta_nesterov=1"),
     "hyperparameter meta_nesterov must be true or false, got 1"),
    ("run one", "--hp", ("run", "one", "--method", "mwnet", "--dataset", "digits", "--hp", "meta_optimizer=3"),
     "hyperparameter meta_optimizer must be a string, got 3"),
    ("run one", "--short-run", (*ONE, "--short-run=1"), "ignored explicit argument '1'"),
    ("run one", "--out", (*ONE, "--out", ""), "argument --out: must not be empty"),
    ("run one", "--amp", (*ONE, "--amp", "fp8"), "unknown --amp 'fp8'"),
    ("run one", "--channels-last", (*ONE, "--channels-last", "maybe"), "unknown --channels-last 'maybe'"),
    ("run one", "--compile", (*ONE, "--compile=1"), "ignored explicit argument '1'"),
    ("run one", "--deterministic", (*ONE, "--deterministic=1"), "ignored explicit argument '1'"),
    ("run one", "--device", (*ONE, "--device", "tpu"), "unknown --device 'tpu'"),
    ("run one", "--device", (*ONE, "--device", "cuda:99"), "--device cuda:99: this machine has"),
    ("run one", "--data-root", (*ONE, "--data-root", ""), "argument --data-root: must not be empty"),
    # data files missing: one line before the results folder is created
    ("run one", "--data-root", ("run", "one", "--method", "ce", "--dataset", "cifar10", "--epochs", "1",
                                "--data-root", "{tmp}"), "CIFAR-10 files not found"),
    ("run one", "--download", (*ONE, "--download=1"), "ignored explicit argument '1'"),
    ("run one", "--data-workers", (*ONE, "--data-workers", "-1"), "must be an integer >= 0, got -1"),
    ("run one", "--val-fraction", (*ONE, "--val-fraction", "-0.1"), "must be a number >= 0 and <= 0.5"),
    ("run one", "--max-per-class", (*ONE, "--max-per-class", "-1"), "must be an integer >= 0, got -1"),
    ("run one", "--max-per-class", (*ONE, "--imbalance", "100", "--max-per-class", "50"), "or a larger --max-per-class"),
    # ------------------------------------------------------------------ data describe
    ("data describe", "--dataset", ("data", "describe", "--dataset", "digit"), "did you mean 'digits'"),
    ("data describe", "--imbalance", (*DESCRIBE, "--imbalance", "1e12"), "would have no training image"),
    ("data describe", "--noise", (*DESCRIBE, "--noise", "symm"), "did you mean 'sym'"),
    ("data describe", "--noise-rate", (*DESCRIBE, "--noise-rate", "-0.1"), "must be a number >= 0 and < 1"),
    ("data describe", "--order", (*DESCRIBE, "--order", "lt"), "unknown order 'lt'"),
    ("data describe", "--meta-per-class", (*DESCRIBE, "--meta-per-class", "100000"), "would have no training image"),
    ("data describe", "--noise-sampling", (*DESCRIBE, "--noise-sampling", "exactt"), "did you mean 'exact'"),
    ("data describe", "--pad-mode", (*DESCRIBE, "--pad-mode", "reflct"), "did you mean 'reflect'"),
    ("data describe", "--normalisation", (*DESCRIBE, "--normalisation", "mmcl"), "unknown"),
    ("data describe", "--image-size", (*DESCRIBE, "--image-size", "x"), "'x' is not an integer"),
    ("data describe", "--data-seed", (*DESCRIBE, "--data-seed", "4294967296"), "<= 4294967295"),
    ("data describe", "--json", (*DESCRIBE, "--json=1"), "ignored explicit argument '1'"),
    ("data describe", "--data-root", (*DESCRIBE, "--data-root", ""), "argument --data-root: must not be empty"),
    ("data describe", "--download", (*DESCRIBE, "--download=1"), "ignored explicit argument '1'"),
    ("data describe", "--val-fraction", (*DESCRIBE, "--val-fraction", "x"), "'x' is not a number"),
    ("data describe", "--max-per-class", (*DESCRIBE, "--max-per-class", "x"), "'x' is not an integer"),
    # ------------------------------------------------------------------ tune (all dry runs)
    ("tune", "--preset", (*TUNE, "--preset", "quik"), "did you mean 'quick'"),
    ("tune", "--methods", (*TUNE, "--methods", ","), "names no method"),
    ("tune", "--methods", (*TUNE, "--methods", "dynamic_loss-vector"), "ablation variant"),
    ("tune", "--cell", (*TUNE, "--cell", "digits:5:sym:0.4"), "unknown cell of preset 'quick'"),
    ("tune", "--trials", (*TUNE, "--trials", "1"), "--trials must be an integer >= 2"),
    ("tune", "--epochs", (*TUNE, "--epochs", "0"), "argument --epochs: must be an integer >= 1"),
    ("tune", "--val-fraction", (*TUNE, "--val-fraction", "0"), "--val-fraction must be in (0, 0.5]"),
    ("tune", "--seed", (*TUNE, "--seed", "-1"), "must be an integer >= 0 and <= 4294967295"),
    ("tune", "--search", (*TUNE, "--search", "grid"), "unknown --search 'grid'"),
    ("tune", "--scheduler", (*TUNE, "--scheduler", "hyperband"), "unknown --scheduler 'hyperband'"),
    ("tune", "--grace-period", (*TUNE, "--scheduler", "asha", "--grace-period", "3"), "leaves no rung"),
    ("tune", "--reduction-factor", (*TUNE, "--reduction-factor", "0"), "must be an integer >= 1"),
    ("tune", "--short-run", (*TUNE, "--short-run=1"), "ignored explicit argument '1'"),
    ("tune", "--dry-run", (*TUNE, "--dry-run=1"), "ignored explicit argument '1'"),
    ("tune", "--launcher", (*TUNE, "--launcher", "slurm"), "invalid choice: 'slurm'"),
    ("tune", "--cpus-per-trial", (*TUNE, "--cpus-per-trial", "0"), "must be a number > 0"),
    ("tune", "--gpus-per-trial", (*TUNE, "--gpus-per-trial", "-1"), "must be a number >= 0"),
    ("tune", "--address", (*TUNE, "--address", "127.0.0.1:1"), "no Ray cluster answers"),
    ("tune", "--checkpoint-every", (*TUNE, "--checkpoint-every", "0"), "must be an integer >= 1, got 0"),
    ("tune", "--max-failures", (*TUNE, "--max-failures", "-1"), "must be an integer >= 0, got -1"),
    ("tune", "--logger", (*TUNE, "--logger", "tensorbord"), "did you mean 'tensorboard'"),
    ("tune", "--verbose", (*TUNE, "--verbose=1"), "ignored explicit argument '1'"),
    ("tune", "--out", (*TUNE, "--out", ""), "argument --out: must not be empty"),
    ("tune", "--amp", (*TUNE, "--amp", "fp8"), "unknown --amp 'fp8'"),
    ("tune", "--channels-last", (*TUNE, "--channels-last", "maybe"), "unknown --channels-last 'maybe'"),
    ("tune", "--compile", (*TUNE, "--compile=1"), "ignored explicit argument '1'"),
    ("tune", "--deterministic", (*TUNE, "--deterministic=1"), "ignored explicit argument '1'"),
    ("tune", "--device", (*TUNE, "--device", "tpu"), "unknown --device 'tpu'"),
    ("tune", "--data-root", (*TUNE, "--data-root", ""), "argument --data-root: must not be empty"),
    ("tune", "--download", (*TUNE, "--download=1"), "ignored explicit argument '1'"),
    ("tune", "--data-workers", (*TUNE, "--data-workers", "-1"), "must be an integer >= 0, got -1"),
    # ------------------------------------------------------------------ perf
    ("perf", "--backbone", (*PERF, "--backbone", "resnet33"), "unknown backbone 'resnet33'"),
    ("perf", "--batch", (*PERF, "--batch", "0"), "--batch must be at least 1, got 0"),
    ("perf", "--device", (*PERF, "--device", "tpu"), "unknown --device 'tpu'"),
    ("perf", "--device", (*PERF, "--device", "cuda:99"), "--device cuda:99: this machine has"),
    ("perf", "--methods", (*PERF, "--methods", ","), "names no method"),
    ("perf", "--methods", (*PERF, "--methods", "ce,dall"), "did you mean 'dal'"),
    ("perf", "--iters", (*PERF, "--iters", "0"), "--iters must be at least 1, got 0"),
    ("perf", "--warmup", (*PERF, "--warmup", "-1"), "--warmup must be at least 0, got -1"),
    ("perf", "--json", (*PERF, "--json=1"), "ignored explicit argument '1'"),
    ("perf", "--epoch", (*PERF, "--epoch=1"), "ignored explicit argument '1'"),
    ("perf", "--method", (*PERF, "--epoch", "--method", "cee"), "did you mean 'ce'"),
    ("perf", "--dataset", (*PERF, "--epoch", "--dataset", "fashion-mnis"), "did you mean 'fashion-mnist'"),
    ("perf", "--noise", (*PERF, "--epoch", "--noise", "symm"), "did you mean 'sym'"),
    ("perf", "--noise-rate", (*PERF, "--epoch", "--noise-rate", "1"), "must be a number >= 0 and < 1"),
    ("perf", "--imbalance", (*PERF, "--epoch", "--imbalance", "0"), "must be a number >= 1"),
    ("perf", "--warmup-epochs", (*PERF, "--epoch", "--warmup-epochs", "-1"), "--warmup-epochs must be at least 0"),
    ("perf", "--data-root", (*PERF, "--data-root", ""), "argument --data-root: must not be empty"),
    ("perf", "--throughput", (*PERF, "--throughput=1"), "ignored explicit argument '1'"),
    ("perf", "--epochs", (*PERF, "--throughput", "--epochs", "0"), "--epochs must be at least 1, got 0"),
    ("perf", "--packs", (*PERF, "--throughput", "--packs", "0,1"), "each number of packed trials must be at least 1"),
    ("perf", "--packs", (*PERF, "--throughput", "--packs", "1,x"), "expected integers such as 1,2,4,8"),
    ("perf", "--json-out", (*PERF, "--stream", "--json-out", "{tmp}"), "is a folder; give a file name"),
    ("perf", "--stream", (*PERF, "--stream=1"), "ignored explicit argument '1'"),
    ("perf", "--images", (*PERF, "--stream", "--images", "0"), "--images must be at least 1, got 0"),
    ("perf", "--workers", (*PERF, "--stream", "--workers", "-1"), "--workers must be at least 0, got -1"),
    ("perf", "--image-size", (*PERF, "--stream", "--image-size", "0"), "--image-size must be at least 1, got 0"),
    ("perf", "--launcher", (*PERF, "--launcher", "slurm"), "invalid choice: 'slurm'"),
    ("perf", "--meta-grad", (*PERF, "--meta-grad", "fast"), "invalid choice: 'fast'"),
    ("perf", "--preset", (*PERF, "--launcher", "local", "--preset", "quik"), "did you mean 'quick'"),
    ("perf", "--amp", (*PERF, "--amp", "fp8"), "unknown --amp 'fp8'"),
    ("perf", "--channels-last", (*PERF, "--channels-last", "maybe"), "unknown --channels-last 'maybe'"),
    ("perf", "--compile", (*PERF, "--compile=1"), "ignored explicit argument '1'"),
    ("perf", "--deterministic", (*PERF, "--deterministic=1"), "ignored explicit argument '1'"),
    # ------------------------------------------------------------------ ls, validate
    ("ls", "what", ("ls", "method"), "invalid choice: 'method'"),
    ("validate", "--preset", ("validate", "--preset", "quik"), "did you mean 'quick'"),
    ("validate", "--preset", ("validate", "--preset", ""), "argument --preset: must not be empty"),
    # ------------------------------------------------------------------ table, stats, plots, results repair
    ("table", "--results", ("table", "--results", NOWHERE), "does not exist"),
    ("table", "--preset", ("table", "--results", NOWHERE, "--preset", ""), "argument --preset: must not be empty"),
    ("table", "--layout", ("table", "--results", NOWHERE, "--layout", "dl-tabel2"), "unknown table layout"),
    ("table", "--format", ("table", "--results", NOWHERE, "--format", "docx"), "unknown --format 'docx'"),
    ("table", "--metric", ("table", "--results", NOWHERE, "--metric", "worst"), "unknown --metric 'worst'"),
    ("table", "--reference", ("table", "--results", NOWHERE, "--reference=1"), "ignored explicit argument '1'"),
    ("stats", "--results", ("stats", "--results", NOWHERE), "does not exist"),
    ("stats", "--preset", ("stats", "--results", NOWHERE, "--preset", ""), "argument --preset: must not be empty"),
    ("stats", "--metric", ("stats", "--results", NOWHERE, "--metric", "worst"), "unknown --metric 'worst'"),
    ("stats", "--reference-method", ("stats", "--results", NOWHERE, "--reference-method", ""), "must not be empty"),
    ("stats", "--alpha", ("stats", "--results", NOWHERE, "--alpha", "2"), "must be a number > 0 and < 1, got 2"),
    ("stats", "--alpha", ("stats", "--results", NOWHERE, "--alpha", "nan"), "'nan' is not a finite number"),
    ("plots", "--results", ("plots", "--results", NOWHERE), "does not exist"),
    ("plots", "--preset", ("plots", "--results", NOWHERE, "--preset", ""), "argument --preset: must not be empty"),
    ("plots", "--format", ("plots", "--results", NOWHERE, "--format", "gif"), "unknown --format 'gif'"),
    ("plots", "--metric", ("plots", "--results", NOWHERE, "--metric", "worst"), "unknown --metric 'worst'"),
    ("plots", "--cell", ("plots", "--results", NOWHERE, "--cell", "digits"), "cell"),
    ("results repair", "--results", ("results", "repair", "--results", NOWHERE), "has no runs/ folder"),
    # ------------------------------------------------------------------ report
    ("report", "name", ("report", "fmnist-n-ltt", "--from-results"), "did you mean 'fmnist-n-lt'"),
    ("report", "--results", ("report", "fmnist-n-lt", "--results", NOWHERE), "does not exist"),
    ("report", "--from-results", ("report", "fmnist-n-lt", "--from-results", NOWHERE), "holds no records"),
    ("report", "--readme", ("report", "fmnist-n-lt", "--from-results", str(RECORDS), "--readme", NOWHERE),
     "no file"),
    ("report", "--readme", ("report", "fmnist-n-lt", "--from-results", str(RECORDS), "--readme", str(NO_MARKERS)),
     "no section markers for report 'fmnist-n-lt'"),
    ("report", "--check", ("report", "fmnist-n-lt", "--results", NOWHERE, "--check"), "use it with --from-results"),
    ("report", "--no-figures", ("report", "fmnist-n-lt", "--from-results", "--no-figures=1"),
     "ignored explicit argument '1'"),
]


def _leaf_parsers(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """'run grid' -> its parser, for every subcommand (nested ones included)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return {prefix: parser}
    out: dict[str, argparse.ArgumentParser] = {}
    for name, child in subs[0].choices.items():
        out.update(_leaf_parsers(child, f"{prefix} {name}".strip()))
    return out


def _parameters(parser: argparse.ArgumentParser) -> set[str]:
    return {max(a.option_strings, key=len) if a.option_strings else a.dest for a in parser._actions
            if not isinstance(a, argparse._HelpAction)}


def test_every_parameter_has_a_bad_value():
    from bench.cli import build_parser

    leaves = _leaf_parsers(build_parser())
    covered: dict[str, set[str]] = {}
    for command, param, argv, _ in CASES:
        assert " ".join(argv).startswith(command), (command, argv)
        covered.setdefault(command, set()).add(param)
    assert set(covered) == set(leaves)
    for command, parser in leaves.items():
        assert covered[command] == _parameters(parser), command


@pytest.mark.parametrize("command,param,argv,message", CASES,
                         ids=[f"{c}:{p}={a[-1]}" for c, p, a, _ in CASES])
def test_a_bad_value_is_one_line_exit_2_and_nothing_written(capsys, tmp_path, monkeypatch, command, param, argv,
                                                            message):
    monkeypatch.chdir(tmp_path)  # the default results folders (results/...) would appear here
    monkeypatch.setenv("BENCH_DATA", str(tmp_path))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, out, err = run_cli(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("bench: error: ") and message in lines[0], err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before, "a bad value wrote files"


def test_batch_size_zero_is_not_the_default_batch_size():
    """`--batch-size 0` used to plan the default recipe's batch (and its run id) silently."""
    from bench.cli import build_parser

    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["run", "one", "--method", "ce", "--dataset", "digits", "--batch-size", "0"])
    assert exc.value.code == 2


@pytest.mark.parametrize("value,default,rule,fragment", [
    ("abc", 0.4, None, "must be a number, got 'abc'"),
    (float("inf"), 0.4, None, "must be a number, got inf"),
    (True, 0.4, None, "must be a number, got True"),
    (1.5, 3, None, "must be an integer, got 1.5"),
    (1, False, None, "must be true or false, got 1"),
    (3, "adam", None, "must be a string, got 3"),
    ("x", None, Range(ge=1), "must be >= 1, got 'x'"),
    (float("nan"), None, Range(ge=1), "must be >= 1, got nan"),
    (float("inf"), None, Range(ge=1), "must be >= 1, got inf"),
    (2.5, None, Range(ge=1, integer=True), "must be an integer >= 1, got 2.5"),
])
def test_a_hyperparameter_of_the_wrong_type_is_refused(value, default, rule, fragment):
    with pytest.raises(UsageError, match="m: hyperparameter k ") as exc:
        check_value("m", "k", value, default, rule)
    assert fragment in str(exc.value)


def test_values_of_the_right_type_pass():
    check_value("m", "k", 2, 0.5, Range(gt=0))  # an int where a float is expected
    check_value("m", "k", None, None, Range(ge=1, integer=True))
    check_value("m", "k", 4, None, Range(ge=1, integer=True))
    assert str(Range(ge=1, integer=True)) == "an integer >= 1" and str(Range()) == "any number"
