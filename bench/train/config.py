"""Frozen run configurations and their `run_id` hash.

A run is fully described by a `RunConfig`: the data protocol (`DataSpec`), the method and its
resolved hyperparameters, the backbone and the training recipe. `run_id` hashes all of it, so
any change to a number that can change a result gives a new id, while the git commit, the
device and the preset name are recorded beside the result but not hashed.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from bench.core.specs import OptimSpec, ScheduleSpec
from bench.nn.speed import SpeedSpec
from noisytail_datasets import DataSpec

#: RunConfig fields that are recorded but do not change what is computed.
UNHASHED_FIELDS = ("preset", "tuning")

#: DataSpec fields added after runs were recorded: hashed only when they differ from these defaults.
LATER_DATA_FIELDS = {f.name: f.default for f in fields(DataSpec)
                     if f.name in ("pad_mode", "normalisation", "noise_sampling", "image_size",
                                                           "val_fraction", "max_per_class")}


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one training run."""

    data: DataSpec
    method: str
    backbone: str
    epochs: int
    batch_size: int
    seed: int
    optim: OptimSpec = OptimSpec()
    schedule: ScheduleSpec = ScheduleSpec()
    hparams: dict[str, Any] = field(default_factory=dict, hash=False)
    preset: str = ""
    speed: SpeedSpec = SpeedSpec()
    #: the backbone's starting weights, a name from `bench.nn.backbones.PRETRAINED_WEIGHTS`
    #: (e.g. "imagenet1k_v1"); "" = random init
    pretrained: str = ""
    #: training samples drawn afresh each epoch, class-balanced by noisy label (the Clothing1M recipes'
    #: per-epoch subsampling, `bench.train.stream.balanced_subset`); 0 = the whole training set
    epoch_samples: int = 0
    #: where a `bench tune` search placed this run: {"trial": k, "search": …, "trials": N, …}; {} otherwise.
    #: Recorded, not hashed: the run computes the same whoever asked for it
    tuning: dict[str, Any] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        schedule = dict(d["schedule"])
        schedule["milestones"] = tuple(schedule["milestones"])
        return cls(
            **{k: v for k, v in d.items() if k not in ("data", "optim", "schedule", "speed")},
            data=DataSpec(**d["data"]),
            optim=OptimSpec(**d["optim"]),
            schedule=ScheduleSpec(**schedule),
            speed=SpeedSpec(**d.get("speed", {})),
        )

    @property
    def run_id(self) -> str:
        """12 hex digits of the SHA-256 of the canonical JSON of the hashed fields.

        The `LATER_RUN_DEFAULTS` and the `LATER_DATA_FIELDS` of the data protocol enter the hash only
        when they differ from their defaults, so runs made before they existed keep their ids."""
        payload = {k: v for k, v in self.to_dict().items() if k not in UNHASHED_FIELDS}
        for name, default in LATER_RUN_DEFAULTS.items():
            if getattr(self, name) == default:
                del payload[name]
        for name, default in LATER_DATA_FIELDS.items():
            if payload["data"][name] == default:
                del payload["data"][name]
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def with_(self, **changes: Any) -> "RunConfig":
        """A copy with some fields changed (`data=`, `optim=` take whole specs)."""
        return replace(self, **changes)

    def label(self) -> str:
        """A short human-readable name for progress lines."""
        d = self.data
        return (
            f"{self.method} {d.dataset} rho={d.imbalance:g} {d.noise}={d.noise_rate:g} "
            f"seed={self.seed}"
        )


#: RunConfig fields added after runs were recorded, with the defaults at which they stay out of the hash.
LATER_RUN_DEFAULTS = {f.name: f.default for f in fields(RunConfig)
                      if f.name in ("speed", "pretrained", "epoch_samples")}
