"""BatchTransform: normalisation, crops that are true shifts of the padded image, flips, determinism."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from noisytail_datasets import AugmentSpec, BatchTransform


def _batch(n=64, c=3, h=8, w=8, seed=0) -> torch.Tensor:
    return torch.randint(0, 256, (n, c, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def _windows(img: torch.Tensor, pad: int, mode: str, flip: bool) -> list[torch.Tensor]:
    """All h×w crops of the padded image (and of their mirror images when flip is on), on the 0..1 scale."""
    c, h, w = img.shape
    padded = F.pad(img[None].float() / 255.0, (pad,) * 4, mode=mode)[0]
    out = []
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            crop = padded[:, dy:dy + h, dx:dx + w]
            out += [crop, crop.flip(2)] if flip else [crop]
    return out


def test_eval_is_pure_normalisation():
    x = _batch()
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 0.125)
    out = BatchTransform(mean, std, AugmentSpec(pad=4, flip=True))(x, train=False)
    assert out.dtype == torch.float32 and out.shape == x.shape
    expected = (x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(out, expected)


def test_train_without_augmentation_equals_eval():
    x = _batch()
    tf = BatchTransform((0.5,) * 3, (0.5,) * 3, AugmentSpec())
    assert torch.equal(tf(x, train=True), tf(x, train=False))


@pytest.mark.parametrize("mode", ["constant", "reflect"])
def test_crops_are_shifts_of_the_padded_image(mode):
    x = _batch(n=48)
    pad = 2
    out = BatchTransform((0.0,) * 3, (1.0,) * 3, AugmentSpec(pad=pad, flip=True, pad_mode=mode))(
        x, train=True, generator=torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == torch.float32
    used = set()
    for i in range(len(x)):
        windows = _windows(x[i], pad, mode, flip=True)
        hits = [k for k, win in enumerate(windows) if torch.equal(out[i], win)]
        assert hits, f"sample {i} is not a crop of its padded image"
        used.add(hits[0])
    assert len(used) > 10  # offsets and flips really vary


def test_one_sample_by_hand():
    # 1×1×3×3 image 1..9, pad 1 with zeros: the crop with offset (dy=0, dx=2) is
    # [[0,0,0],[2,3,0],[5,6,0]]; flipped it is [[0,0,0],[0,3,2],[0,6,5]].
    img = torch.arange(1, 10, dtype=torch.uint8).view(1, 1, 3, 3)
    seen = set()
    tf = BatchTransform((0.0,), (1.0 / 255,), AugmentSpec(pad=1, flip=True))
    for seed in range(200):
        out = tf(img, train=True, generator=torch.Generator().manual_seed(seed))
        seen.add(tuple(out.round().int().flatten().tolist()))
    assert (0, 0, 0, 2, 3, 0, 5, 6, 0) in seen
    assert (0, 0, 0, 0, 3, 2, 0, 6, 5) in seen
    assert (1, 2, 3, 4, 5, 6, 7, 8, 9) in seen and (3, 2, 1, 6, 5, 4, 9, 8, 7) in seen
    assert len(seen) == 18  # 9 offsets × 2 flips, nothing else


def test_flip_only():
    x = _batch(n=64)
    out = BatchTransform((0.0,) * 3, (1.0,) * 3, AugmentSpec(flip=True))(
        x, train=True, generator=torch.Generator().manual_seed(0))
    ref = x.float() / 255
    same = [torch.equal(out[i], ref[i]) for i in range(len(x))]
    mirrored = [torch.equal(out[i], ref[i].flip(2)) for i in range(len(x))]
    assert all(a or b for a, b in zip(same, mirrored))
    assert any(same) and any(mirrored) and not all(same)


def test_deterministic_with_seeded_generator():
    x = _batch()
    tf = BatchTransform((0.5,) * 3, (0.2,) * 3, AugmentSpec(pad=4, flip=True))
    a = tf(x, train=True, generator=torch.Generator().manual_seed(7))
    b = tf(x, train=True, generator=torch.Generator().manual_seed(7))
    c = tf(x, train=True, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_input_not_modified_and_empty_batch():
    x = _batch()
    before = x.clone()
    BatchTransform((0.5,) * 3, (0.2,) * 3, AugmentSpec(pad=4, flip=True))(x, train=True)
    assert torch.equal(x, before)
    empty = torch.zeros(0, 3, 8, 8, dtype=torch.uint8)
    assert BatchTransform((0.5,) * 3, (0.2,) * 3, AugmentSpec(pad=4, flip=True))(empty, train=True).shape == empty.shape


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_with_cpu_generator():
    x = _batch().cuda()
    tf = BatchTransform((0.5,) * 3, (0.2,) * 3, AugmentSpec(pad=4, flip=True))
    a = tf(x, train=True, generator=torch.Generator().manual_seed(3))
    b = tf(x.cpu(), train=True, generator=torch.Generator().manual_seed(3))
    assert a.is_cuda and torch.allclose(a.cpu(), b)
