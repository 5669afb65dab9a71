import hashlib
import json
from dataclasses import replace

import pytest

from bench.core.specs import OptimSpec, ScheduleSpec
from bench.train.config import RunConfig
from noisytail_datasets import DataSpec


def make(**changes):
    cfg = RunConfig(
        data=DataSpec(dataset="digits", imbalance=10, noise="sym", noise_rate=0.4),
        method="ce", backbone="mlp", epochs=3, batch_size=64, seed=0,
        optim=OptimSpec(lr=0.05), schedule=ScheduleSpec(name="multistep", milestones=(2,)),
        hparams={"a": 1}, preset="quick",
    )
    return cfg.with_(**changes)


def test_roundtrip_through_dict_keeps_id():
    cfg = make()
    again = RunConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.run_id == cfg.run_id
    assert isinstance(again.schedule.milestones, tuple)


def test_run_id_ignores_preset_but_not_hparams_or_protocol():
    base = make()
    assert make(preset="other").run_id == base.run_id
    assert make(hparams={"a": 2}).run_id != base.run_id
    assert make(seed=1).run_id != base.run_id
    assert make(data=DataSpec(dataset="digits", imbalance=10, noise="sym", noise_rate=0.2)).run_id != base.run_id
    assert make(optim=OptimSpec(lr=0.1)).run_id != base.run_id
    assert len(base.run_id) == 12 and base.run_id == make().run_id


# run id of make() before DataSpec had pad_mode / normalisation / noise_sampling (commit 2996380) / image_size
OLD_RUN_ID = "96ed12cd6b6f"
LATER_DEFAULTS = {"pad_mode": "constant", "normalisation": "dataset", "noise_sampling": "independent", "image_size": 0,
                  "val_fraction": 0.0, "max_per_class": 0}


def test_new_data_fields_at_their_defaults_keep_old_run_ids():
    cfg = make()
    assert cfg.run_id == OLD_RUN_ID
    # independent: the hash of the payload as it was written before the fields existed
    payload = cfg.to_dict()
    del payload["preset"], payload["tuning"], payload["speed"], payload["pretrained"], payload["epoch_samples"]
    for name in LATER_DEFAULTS:
        del payload["data"][name]
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    assert hashlib.sha256(canonical.encode()).hexdigest()[:12] == OLD_RUN_ID


def test_old_records_without_the_new_fields_are_read():
    old = make().to_dict()
    for name in LATER_DEFAULTS:
        del old["data"][name]
    cfg = RunConfig.from_dict(old)
    assert cfg == make() and cfg.run_id == OLD_RUN_ID
    assert {k: getattr(cfg.data, k) for k in LATER_DEFAULTS} == LATER_DEFAULTS


@pytest.mark.parametrize("name,value", [("pad_mode", "reflect"), ("normalisation", "mwnet"),
                                        ("noise_sampling", "exact"), ("max_per_class", 50)])
def test_non_default_data_fields_change_the_run_id_and_are_recorded(name, value):
    cfg = make(data=replace(make().data, **{name: value}))
    assert cfg.run_id != OLD_RUN_ID
    assert cfg.to_dict()["data"][name] == value  # the run record holds the whole config
    again = RunConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.run_id == cfg.run_id


def test_pretrained_changes_the_run_id_and_is_recorded_but_old_ids_stay():
    assert make(pretrained="").run_id == OLD_RUN_ID
    cfg = make(backbone="resnet18", pretrained="imagenet1k_v1")
    assert cfg.run_id != make(backbone="resnet18").run_id
    assert cfg.run_id != make(backbone="resnet18", pretrained="imagenet1k_v2").run_id
    assert cfg.to_dict()["pretrained"] == "imagenet1k_v1"
    again = RunConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.run_id == cfg.run_id


def test_old_records_without_pretrained_are_read_as_random_init():
    old = make().to_dict()
    del old["pretrained"]
    cfg = RunConfig.from_dict(old)
    assert cfg.pretrained == "" and cfg.run_id == OLD_RUN_ID


def test_a_recipe_with_pretrained_weights_makes_checked_runs():
    from bench.core.errors import UsageError
    from bench.grid.presets import Recipe, make_run

    recipe = Recipe(backbone="resnet50", epochs=2, batch_size=32, pretrained="imagenet1k_v1")
    cfg = make_run(DataSpec(dataset="cifar10"), "ce", recipe, seed=0)
    assert cfg.pretrained == "imagenet1k_v1" and cfg.backbone == "resnet50"
    with pytest.raises(UsageError, match="this data has 1 channel"):
        make_run(DataSpec(dataset="digits"), "ce", recipe, seed=0)
    with pytest.raises(UsageError, match="backbone 'mlp' has no pretrained weights"):
        make_run(DataSpec(dataset="cifar10"), "ce", replace(recipe, backbone="mlp"), seed=0)
