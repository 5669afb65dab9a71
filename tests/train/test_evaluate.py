"""Evaluation measures against independent computations: top-1/top-5 on every test set, and the
many/medium/few-shot accuracies (mean per-class accuracy within each group) on the main one."""
from __future__ import annotations

import numpy as np
import torch
from helpers import FixedLogits

from bench.train.engine import EvalSets, evaluate
from methods.base import TensorImages
from noisytail_datasets.long_tail import shot_accuracies, shot_groups


def images(n: int, offset: int = 0) -> TensorImages:
    x = torch.arange(offset, offset + n).view(n, 1, 1, 1)
    return TensorImages(x, lambda t, train=False, generator=None: t)


def test_top1_top5_and_shot_groups_match_a_direct_computation():
    gen = torch.Generator().manual_seed(0)
    classes, n_test, n_extra = 8, 40, 12
    table = torch.randn(n_test + n_extra, classes, generator=gen)
    y = torch.randint(0, classes, (n_test,), generator=gen)
    y_extra = torch.randint(0, classes, (n_extra,), generator=gen)
    y[:3] = 5  # class 5 present; class 7 absent from the test set
    y[y == 7] = 6
    train_counts = [300, 150, 101, 100, 50, 20, 19, 3]
    groups = torch.as_tensor(shot_groups(train_counts))
    tests = EvalSets({"test": (images(n_test), y), "imagenet": (images(n_extra, n_test), y_extra)},
                     top5=True, groups=groups)
    got = evaluate(FixedLogits(table), tests, batch_size=7)

    def top_k(logits: torch.Tensor, labels: torch.Tensor, k: int) -> float:
        hits = [int(labels[i]) in logits[i].argsort(descending=True)[:k].tolist() for i in range(len(labels))]
        return 100.0 * sum(hits) / len(hits)

    main, extra = table[:n_test], table[n_test:]
    assert got["test_acc"] == top_k(main, y, 1) and got["test_top5"] == top_k(main, y, 5)
    assert got["imagenet_acc"] == top_k(extra, y_extra, 1) and got["imagenet_top5"] == top_k(extra, y_extra, 5)
    correct = np.bincount(y.numpy(), weights=(main.argmax(1) == y).numpy(), minlength=classes)
    total = np.bincount(y.numpy(), minlength=classes)
    want = shot_accuracies(correct, total, groups.numpy())
    for name in ("many", "medium", "few"):
        np.testing.assert_allclose(got[f"{name}_acc"], want[name])
    assert "many_acc" in got and "imagenet_many_acc" not in got


def test_without_top5_or_groups_only_top1_is_recorded():
    table = torch.eye(4)
    got = evaluate(FixedLogits(table), EvalSets({"test": (images(4), torch.tensor([0, 1, 2, 0]))}), batch_size=3)
    assert got == {"test_acc": 75.0}
