"""`DataSpec`: the data protocol of a run (dataset, imbalance, noise and how it is sampled, order, meta set,
data seed, padding mode and normalisation constants)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral

from bench.core.errors import UsageError, unknown

from .augment import PAD_MODES
from .catalog import DATASETS
from .cifar_n import check_human_noise
from .class_maps import asym_map, has_asym_map
from .noise import NOISE_MODELS, NOISE_SAMPLINGS, synthetic_noise_names
from .normalisation import check_normalisation

# "lt-noise": long-tail subsample, then noise (Dynamic Loss, FSR; protocols §C.1, §C.3).
# "meta-noise-lt": meta split, noise on the balanced rest, then long-tail on true labels (GDW; §C.2, §C.4).
ORDERS = ("lt-noise", "meta-noise-lt")


@dataclass(frozen=True)
class DataSpec:
    """Everything that determines the data of a run; all of it is hashed into the run id.

    pad_mode: "constant" (zeros, torchvision RandomCrop(padding=4)) or "reflect" (MW-Net/GDW).
    normalisation: "dataset" (its own mean/std), "mwnet" or "mmcls" (see `normalisation.NORMALISATIONS`).
    noise_sampling: "independent" (each label redrawn from its row) or "exact" (DivideMix: exactly
    int(r·N) samples relabelled from the rate-1 noise model).
    noise "human-*" (CIFAR-N, `cifar_n`): released human labels; noise_rate 0 and sampling "independent".
    image_size: crop size of a streamed dataset (0: its own).
    val_fraction: share of each (noisy) class of the training set held out as a validation split with the
    training set's noisy labels (`noisytail_datasets.build`); 0 = none, as in the papers.
    max_per_class: a cap on n_max, the head class's size before the long-tail cut (0: the smallest base
    class size, as in the papers); a smaller, cheaper training set with the same long-tail profile.
    """

    dataset: str
    imbalance: float = 1.0
    noise: str = "none"
    noise_rate: float = 0.0
    order: str = "lt-noise"
    meta_per_class: int = 10
    data_seed: int = 0
    pad_mode: str = "constant"
    normalisation: str = "dataset"
    noise_sampling: str = "independent"
    #: the crop size streamed images are trained and evaluated at (0: the dataset's own, e.g. 224); the
    #: resize before the crop scales with it. Only for datasets whose images are files (streamed).
    image_size: int = 0
    #: share of each noisy class held out of the noisy training set for model selection (0: no split)
    val_fraction: float = 0.0
    #: cap on the head class's size n_max before the long-tail cut (0: no cap, the papers' protocol)
    max_per_class: int = 0

    def validate(self) -> None:
        """Raise UsageError naming the first invalid field and how to fix it."""
        DATASETS.get(self.dataset)
        NOISE_MODELS.get(self.noise)
        if self.order not in ORDERS:
            raise unknown("order", self.order, ORDERS)
        if not (math.isfinite(self.imbalance) and self.imbalance >= 1):
            raise UsageError(f"imbalance ratio rho = n_max/n_min must be a finite number >= 1, got {self.imbalance}")
        if not 0 <= self.noise_rate < 1:
            raise UsageError(f"noise rate must be in [0, 1), got {self.noise_rate}")
        if self.noise == "none" and self.noise_rate > 0:
            raise UsageError(f"noise 'none' with noise rate {self.noise_rate}; pick a noise model "
                             f"({', '.join(synthetic_noise_names())}) or set the rate to 0")
        if self.noise == "asym" and not has_asym_map(self.dataset):
            asym_map(self.dataset)  # raises the UsageError that names the alternatives
        m = self.meta_per_class
        if isinstance(m, bool) or not isinstance(m, Integral) or m < 0:
            raise UsageError(f"meta_per_class must be an integer >= 0, got {self.meta_per_class!r}")
        if m and not DATASETS.get(self.dataset).clean_labels_known and not DATASETS.get(self.dataset).has_meta_pool:
            raise UsageError(f"dataset '{self.dataset}' has no clean training labels, so no trusted meta set can be "
                             f"carved from it; use --meta-per-class 0")
        if self.pad_mode not in PAD_MODES:
            raise unknown("pad mode", self.pad_mode, PAD_MODES)
        if self.pad_mode != "constant" and not DATASETS.get(self.dataset).augment.pad:
            raise UsageError(f"pad mode '{self.pad_mode}': dataset '{self.dataset}' is trained without padding; "
                             "use --pad-mode constant")
        check_normalisation(self.normalisation, self.dataset)
        if self.noise_sampling not in NOISE_SAMPLINGS:
            raise unknown("noise sampling", self.noise_sampling, NOISE_SAMPLINGS)
        if self.noise_sampling == "exact" and self.noise == "none":
            raise UsageError("noise sampling 'exact' needs a noise model; pick --noise "
                             f"({', '.join(synthetic_noise_names())}) or --noise-sampling independent")
        check_human_noise(self.noise, self.dataset, self.noise_rate, self.noise_sampling)
        self._check_image_size()
        v = self.val_fraction
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 0.5:
            raise UsageError(f"validation fraction must be a number in [0, 0.5] (0: no validation split), got {v!r}")
        c = self.max_per_class
        if isinstance(c, bool) or not isinstance(c, Integral) or c < 0:
            raise UsageError(f"max_per_class must be an integer >= 0 (0: no cap), got {c!r}")
        if isinstance(self.data_seed, bool) or not isinstance(self.data_seed, Integral) or self.data_seed < 0:
            raise UsageError(f"data_seed must be an integer >= 0, got {self.data_seed!r}")

    def _check_image_size(self) -> None:
        size, info = self.image_size, DATASETS.get(self.dataset)
        if isinstance(size, bool) or not isinstance(size, Integral) or size < 0:
            raise UsageError(f"image size must be an integer >= 0 (0: the dataset's own), got {size!r}")
        if size and info.stream is None:
            raise UsageError(f"image size {size}: dataset '{self.dataset}' keeps its images at {info.image_size}x"
                             f"{info.image_size} in memory and cannot be resized; drop --image-size")
        if 0 < size < 16:
            raise UsageError(f"image size {size} is too small to crop from; use --image-size 16 or more")
