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
