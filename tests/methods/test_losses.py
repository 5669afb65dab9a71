"""Balanced Softmax and DAL losses against their formulas, written out by hand."""
import math

import pytest
import torch

from methods.balanced_softmax import balanced_softmax_loss
from methods.dal import dal_loss, dal_schedule


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
