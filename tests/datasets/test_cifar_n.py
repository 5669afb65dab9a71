"""CIFAR-10N / CIFAR-100N human noise on fixtures in the real formats: exact label replacement, the long-tail
cut and meta split on clean labels, the refusals, file search, the safe reader and the order check."""
from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from fake_cifar import FAKE_TRAIN_PER_CLASS, write_fake_cifar, write_fake_cifar_n

from bench.cli import main
from bench.core.errors import UsageError
from noisytail_datasets import NOISE_MODELS, DataBundle, DataSpec, build_data, long_tail_counts, transition_matrix
from noisytail_datasets.cifar_n import HUMAN_NOISES, read_label_file

C10N = {"human-aggre": "aggre_label", "human-rand1": "random_label1", "human-rand2": "random_label2",
        "human-rand3": "random_label3", "human-worst": "worse_label"}


@pytest.fixture(scope="module")
def cifar_n(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    """A data root with fake CIFAR-10/100 and both CIFAR-N label files directly in it."""
    root = tmp_path_factory.mktemp("cifar_n")
    write_fake_cifar(root)
    return root, write_fake_cifar_n(root)


def _build(root: Path, **spec) -> DataBundle:
    return build_data(DataSpec(**{"dataset": "cifar10", **spec}), data_root=str(root))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.numpy()


def test_registry_lists_the_human_noises():
    assert [n for n in NOISE_MODELS if n.startswith("human-")] == [*C10N, "human-noisy"]
    assert {n: HUMAN_NOISES[n].key for n in C10N} == C10N and HUMAN_NOISES["human-noisy"].key == "noisy_label"
    with pytest.raises(UsageError, match="no transition matrix"):
        transition_matrix("human-aggre", 0.0, 10)


@pytest.mark.parametrize("noise,dataset,key", [*((n, "cifar10", k) for n, k in C10N.items()),
                                               ("human-noisy", "cifar100", "noisy_label")])
def test_every_training_label_is_the_chosen_human_label(cifar_n, noise, dataset, key):
    root, written = cifar_n
    labels = written[dataset]
    bundle = _build(root, dataset=dataset, noise=noise, meta_per_class=0)
    idx = _np(bundle.train_source_index)
    assert np.array_equal(idx, np.arange(len(labels["clean_label"])))  # rho 1, no meta set: every image
    assert np.array_equal(_np(bundle.train_y), labels[key])
    assert np.array_equal(_np(bundle.train_true_y), labels["clean_label"])
    assert (labels[key] != labels["clean_label"]).any()


@pytest.mark.parametrize("order", ["lt-noise", "meta-noise-lt"])
def test_long_tail_and_meta_split_are_drawn_on_clean_labels(cifar_n, order):
    root, written = cifar_n
    clean, worst = written["cifar10"]["clean_label"], written["cifar10"]["worse_label"]
    protocol = {"imbalance": 5.0, "order": order, "meta_per_class": 3, "data_seed": 4}
    human, noiseless = _build(root, noise="human-worst", **protocol), _build(root, noise="none", **protocol)
    idx, meta_idx = _np(human.train_source_index), _np(human.meta_source_index)
    assert np.array_equal(idx, _np(noiseless.train_source_index))
    assert np.array_equal(meta_idx, _np(noiseless.meta_source_index))
    n_max = FAKE_TRAIN_PER_CLASS - (3 if order == "meta-noise-lt" else 0)
    expected = np.minimum(long_tail_counts(n_max, 10, 5.0), FAKE_TRAIN_PER_CLASS - 3)
    assert np.array_equal(np.bincount(clean[idx], minlength=10), expected)
    assert np.array_equal(_np(human.train_y), worst[idx]) and np.array_equal(_np(human.train_true_y), clean[idx])
    assert np.array_equal(_np(human.meta_y), clean[meta_idx])
    assert (worst[meta_idx] != clean[meta_idx]).any()  # the meta set would show human noise if it had any


def test_same_protocol_same_labels(cifar_n):
    root, written = cifar_n
    first, again = (_build(root, noise="human-rand1", imbalance=4.0, data_seed=2) for _ in range(2))
    for name in ("train_source_index", "train_y", "meta_source_index", "meta_y"):
        assert torch.equal(getattr(first, name), getattr(again, name))
    other = _build(root, noise="human-rand1", imbalance=4.0, data_seed=3)
    assert not torch.equal(first.train_source_index, other.train_source_index)
    assert np.array_equal(_np(other.train_y), written["cifar10"]["random_label1"][_np(other.train_source_index)])


@pytest.mark.parametrize("spec,message", [
    ({"noise": "human-worst", "noise_rate": 0.2}, "rate fixed by CIFAR-10_human.pt.*drop --noise-rate"),
    ({"noise": "human-aggre", "noise_sampling": "exact"}, "use --noise-sampling independent"),
    ({"noise": "human-noisy"}, "human labels of cifar100, not of cifar10; on cifar10 use --noise human-aggre or"),
    ({"noise": "human-aggre", "dataset": "cifar100"}, "on cifar100 use --noise human-noisy"),
    ({"noise": "human-aggre", "dataset": "digits"}, "human labels exist only for cifar10, cifar100"),
])
def test_refusals_are_one_line(spec, message):
    with pytest.raises(UsageError, match=message) as err:
        DataSpec(**{"dataset": "cifar10", **spec}).validate()
    assert "\n" not in str(err.value)


def test_missing_file_names_it_and_where_it_was_looked_for(no_data_dirs):
    write_fake_cifar(no_data_dirs)
    with pytest.raises(UsageError) as err:
        _build(no_data_dirs, noise="human-aggre")
    text = str(err.value)
    assert "CIFAR-10_human.pt" in text and str(no_data_dirs / "cifar-10-100n" / "data") in text
    assert "github.com/UCSC-REAL/cifar-10-100n" in text and "--data-root" in text and "\n" not in text


def test_file_in_a_clone_of_the_repository_is_found(no_data_dirs):
    write_fake_cifar(no_data_dirs)
    written = write_fake_cifar_n(no_data_dirs, no_data_dirs / "cifar-10-100n" / "data")
    bundle = _build(no_data_dirs, dataset="cifar100", noise="human-noisy")
    assert np.array_equal(_np(bundle.train_y), written["cifar100"]["noisy_label"][_np(bundle.train_source_index)])


def _write_labels(root: Path, labels: dict) -> None:
    torch.save(labels, root / "CIFAR-10_human.pt")


def test_order_check_refuses_labels_of_other_images(no_data_dirs, cifar_n):
    write_fake_cifar(no_data_dirs)
    labels = dict(cifar_n[1]["cifar10"])
    labels["clean_label"] = np.roll(labels["clean_label"], 1)  # e.g. the TFDS-ordered file
    _write_labels(no_data_dirs, labels)
    with pytest.raises(UsageError, match="clean_label differs from the cifar10 training labels.*python-version order"):
        _build(no_data_dirs, noise="human-aggre")
    labels["clean_label"] = cifar_n[1]["cifar10"]["clean_label"][:-1]
    _write_labels(no_data_dirs, labels)
    with pytest.raises(UsageError, match="labels 199 images but the cifar10 training set found has 200"):
        _build(no_data_dirs, noise="human-aggre")


class _OpensAFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def test_reader_refuses_foreign_globals_without_running_them(no_data_dirs, cifar_n, tmp_path):
    write_fake_cifar(no_data_dirs)
    marker = tmp_path / "should-not-exist"
    payload = pickle.dumps({"clean_label": _OpensAFile(marker)}, protocol=2)
    with zipfile.ZipFile(no_data_dirs / "CIFAR-10_human.pt", "w") as archive:
        archive.writestr("archive/data.pkl", payload)
    with pytest.raises(UsageError, match="could not be read safely.*not allowed"):
        _build(no_data_dirs, noise="human-aggre")
    assert not marker.exists()
    (no_data_dirs / "CIFAR-10_human.pt").write_bytes(payload)  # a bare pickle, not a zip
    with pytest.raises(UsageError, match="not a torch.save zip archive"):
        _build(no_data_dirs, noise="human-aggre")


def test_data_describe_reports_the_observed_rate(cifar_n, capsys):
    root, written = cifar_n
    labels = written["cifar10"]
    argv = ["data", "describe", "--dataset", "cifar10", "--noise", "human-worst", "--data-root", str(root)]
    assert main([*argv, "--meta-per-class", "0", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["noise_rate_realized"] == pytest.approx((labels["worse_label"] != labels["clean_label"]).mean())
    assert info["noisy_counts"] == np.bincount(labels["worse_label"], minlength=10).tolist()
    assert main(argv) == 0 and "noise_rate_realized: 0." in capsys.readouterr().out
    assert main([*argv, "--noise-rate", "0.4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "drop --noise-rate" in err


def test_ls_noise_lists_human_noises(capsys):
    assert main(["ls", "noise"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert {*C10N, "human-noisy"} <= set(names) and "sym" in names


def test_reader_accepts_the_numpy_1_global_names_of_the_released_files(tmp_path, cifar_n):
    labels = {"clean_label": cifar_n[1]["cifar10"]["clean_label"], "coarse": [1, 2]}
    torch.save(labels, tmp_path / "new.pt")
    with zipfile.ZipFile(tmp_path / "new.pt") as archive:
        raw = archive.read("new/data.pkl")
    assert b"numpy._core.multiarray\n_reconstruct" in raw  # protocol-2 GLOBAL, as NumPy 2 writes it
    with zipfile.ZipFile(tmp_path / "CIFAR-10_human.pt", "w") as archive:  # as the released file (NumPy 1)
        archive.writestr("archive/data.pkl", raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    content = read_label_file(tmp_path / "CIFAR-10_human.pt")
    assert np.array_equal(content["clean_label"], labels["clean_label"]) and content["coarse"] == [1, 2]
    assert content["clean_label"].dtype == np.int64
