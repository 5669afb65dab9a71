"""The two routes of the meta gradient (methods/bilevel.py) agree: `meta_grad="jvp"` (one forward-mode
product, no second-order graph) against `"unrolled"` (the reference double backward), on a full
ResNet-32 with BatchNorm, through each method's own training step.

Each case builds the same method twice (same seeds), one per route, and runs the same iterations; the
second iteration starts both from the first one's state of the unrolled twin, so that momentum buffers
exist (Dynamic Loss's virtual step continues them) and both routes see identical inputs. The meta
parameters' gradients (V, GDW's class weights through the model's step, FaMUS's samplers, Dynamic
Loss's label corrector and margin generator) must agree to 1e-5 relative to their largest entry.
"""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from helpers import GOLDEN_RUNS, golden_numbers

from bench.core.specs import OptimSpec
from bench.nn.backbones import ResNet32
from methods import METHODS, Batch, MethodContext
from methods.base import Diagnostics
from methods.bilevel import has_active_dropout, logit_tangent

CLASSES = 4
SIZE = 8
REL = 1e-5


def resnet_context(seed: int = 0) -> MethodContext:
    """A full ResNet-32 (5 blocks per stage, BatchNorm) on random 8×8 images, 64 training and 12 meta images."""
    gen = torch.Generator().manual_seed(seed)
    train_y = torch.randint(0, CLASSES, (64,), generator=gen)
    meta_y = torch.arange(CLASSES).repeat(3)
    return MethodContext(
        num_classes=CLASSES, in_channels=1, image_size=SIZE, epochs=4, batch_size=16, steps_per_epoch=4,
        device=torch.device("cpu"), optim=OptimSpec(lr=0.1, momentum=0.9, weight_decay=5e-4),
        train_y=train_y, noisy_counts=torch.bincount(train_y, minlength=CLASSES).tolist(),
        model_factory=lambda: ResNet32(1, CLASSES),
        transform=lambda t, train=True, generator=None: t.float() / 255.0,
        generator=gen, diagnostics=Diagnostics(train_y),
        train_x=torch.randint(0, 256, (64, 1, SIZE, SIZE), dtype=torch.uint8, generator=gen),
        meta_x=torch.randint(0, 256, (len(meta_y), 1, SIZE, SIZE), dtype=torch.uint8, generator=gen), meta_y=meta_y,
    )


def build(method: str, route: str, **hp):
    torch.manual_seed(0)
    cls = METHODS.get(method)
    return cls(resnet_context(), {**cls.defaults, **hp, "meta_grad": route})


def meta_parameters(m) -> list[torch.Tensor]:
    """The parameters the meta step trains, per method."""
    if m.name == "dynamic_loss":
        modules = [m.metanet]
    elif m.name == "famus":
        modules = [m.vnet, m.samplers]
    else:
        modules = [m.vnet]
    return [p for module in modules for p in module.parameters()]


def batch(m, step: int) -> Batch:
    index = torch.arange(16 * step, 16 * (step + 1))
    ctx = m.ctx
    return Batch(x=ctx.transform(ctx.train_x[index], train=True), y=ctx.train_y[index], index=index)


def assert_relatively_close(got: torch.Tensor, want: torch.Tensor, what: str) -> float:
    scale = want.abs().max().item()
    diff = (got - want).abs().max().item()
    assert scale > 0, f"{what}: the reference gradient is zero"
    assert diff <= REL * scale, f"{what}: max |jvp − unrolled| = {diff:.3g}, {diff / scale:.3g} of max |unrolled|"
    return diff / scale


def run_both(method: str, prepare=None, reuse: bool = True, **hp) -> float:
    """Two iterations under each route; returns the worst relative difference of the meta gradients.
    `reuse`: the jvp twin's tangent pass reuses its training forward (methods.tangent) where the method
    trains on model(x) (MW-Net, GDW, FaMUS); False forces the dual-tensor recompute."""
    jvp, unrolled = build(method, "jvp", **hp), build(method, "unrolled", **hp)
    if not reuse:
        jvp._reusable = None
    assert (jvp._reusable is not None) == reuse
    worst = 0.0
    for m in (jvp, unrolled):
        m.on_epoch_start(0)
        if prepare:
            prepare(m)
    for step in range(2):
        if step:  # the second iteration starts both twins from the same state (momentum buffers included)
            jvp.load_state_dict(copy.deepcopy(unrolled.state_dict()))
        for m in (jvp, unrolled):
            torch.manual_seed(10 + step)  # the same random draws inside the step (e.g. the LC's sampling)
            m.train_step(batch(m, step), 0)
        for i, (a, b) in enumerate(zip(meta_parameters(jvp), meta_parameters(unrolled))):
            worst = max(worst, assert_relatively_close(a.grad, b.grad, f"{method} step {step} meta parameter {i}"))
        for (name, a), b in zip(jvp.model.named_parameters(), unrolled.model.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=f"{method} step {step}: {name} after the step")
    return worst


@pytest.mark.parametrize("norm", ["mean", "sum"])
@pytest.mark.parametrize("detach", [True, False], ids=["detached-loss", "attached-loss"])
def test_mwnet_routes_agree(norm, detach):
    run_both("mwnet", weight_norm=norm, detach_loss_input=detach)


@pytest.mark.parametrize("method", ["mwnet", "famus"])
def test_the_recomputing_tangent_pass_agrees_too(method):
    """The fallback for backbones torch.fx cannot trace: dual tensors through a fresh forward."""
    run_both(method, reuse=False, **({"lambda_g": 0.1} if method == "famus" else {}),
             prepare=_force_random_gates(4) if method == "famus" else None)


def test_gdw_routes_agree_on_v_and_on_the_class_weights():
    """ω's meta gradient moves the real step (second-stage weights), so the model after it compares ω too."""
    run_both("gdw")


def _force_random_gates(seed: int):
    def prepare(m):
        gen = torch.Generator().manual_seed(seed)
        m.forced_gates = torch.rand(len(m.layers), generator=gen) < 0.3
    return prepare


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("off_gate_gradient", [True, False])
def test_famus_routes_agree_for_random_gate_patterns(seed, off_gate_gradient):
    run_both("famus", prepare=_force_random_gates(seed), off_gate_gradient=off_gate_gradient, lambda_g=0.1)


def test_famus_routes_agree_with_the_codes_losses_and_units():
    from methods.famus import FAMUS_CODE

    run_both("famus", prepare=_force_random_gates(3), **FAMUS_CODE)


def test_dynamic_loss_routes_agree_with_momentum_weight_decay_lc_and_mg():
    def prepare(m):
        with torch.no_grad():  # margins far from constant, so that MG's gradient is not trivially small
            m.metanet.mg.net[-1].bias.uniform_(-2.0, 2.0, generator=torch.Generator().manual_seed(0))

    run_both("dynamic_loss", prepare=prepare, warmup_epochs=0, lc_warmup_iters=0, meta_batch_size=16)


def test_dynamic_loss_reusing_its_weak_view_forward_leaves_the_running_statistics_to_the_actual_step():
    """bn=scratch: after a meta-phase step on the reusing jvp route, the BatchNorm statistics are those of one
    update by the strong-view (actual) forward, as on the unrolled route."""
    jvp, unrolled = (build("dynamic_loss", route, warmup_epochs=0, lc_warmup_iters=0, meta_batch_size=16)
                     for route in ("jvp", "unrolled"))
    for m in (jvp, unrolled):
        m.on_epoch_start(0)
        torch.manual_seed(10)
        m.train_step(batch(m, 0), 0)
    for (name, a), b in zip(jvp.model.named_buffers(), unrolled.model.buffers()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    assert all(int(b) == 1 for n, b in jvp.model.named_buffers() if n.endswith("num_batches_tracked"))


def test_logit_tangent_is_the_directional_derivative():
    """u = J·w against a central finite difference of the training forward (float64), BatchNorm in train mode."""
    torch.manual_seed(0)
    model = ResNet32(1, CLASSES, blocks_per_stage=1).double().train()
    params = dict(model.named_parameters())
    x = torch.randn(8, 1, SIZE, SIZE, dtype=torch.float64)
    w = {n: torch.randn_like(p) for n, p in params.items() if "layer2" in n or n.startswith("fc")}
    before = {k: b.clone() for k, b in model.state_dict().items()}
    u = logit_tangent(model, params, x, w)
    assert all(torch.equal(before[k], b) for k, b in model.state_dict().items()), "running statistics moved"

    def at(eps: float) -> torch.Tensor:
        moved = {n: p.detach() + eps * w[n] if n in w else p.detach() for n, p in params.items()}
        buffers = {k: b.clone() for k, b in model.named_buffers()}
        return torch.func.functional_call(model, {**moved, **buffers}, (x,))

    eps = 1e-6
    torch.testing.assert_close(u, (at(eps) - at(-eps)) / (2 * eps), rtol=1e-6, atol=1e-7)


def test_active_dropout_refuses_the_jvp_route():
    from bench.nn.backbones import build_backbone

    assert not has_active_dropout(ResNet32(1, CLASSES))
    assert has_active_dropout(build_backbone("wrn28_10", 3, 10, 32, dropout=0.3))
    assert has_active_dropout(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5)))
    ctx = resnet_context()
    ctx.model_factory = lambda: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(0.5),
                                                    torch.nn.Linear(SIZE * SIZE, CLASSES))
    with pytest.raises(ValueError, match="meta_grad='jvp' needs a backbone without active dropout"):
        METHODS.get("mwnet")(ctx, {**METHODS.get("mwnet").defaults, "meta_grad": "jvp"})
    METHODS.get("mwnet")(ctx, {**METHODS.get("mwnet").defaults, "meta_grad": "unrolled"})


# --- short training runs -------------------------------------------------------------------------
ROUTED_RUNS = ["mwnet", "gdw", "famus", "famus_code", "dynamic_loss_meta_phase"]


@pytest.mark.parametrize("name", ROUTED_RUNS)
def test_the_unrolled_route_still_gives_its_golden_numbers(name):
    """The reference did not move: the unrolled route reproduces the numbers recorded before the jvp
    route existed (tests/golden/runs/<name>_unrolled.json), and the default (jvp) run gives the same
    accuracies and losses to 1e-4."""
    from helpers import assert_matches_golden

    unrolled = golden_numbers(f"{name}_unrolled")
    assert_matches_golden(f"{name}_unrolled", unrolled)
    assert (GOLDEN_RUNS / f"{name}.json").exists()
    jvp = golden_numbers(name)
    for key, values in unrolled.items():
        assert jvp[key] == pytest.approx(values, abs=1e-4), key


def test_jvp_is_the_default_where_the_identity_holds():
    for name in ("mwnet", "gdw", "famus", "dynamic_loss", "dynamic_loss_bs", "dynamic_loss_la"):
        assert METHODS.get(name).defaults["meta_grad"] == "jvp", name
    assert "meta_grad" not in METHODS.get("fsr").defaults  # its look-ahead is on the FC only (issue 15)


def test_meta_loss_gradient_vanishes_without_the_route(monkeypatch):
    """A check that can fail: on the jvp route θ̂ hangs off detached leaves, so differentiating the
    meta loss to V directly (forgetting the forward-mode term) gives exactly zero."""
    m = build("mwnet", "jvp")
    b = batch(m, 0)
    logits = m.model(b.x)
    step = m.virtual_step(b, logits, F.cross_entropy(logits, b.y, reduction="none"))
    meta_loss = m.meta_loss(step.fast, *m.meta.next())
    direct = torch.autograd.grad(meta_loss, list(m.vnet.parameters()), allow_unused=True, retain_graph=True)
    assert all(g is None for g in direct)
    assert any(g.abs().max() > 0 for g in m.meta_gradients_of(meta_loss, list(m.vnet.parameters()), step))
