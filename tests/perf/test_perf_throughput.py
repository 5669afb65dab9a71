"""`bench perf --throughput` on CPU with a tiny backbone: the solo and packed passes run through
the real engine and report what the GPU measurement reports (targets are only checked on GPU)."""
from __future__ import annotations

import pytest

from bench.core.errors import UsageError
from bench.perf.throughput import format_device_perf, run_device_perf


@pytest.mark.slow
def test_solo_and_packed_passes_on_cpu():
    result = run_device_perf(["mwnet"], backbone="mlp", batch=256, device="cpu", epochs=2, packs=(1, 2),
                             imbalance=100)
    solo = {r["method"]: r for r in result["solo"]}
    assert set(solo) == {"ce", "mwnet"} and solo["ce"]["ratio_to_ce"] == 1.0
    assert solo["ce"]["images"] == 12_200  # the ρ=100 CIFAR-10 profile of 50,000 images, less the meta set
    assert solo["mwnet"]["sec_per_epoch"] > 0 and solo["ce"]["sec_per_epoch"] > 0  # speed lives in benchmarks
    assert [p["trials"] for p in result["packed"]] == [1, 2] and result["packed"][0]["over_solo"] == 1.0
    assert all(p["images_per_sec"] > 0 and len(p["sec_per_epoch_each"]) == p["trials"] for p in result["packed"])
    assert set(result["targets"]) == {"ce_epoch_s", "mwnet_over_ce"}
    text = format_device_perf(result)
    assert "packed CE trials" in text and "target mwnet_over_ce" in text


def test_one_epoch_is_not_a_steady_state():
    with pytest.raises(UsageError, match="at least 2"):
        run_device_perf(epochs=1, device="cpu")
