"""Balanced Softmax and DAL losses against their formulas, written out by hand."""
import dataclasses
import math

import pytest
import torch
from helpers import digits_run

from bench.core.errors import UsageError
from bench.grid.presets import QUICK_RECIPE, make_run
from bench.train.engine import build_method
from methods.balanced_softmax import balanced_softmax_loss
from methods.dal import DAL, dal_loss, dal_schedule
from noisytail_datasets import DataSpec, build_data


def test_balanced_softmax_matches_prior_weighted_softmax():
    torch.manual_seed(0)
    z = torch.randn(6, 4)
    y = torch.tensor([0, 1, 2, 3, 0, 3])
    n = torch.tensor([500.0, 120.0, 30.0, 5.0])
    got = balanced_softmax_loss(z, y, n.log())
    # -log( n_y e^{z_y} / sum_j n_j e^{z_j} )
    want = torch.tensor([
        -math.log(n[y[i]].item() * math.exp(z[i, y[i]].item())
                  / sum(n[j].item() * math.exp(z[i, j].item()) for j in range(4)))
        for i in range(6)
    ])
    assert torch.allclose(got, want, atol=1e-5)


def test_balanced_softmax_with_uniform_prior_is_ce():
    z = torch.randn(5, 3)
    y = torch.tensor([0, 1, 2, 1, 0])
    ce = torch.nn.functional.cross_entropy(z, y, reduction="none")
    assert torch.allclose(balanced_softmax_loss(z, y, torch.full((3,), 7.0).log()), ce, atol=1e-6)


def test_dal_schedule_q_linear_and_lambda_from_crossing():
    # q_s 0.6, q_e 1.5, E 150: t0 = 0.4 * 150 / 0.9 = 66.67
    q0, l0 = dal_schedule(0, 150, 0.6, 1.5)
    assert (q0, l0) == (pytest.approx(0.6), 0.0)
    q, lam = dal_schedule(66, 150, 0.6, 1.5)
    assert q < 1 and lam == 0.0
    q, lam = dal_schedule(67, 150, 0.6, 1.5)
    t0 = 0.4 * 150 / 0.9
    assert q > 1 and lam == pytest.approx((67 - t0) / (150 - t0))
    q, lam = dal_schedule(149, 150, 0.6, 1.5)
    assert q == pytest.approx(0.6 + 0.9 * 149 / 150) and lam < 1


def reference_lambda(epoch: int, epochs: int, q_start: float, q_end: float) -> float:
    """λ from q itself: q is linear in the epoch, so (e − t0)/(E − t0) = (q_e_now − 1)/(q_end − 1),
    clipped at 0; and 0 for a schedule whose q never passes 1."""
    if q_end <= 1.0:
        return 0.0
    q_now = q_start + (q_end - q_start) * epoch / epochs
    return max(0.0, (q_now - 1.0) / (q_end - 1.0))


@pytest.mark.parametrize("q_end", [0.6, 0.6000001, 0.9, 1.0, 1.5])
@pytest.mark.parametrize("epochs", [10, 150])
def test_dal_schedule_matches_an_independent_computation(q_end, epochs):
    for epoch in range(epochs):
        q, lam = dal_schedule(epoch, epochs, 0.6, q_end)
        assert q == pytest.approx(0.6 + (q_end - 0.6) * epoch / epochs, rel=1e-12)
        assert lam == pytest.approx(reference_lambda(epoch, epochs, 0.6, q_end), abs=1e-9), epoch
        assert 0.0 <= lam < 1.0
        if q <= 1.0:
            assert lam == 0.0


def test_dal_schedule_without_a_crossing_has_no_bootstrapping():
    # the official formula gives λ = (0 − t0)/(E − t0) = 4.0 here (t0 = 13.3 > E = 10)
    assert dal_schedule(0, 10, 0.6, 0.9) == (pytest.approx(0.6), 0.0)
    assert all(dal_schedule(e, 10, 0.6, 0.6000001)[1] == 0.0 for e in range(10))


def test_dal_loss_of_a_run_that_never_crosses_one_is_plain_gce():
    cfg = digits_run("dal", epochs=10)
    cfg = dataclasses.replace(cfg, hparams={**cfg.hparams, "q_end": 0.9})
    method = build_method(cfg, build_data(cfg.data), torch.device("cpu"), torch.Generator().manual_seed(0))
    z = torch.randn(8, 10, generator=torch.Generator().manual_seed(2))
    y = torch.arange(8)
    p_y = z.softmax(1).gather(1, y[:, None]).squeeze(1)
    for epoch in (0, 5, 9):
        q = 0.6 + 0.3 * epoch / 10
        assert torch.allclose(method.loss(z, y, epoch), (1 - p_y ** q) / q, atol=1e-6)


def test_dal_refuses_an_inverted_schedule_at_planning():
    data = DataSpec(dataset="digits", imbalance=1, noise="sym", noise_rate=0.4)
    with pytest.raises(UsageError) as err:
        make_run(data, "dal", QUICK_RECIPE, seed=0, epochs=10, hparams={"q_start": 0.9, "q_end": 0.6})
    message = str(err.value)
    assert "q_end=0.6" in message and "q_start=0.9" in message and "\n" not in message
    with pytest.raises(UsageError, match="q_end"):
        DAL.check_run({"q_start": 1.5, "q_end": 1.2}, 10)
    for q_end in (0.6, 0.9, 1.5):  # constant or rising q is fine
        make_run(data, "dal", QUICK_RECIPE, seed=0, epochs=10, hparams={"q_start": 0.6, "q_end": q_end})


def test_dal_loss_formula():
    torch.manual_seed(1)
    z = torch.randn(4, 10)
    y = torch.tensor([1, 2, 3, 4])
    q, lam = 1.2, 0.3
    got = dal_loss(z, y, q, lam)
    p = z.softmax(1)
    want = []
    for i in range(4):
        gce = (1 - max(p[i, y[i]].item(), 1e-6) ** q) / q
        ent = -sum(p[i, c].item() * math.log(p[i, c].item() + 1e-6) for c in range(10))
        want.append(gce + lam * ent / (q * math.log(10)))
    assert torch.allclose(got, torch.tensor(want), atol=1e-5)


def test_dal_loss_without_bootstrap_is_gce():
    z = torch.randn(3, 5)
    y = torch.tensor([0, 1, 2])
    p_y = z.softmax(1).gather(1, y[:, None]).squeeze(1)
    assert torch.allclose(dal_loss(z, y, 0.7, 0.0), (1 - p_y ** 0.7) / 0.7, atol=1e-6)
