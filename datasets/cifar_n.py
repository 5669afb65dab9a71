"""CIFAR-10N / CIFAR-100N (Wei et al., ICLR 2022): released human training labels used as a "real" noise model.

Noise names (`bench ls noise`): on cifar10 `human-aggre` (majority vote, key aggre_label),
`human-rand1..3` (one annotator each, random_label1..3) and `human-worst` (a wrong vote when there is
one, worse_label); on cifar100 `human-noisy` (noisy_label). The rate is fixed by the file, so
`noise_rate` must stay 0, and `noise_sampling` must stay "independent" (nothing is sampled).

Files (from github.com/UCSC-REAL/cifar-10-100n, folder data/): `CIFAR-10_human.pt`, `CIFAR-100_human.pt`,
torch.save zip archives of a dict of NumPy int64 arrays (CIFAR-100N's coarse keys are Python lists and
are not used). Each root of the CIFAR search (data_root, $BENCH_DATA, the user cache) is looked at
directly and under `cifar-10-100n/data/` (the repository cloned into the root). The pickle inside is read
with an unpickler that allows only the four NumPy/codecs globals such arrays need; torch is not used.
Entry i labels the i-th training image of the python-version batches (data_batch_1..5 / train, the
torchvision order); `clean_label` must equal the CIFAR training labels, else the file is refused.

Order with the long tail and the meta set: exactly as for synthetic noise (see `build`). The long-tail
cut and the meta split are drawn on the CLEAN labels with the same generators as `noise="none"`, so the
same images are kept; then every kept training image gets its human label, and meta images keep their
clean label. Nothing is random at the noise stage, so the labels depend only on (dataset, protocol,
data seed) and the file.
"""
from __future__ import annotations

import functools
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.core.errors import UsageError

from . import locate
from .safe_pickle import load_array_dict

REPO_URL = "https://github.com/UCSC-REAL/cifar-10-100n"
REPO_SUBDIR = Path("cifar-10-100n") / "data"  # where a clone of the repository keeps the files
LABEL_FILES = {"cifar10": "CIFAR-10_human.pt", "cifar100": "CIFAR-100_human.pt"}
CLEAN_KEY = "clean_label"


@dataclass(frozen=True)
class HumanNoise:
    """One key of a CIFAR-N label file, registered as a noise model (it has no transition matrix)."""

    name: str
    dataset: str
    key: str
    full_rate: float  # fraction of the 50,000 labels that differ from clean_label (spec §1.2)
    what: str

    @property
    def description(self) -> str:
        return (f"{self.dataset} only: CIFAR-N human labels, {self.what} ({self.key}, "
                f"{self.full_rate:.1%} noisy); rate fixed by the file, keep --noise-rate 0")

    def __call__(self, rate, num_classes, class_counts, dataset, superclass) -> np.ndarray:
        raise UsageError(f"noise '{self.name}' has no transition matrix: its labels are read from "
                         f"{LABEL_FILES[self.dataset]} (build the data with build_data)")


HUMAN_NOISES: dict[str, HumanNoise] = {n.name: n for n in (
    HumanNoise("human-aggre", "cifar10", "aggre_label", 0.0901, "majority vote of 3 annotators"),
    HumanNoise("human-rand1", "cifar10", "random_label1", 0.1723, "1st of the 3 annotations"),
    HumanNoise("human-rand2", "cifar10", "random_label2", 0.1812, "2nd of the 3 annotations"),
    HumanNoise("human-rand3", "cifar10", "random_label3", 0.1764, "3rd of the 3 annotations"),
    HumanNoise("human-worst", "cifar10", "worse_label", 0.4021, "a wrong annotation whenever one exists"),
    HumanNoise("human-noisy", "cifar100", "noisy_label", 0.4020, "one annotation per image"),
)}


def is_human_noise(noise: str) -> bool:
    """Whether `noise` names released human labels rather than a synthetic transition matrix."""
    return noise in HUMAN_NOISES


def check_human_noise(noise: str, dataset: str, noise_rate: float, noise_sampling: str) -> None:
    """Raise a one-line UsageError if human noise `noise` cannot be used with these spec fields."""
    human = HUMAN_NOISES.get(noise)
    if human is None:
        return
    if dataset != human.dataset:
        fitting = [n for n, h in HUMAN_NOISES.items() if h.dataset == dataset]
        fix = (f"on {dataset} use --noise {' or '.join(fitting)}" if fitting
               else f"human labels exist only for {', '.join(sorted(LABEL_FILES))}; use a synthetic noise")
        raise UsageError(f"noise '{noise}' is the human labels of {human.dataset}, not of {dataset}; {fix}")
    if noise_rate != 0:
        raise UsageError(f"noise '{noise}' has its rate fixed by {LABEL_FILES[dataset]} "
                         f"({human.full_rate:.1%} on the full set), got --noise-rate {noise_rate}; "
                         "drop --noise-rate (or set it to 0)")
    if noise_sampling != "independent":
        raise UsageError(f"noise sampling '{noise_sampling}' draws synthetic noise, but '{noise}' reads fixed "
                         "human labels; use --noise-sampling independent")


def label_file_candidates(dataset: str, data_root: str | None) -> list[Path]:
    """Where the label file of `dataset` is looked for, in order."""
    roots = locate.dedupe([*locate.user_roots(data_root), locate.CACHE_DIR])
    name = LABEL_FILES[dataset]
    return [path for root in roots for path in (root / name, root / REPO_SUBDIR / name)]


def find_label_file(dataset: str, data_root: str | None) -> Path:
    """The first existing label file of `dataset`; a one-line UsageError naming the places looked at if none."""
    candidates = label_file_candidates(dataset, data_root)
    for path in candidates:
        if path.is_file():
            return path
    name = LABEL_FILES[dataset]
    looked = ", ".join(str(p.parent) for p in candidates)
    raise UsageError(f"{name} (CIFAR-N human labels) not found; looked in: {looked}. Fix: take data/{name} "
                     f"from {REPO_URL} and put it in --data-root DIR (or clone the repository into DIR), "
                     f"or set ${locate.ENV_VAR}; --download does not fetch it")


def read_label_file(path: Path) -> dict:
    """The dict inside a torch.save zip archive of NumPy arrays/lists, unpickled without running foreign code."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(members) != 1:
                raise UsageError(f"{path} is not a torch.save archive (no single */data.pkl inside); "
                                 f"use data/{path.name} from {REPO_URL}")
            raw = archive.read(members[0])
    except zipfile.BadZipFile:
        raise UsageError(f"{path} is not a torch.save zip archive; use data/{path.name} from {REPO_URL}") from None
    return load_array_dict(io.BytesIO(raw), "latin1", path, "a dict of label arrays",
                           f"use the unmodified data/{path.name} from {REPO_URL}")


@functools.lru_cache(maxsize=4)
def _read_cached(path: str, mtime_ns: int, size: int) -> dict:
    return read_label_file(Path(path))


def _label_array(content: dict, key: str, path: Path) -> np.ndarray:
    if key not in content:
        raise UsageError(f"{path} has no key '{key}' (keys: {', '.join(map(str, content))}); "
                         f"use data/{path.name} from {REPO_URL}")
    labels = np.asarray(content[key])
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise UsageError(f"{path}: '{key}' must be a 1-D integer array, got {labels.dtype} of shape {labels.shape}")
    return labels.astype(np.int64)


def human_train_labels(noise: str, train_y: np.ndarray, num_classes: int, data_root: str | None = None) -> np.ndarray:
    """The human label of every base training image under noise `noise`, in the base (python-version) order.

    `train_y` are the CIFAR training labels; the file's clean_label must equal them (the order check).
    """
    human = HUMAN_NOISES[noise]
    path = find_label_file(human.dataset, data_root)
    stat = path.stat()
    content = _read_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    clean = _label_array(content, CLEAN_KEY, path)
    if len(clean) != len(train_y):
        raise UsageError(f"{path} labels {len(clean)} images but the {human.dataset} training set found has "
                         f"{len(train_y)}; wrong file or wrong CIFAR copy (pair {path.name} with the full "
                         "python-version CIFAR, --data-root)")
    mismatch = np.flatnonzero(clean != train_y)
    if len(mismatch):
        i = int(mismatch[0])
        raise UsageError(f"{path}: clean_label differs from the {human.dataset} training labels at {len(mismatch)} "
                         f"images (first: index {i}, file {clean[i]}, CIFAR {train_y[i]}); the file must follow the "
                         f"python-version order (data_batch_1..5 / train): use data/{path.name}, not the *_ordered.npy "
                         "(TFDS order) files, with the matching CIFAR copy")
    noisy = _label_array(content, human.key, path)
    if len(noisy) != len(train_y) or noisy.min() < 0 or noisy.max() >= num_classes:
        raise UsageError(f"{path}: '{human.key}' must hold {len(train_y)} labels in 0..{num_classes - 1}; "
                         f"use the unmodified data/{path.name} from {REPO_URL}")
    return noisy
