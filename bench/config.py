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

from noisytail_datasets import DataSpec

#: RunConfig fields that are recorded but do not change what is computed.
UNHASHED_FIELDS = ("preset",)


@dataclass(frozen=True)
class OptimSpec:
    """SGD settings of the classifier."""

    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False


@dataclass(frozen=True)
class ScheduleSpec:
    """Learning-rate schedule: `cosine` (per epoch, to 0), `multistep`, `constant`, or
    `cosine-restarts` (SGDR per iteration: a first cycle of `cycle_epochs`, each next cycle
    `cycle_mult` times longer and peaking `cycle_decay` times lower), optionally preceded by a
    linear warm-up from `warmup_start`·lr (mmcv's rule, per iteration)."""

    name: str = "cosine"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup_epochs: int = 0
    warmup_start: float = 0.1
    cycle_epochs: float = 1.0
    cycle_mult: float = 2.0
    cycle_decay: float = 0.9


@dataclass(frozen=True)
class SpeedSpec:
    """Speed settings that may change numerics, so they are part of the run (and its id when not
    at their defaults). What is active depends on the device: see `bench.speed.resolve_speed`.

    - `amp`: "auto" (bf16 autocast of the plain forward/backward steps on CUDA; off on CPU),
      "bf16" (the same, explicitly) or "off".
    - `channels_last`: "auto" (on for 4-D inputs on CUDA), "on" or "off".
    - `compile`: `torch.compile` the backbone (eager fallback if compiling fails).
    - `deterministic`: every flag off, deterministic algorithms, no cuDNN autotuning.
    """

    amp: str = "auto"
    channels_last: str = "auto"
    compile: bool = False
    deterministic: bool = False


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

        `speed` enters the hash only when it differs from the defaults, so runs made before it
        existed keep their ids."""
        payload = {k: v for k, v in self.to_dict().items() if k not in UNHASHED_FIELDS}
        if self.speed == SpeedSpec():
            del payload["speed"]
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


def field_names(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]
