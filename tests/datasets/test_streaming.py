"""The streaming data path: per-image seeds (same augmentation whatever the workers), the evaluation
transform against torchvision's functional ops, order of per-sample passes, and the batches a
method draws by index."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.io import encode_jpeg
from torchvision.transforms.v2 import functional as TF

from noisytail_datasets.images import ImageFiles, StreamTransforms
from noisytail_datasets.streaming import DecodedImages, StreamingImages

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")

CPU = torch.device("cpu")
PIPE = StreamTransforms(size=16, resize=20)


def write_images(folder: Path, n: int = 12) -> ImageFiles:
    """`n` 24×30 JPEGs with a gradient (so crops differ) and an image-specific level."""
    folder.mkdir(parents=True, exist_ok=True)
    ramp = torch.linspace(0, 200, 30).round().to(torch.uint8)
    paths = []
    for i in range(n):
        image = (ramp.view(1, 1, 30).expand(3, 24, 30) + 5 * i).to(torch.uint8).contiguous()
        path = folder / f"{i:03d}.jpg"
        path.write_bytes(encode_jpeg(image, quality=95).numpy().tobytes())
        paths.append(str(path))
    return ImageFiles(np.array(paths, dtype=object))


def as_float(batch: torch.Tensor) -> torch.Tensor:
    return batch.float()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> ImageFiles:
    return write_images(tmp_path_factory.mktemp("stream"))


def test_evaluation_transform_is_resize_then_centre_crop(files):
    images = StreamingImages(files, PIPE, as_float, CPU)
    got = images.batch(torch.tensor([3, 0]), train=False)
    for row, i in zip(got, (3, 0)):
        want = TF.center_crop(TF.resize(files.decode(i), [20], antialias=True), [16])
        assert torch.equal(row, want.float())
    assert got.shape == (2, 3, 16, 16)


def test_per_sample_pass_covers_every_image_in_order(files):
    images = StreamingImages(files, PIPE, as_float, CPU)
    starts, rows = [], []
    for start, x in images.in_order(5):
        starts.append(start)
        rows.append(x)
    assert starts == [0, 5, 10]
    assert torch.equal(torch.cat(rows), images.batch(torch.arange(len(files)), train=False))


def test_augmentation_depends_on_the_seeds_not_on_the_workers(files):
    batches = [torch.tensor([4, 1, 7]), torch.tensor([0, 11])]
    runs = []
    for workers in (0, 2):
        images = StreamingImages(files, PIPE, as_float, CPU, workers=workers)
        runs.append(list(images.iterate(batches, train=True, generator=torch.Generator().manual_seed(5))))
        images.close()
    for a, b in zip(*runs):
        assert torch.equal(a, b)
    # and the image-by-image draw (a method's random batch) gives the same pixels for the same seeds
    gen = torch.Generator().manual_seed(5)
    seeds = torch.randint(0, 2**62, (5,), generator=gen).tolist()
    decoded = DecodedImages(files, PIPE)
    first = torch.stack([decoded[(i, s)] for i, s in zip([4, 1, 7], seeds[:3])]).float()
    assert torch.equal(runs[0][0], first)


def test_training_crops_are_random_and_sized(files):
    images = StreamingImages(files, PIPE, as_float, CPU)
    index = torch.zeros(16, dtype=torch.long)  # one image, sixteen draws
    views = images.batch(index, train=True, generator=torch.Generator().manual_seed(0))
    assert views.shape == (16, 3, 16, 16)
    assert len({v.flatten().tolist().__repr__() for v in views}) > 8  # crops/flips differ between draws
    again = images.batch(index, train=True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(views, again)


def test_a_subset_reads_its_own_images(files):
    images = StreamingImages(files, PIPE, as_float, CPU)
    sub = images.subset(torch.tensor([9, 2]))
    assert len(sub) == 2
    assert torch.equal(sub.batch(torch.tensor([1, 0]), train=False), images.batch(torch.tensor([2, 9]), train=False))


def test_finish_runs_on_every_batch(files):
    images = StreamingImages(files, PIPE, lambda b: b.float() / 255.0 - 7.0, CPU)
    x = next(images.iterate([torch.tensor([0, 1])], train=True, generator=torch.Generator()))
    assert x.dtype == torch.float32 and x.max() <= 1.0 - 7.0 + 1e-6


def test_random_resized_crop_vs_resize_then_random_crop(files):
    plain = StreamTransforms(size=16, resize=20, train_crop="random")
    views = StreamingImages(files, plain, as_float, CPU).batch(torch.zeros(8, dtype=torch.long), train=True,
                                                                 generator=torch.Generator().manual_seed(1))
    resized = TF.resize(files.decode(0), [20], antialias=True).float()
    # every view is a 16×16 window of the resized image, flipped or not
    windows = {resized[:, r : r + 16, c : c + 16].flatten().tolist().__repr__()
               for r in range(resized.shape[1] - 15) for c in range(resized.shape[2] - 15)}
    windows |= {resized.flip(2)[:, r : r + 16, c : c + 16].flatten().tolist().__repr__()
                for r in range(resized.shape[1] - 15) for c in range(resized.shape[2] - 15)}
    assert all(v.flatten().tolist().__repr__() in windows for v in views)


def test_stream_transforms_scale_with_the_crop():
    t = StreamTransforms(224, 256).at_size(32)
    assert (t.size, t.resize) == (32, 37)
    with pytest.raises(ValueError):
        StreamTransforms(train_crop="centre")
