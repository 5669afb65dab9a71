"""`bench perf --stream`: the streaming data path's images per second against a bare `DataLoader` on the
same images, and whether another JPEG decoder would pay.

The images are a synthetic fixture (`write_fixture`: JPEGs of photograph size written to a temporary
folder) or a sample of a registered streamed dataset's training images (`dataset_files`). Three loops
draw the same planned batches (`plan_batches`: the images in order, cycled until there are enough),
with the same batch size, worker count and prefetch depth:

- **streaming**: `StreamingImages.iterate(..., train=True)` as the training loop uses it: per-image
  seeds, torchvision.io decoding and the v2 train pipeline in the workers, pinned memory on CUDA, the
  copy one batch ahead and `finish` (float conversion and normalisation) on the device;
- **bare**: a `DataLoader` over a minimal dataset that decodes with torchvision.io and applies the same v2
  train pipeline, default collate, each batch copied to the device (no normalisation);
- **bare_pil**: the same bare loop decoding with PIL (`Image.open(...).convert("RGB")`, then
  `pil_to_tensor`), the rest unchanged, so the two bare loops differ only in the decoder.

Each loop consumes `warmup` batches (worker start-up included), then the clock runs over the next
`iters` batches; the device is synchronised at both ends. The loops do nothing with a batch, so this
is the most the data path can deliver: a training step slower than a batch here means the data
path is not the bottleneck. Two figures split the loops' costs: the normalisation alone (`finish` on
`iters` batches already on the device: the part of the streaming loop that the bare loop does not do;
on a CPU device it runs in this process, on CUDA on the GPU) and decoding alone (every image once in
this process, with each decoder). All files are read once before anything is timed, so every loop sees
the same page cache; reading from cold storage is not measured.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from bench.core.errors import UsageError
from bench.train.envinfo import resolve_device
from bench.train.timing import synchronize
from noisytail_datasets import DATASETS, AugmentSpec, BatchTransform, load_base
from noisytail_datasets.images import ImageFiles, StreamTransforms
from noisytail_datasets.streaming import StreamingImages, train_pipeline

#: height and width of the synthetic JPEGs (a typical web photograph, larger than the 224 crop)
FIXTURE_SHAPE = (256, 320)
#: normalisation of the synthetic fixture (ImageNet's, as the streamed datasets use)
FIXTURE_MEAN = (0.485, 0.456, 0.406)
FIXTURE_STD = (0.229, 0.224, 0.225)
#: batches each loader keeps in flight per worker (StreamingImages' default)
PREFETCH = 4
DECODERS = ("torchvision_io", "pil")
LOOPS = ("streaming", "bare", "bare_pil")


def default_workers() -> int:
    """Half the usable cores, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return min(8, cores // 2)


@contextlib.contextmanager
def quiet_codecs() -> Iterator[None]:
    """torchvision 0.29 deprecates its image codecs in favour of TorchCodec; the warning is noise here
    (forked workers inherit the filter)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The image decoding and encoding", DeprecationWarning)
        yield


def synthetic_image(height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """A uint8 3×H×W picture that compresses like a photograph: a smooth two-colour gradient in a
    random direction, a few flat rectangles (edges) and mild sensor-like noise."""
    rows = torch.linspace(0.0, 1.0, height).view(1, height, 1)
    cols = torch.linspace(0.0, 1.0, width).view(1, 1, width)
    start, end = torch.rand(2, 3, 1, 1, generator=generator) * 255.0
    mix = float(torch.rand((), generator=generator))
    picture = start + (end - start) * (mix * rows + (1.0 - mix) * cols)
    for _ in range(3):
        top, left = (int(torch.randint(0, s // 2, (), generator=generator)) for s in (height, width))
        tall, wide = (int(torch.randint(s // 8, s // 2, (), generator=generator)) for s in (height, width))
        picture[:, top : top + tall, left : left + wide] = torch.rand(3, 1, 1, generator=generator) * 255.0
    picture += torch.randn(3, height, width, generator=generator) * 6.0
    return picture.clamp_(0.0, 255.0).to(torch.uint8)


def write_fixture(folder: Path, count: int, shape: tuple[int, int] = FIXTURE_SHAPE, seed: int = 0,
                  quality: int = 90) -> ImageFiles:
    """`count` synthetic JPEGs (`synthetic_image`, `shape` = height, width) written to `folder`."""
    from torchvision.io import encode_jpeg

    generator = torch.Generator().manual_seed(seed)
    paths = []
    with quiet_codecs():
        for i in range(count):
            path = folder / f"{i:06d}.jpg"
            path.write_bytes(encode_jpeg(synthetic_image(*shape, generator), quality=quality).numpy().tobytes())
            paths.append(str(path))
    return ImageFiles(np.array(paths, dtype=object))


def dataset_files(name: str, data_root: str | None, count: int,
                  seed: int = 0) -> tuple[ImageFiles, StreamTransforms, tuple[float, ...], tuple[float, ...]]:
    """`count` training images of streamed dataset `name` (a seeded sample, in list order; all of them
    when it has fewer), its per-image pipeline, and its mean and std."""
    info = DATASETS.get(name)
    if info.stream is None:
        streamed = ", ".join(n for n in DATASETS.names() if DATASETS.get(n).stream is not None)
        raise UsageError(f"dataset '{name}' is held in memory, not streamed from image files; "
                         f"--stream --dataset takes one of: {streamed}")
    base = load_base(name, data_root)
    files = base.train_x
    assert isinstance(files, ImageFiles), f"{name}: a streamed dataset's training images are files"
    if count < len(files):
        chosen = np.random.default_rng(seed).choice(len(files), size=count, replace=False)
        files = files[np.sort(chosen)]
    return files, info.stream, tuple(base.mean), tuple(base.std)


def plan_batches(images: int, batch: int, count: int) -> list[torch.Tensor]:
    """`count` batches of `batch` indices into `images` images: 0, 1, 2, … cycled."""
    return [torch.arange(k * batch, (k + 1) * batch) % images for k in range(count)]


def read_all(files: ImageFiles) -> int:
    """Read every file once (so that every loop finds them in the page cache); the bytes read."""
    total = 0
    for path in files.paths:
        with open(str(path), "rb") as handle:
            total += len(handle.read())
    return total


def decode_pil(path: str) -> torch.Tensor:
    """The image at `path` as a uint8 3×H×W RGB tensor, decoded by PIL."""
    from PIL import Image
    from torchvision.transforms.v2.functional import pil_to_tensor

    with Image.open(path) as image:
        return pil_to_tensor(image.convert("RGB"))


class BareImages(Dataset):
    """Item i: image i decoded by `decoder` ("torchvision_io" or "pil") and put through the v2 train
    pipeline of `transforms`, drawing from the process's (the worker's) own generator."""

    def __init__(self, files: ImageFiles, transforms: StreamTransforms, decoder: str = "torchvision_io") -> None:
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        self.files, self.decoder = files, decoder
        self.pipeline = train_pipeline(transforms)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        image = self.files.decode(i) if self.decoder == "torchvision_io" else decode_pil(str(self.files.paths[i]))
        return self.pipeline(image)


def timed(batches: Iterator[torch.Tensor], warmup: int, device: torch.device) -> dict[str, Any]:
    """Consume `warmup` batches, then the rest with the clock running: the images timed, the images
    seen in all, the seconds, images per second, and the dtype and shape of the last batch."""
    seen, x = 0, None
    for _ in range(warmup):
        x = next(batches)
        seen += len(x)
    synchronize(device)
    start, images = time.perf_counter(), 0
    for x in batches:
        images += len(x)
    synchronize(device)
    seconds = time.perf_counter() - start
    return {"images": images, "visited": seen + images, "seconds": seconds,
            "images_per_sec": images / seconds if seconds > 0 else float("inf"),
            "dtype": str(x.dtype).removeprefix("torch.") if x is not None else None,
            "batch_shape": list(x.shape) if x is not None else None}


def streaming_batches(files: ImageFiles, transforms: StreamTransforms, batches: Sequence[torch.Tensor],
                      device: torch.device, workers: int, finish: Callable[[torch.Tensor], torch.Tensor],
                      seed: int = 0) -> Iterator[torch.Tensor]:
    """The planned batches through `StreamingImages` (train=True), as the training loop draws them."""
    images = StreamingImages(files, transforms, finish, device, workers=workers, prefetch=PREFETCH)
    try:
        yield from images.iterate(batches, train=True, generator=torch.Generator().manual_seed(seed))
    finally:
        images.close()


def bare_batches(files: ImageFiles, transforms: StreamTransforms, batches: Sequence[torch.Tensor],
                 device: torch.device, workers: int, decoder: str = "torchvision_io") -> Iterator[torch.Tensor]:
    """The planned batches through a plain `DataLoader` (default collate), each copied to `device`."""
    loader = DataLoader(BareImages(files, transforms, decoder), batch_sampler=[b.tolist() for b in batches],
                        num_workers=workers, pin_memory=device.type == "cuda",
                        prefetch_factor=PREFETCH if workers > 0 else None)
    for x in loader:
        yield x.to(device, non_blocking=True)


def decode_rate(files: ImageFiles, decoder: str) -> dict[str, Any]:
    """Every image decoded once in this process by `decoder` (after a few untimed ones)."""
    decode = files.decode if decoder == "torchvision_io" else (lambda i: decode_pil(str(files.paths[i])))
    for i in range(min(len(files), 8)):
        decode(i)
    start = time.perf_counter()
    for i in range(len(files)):
        decode(i)
    seconds = time.perf_counter() - start
    return {"images": len(files), "seconds": seconds,
            "images_per_sec": len(files) / seconds if seconds > 0 else float("inf")}


def finish_rate(finish: Callable[[torch.Tensor], torch.Tensor], batch: int, size: int, iters: int,
                device: torch.device) -> dict[str, Any]:
    """`finish` alone on `iters` uint8 batches of `batch` crops of `size` pixels already on `device`
    (after one untimed call): the share of the streaming loop spent normalising."""
    x = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)
    finish(x)
    synchronize(device)
    start, images = time.perf_counter(), 0
    for _ in range(iters):
        images += len(finish(x))
    synchronize(device)
    seconds = time.perf_counter() - start
    return {"images": images, "seconds": seconds, "images_per_sec": images / seconds if seconds > 0 else float("inf")}


def _check(images: int, batch: int, iters: int, warmup: int, workers: int, image_size: int | None) -> None:
    for flag, value, least in (("--images", images, 1), ("--batch", batch, 1), ("--iters", iters, 1),
                               ("--warmup", warmup, 0), ("--workers", workers, 0)):
        if value < least:
            raise UsageError(f"{flag} must be at least {least}, got {value}")
    if image_size is not None and image_size < 1:
        raise UsageError(f"--image-size must be at least 1, got {image_size}")


def run_stream_perf(images: int = 512, batch: int = 128, iters: int = 20, warmup: int = 3,
                    workers: int | None = None, device: str = "cpu", image_size: int | None = None,
                    dataset: str | None = None, data_root: str | None = None,
                    shape: tuple[int, int] = FIXTURE_SHAPE) -> dict[str, Any]:
    """The three loops and the decode-only figures over the synthetic fixture (`dataset` None) or a
    sample of `images` training images of `dataset`; see the module docstring."""
    workers = default_workers() if workers is None else workers
    _check(images, batch, iters, warmup, workers, image_size)
    if data_root and not dataset:
        raise UsageError("--data-root needs --dataset NAME: the streamed dataset whose training images to time")
    try:
        target = resolve_device(device)
    except RuntimeError:
        raise UsageError(f"unknown --device '{device}': expected cpu, cuda, cuda:N or auto") from None
    if target.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: CUDA is not available here; use --device cpu")
    with tempfile.TemporaryDirectory(prefix="noisytail-stream-") as scratch:
        if dataset:
            files, transforms, mean, std = dataset_files(dataset, data_root, images)
            source: dict[str, Any] = {"source": dataset, "data_root": data_root}
        else:
            files, transforms = write_fixture(Path(scratch), images, shape), StreamTransforms()
            mean, std = FIXTURE_MEAN, FIXTURE_STD
            source = {"source": "synthetic", "image_shape": list(shape)}
        if image_size is not None:
            transforms = transforms.at_size(image_size)
        size_bytes = read_all(files)
        batches = plan_batches(len(files), batch, warmup + iters)
        normalise = BatchTransform(mean, std, AugmentSpec())

        def finish(x: torch.Tensor) -> torch.Tensor:
            return normalise(x, train=False)

        with quiet_codecs():
            loops = {
                "streaming": timed(streaming_batches(files, transforms, batches, target, workers, finish),
                                   warmup, target),
                "bare": timed(bare_batches(files, transforms, batches, target, workers), warmup, target),
                "bare_pil": timed(bare_batches(files, transforms, batches, target, workers, "pil"), warmup, target),
            }
            decode = {name: decode_rate(files, name) for name in DECODERS}
        finished = finish_rate(finish, batch, transforms.size, iters, target)
    ratios = {
        "streaming_over_bare": loops["streaming"]["images_per_sec"] / loops["bare"]["images_per_sec"],
        "pil_over_torchvision_io": loops["bare_pil"]["images_per_sec"] / loops["bare"]["images_per_sec"],
        "decode_pil_over_torchvision_io": decode["pil"]["images_per_sec"] / decode["torchvision_io"]["images_per_sec"],
    }
    return {**source, "images": len(files), "mean_file_kb": size_bytes / len(files) / 1024,
            "pipeline": {"size": transforms.size, "resize": transforms.resize, "train_crop": transforms.train_crop,
                         "flip": transforms.flip, "color_jitter": transforms.color_jitter},
            "batch": batch, "workers": workers, "prefetch": PREFETCH, "iters": iters, "warmup": warmup,
            "device": str(target), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "loops": loops, "finish": finished, "decode": decode, "ratios": ratios}


def format_stream_perf(result: dict[str, Any]) -> str:
    """A text report of `run_stream_perf`."""
    p = result["pipeline"]
    where = (f"synthetic {result['images']} JPEGs {result['image_shape'][0]}×{result['image_shape'][1]}"
             if result["source"] == "synthetic" else f"{result['source']}: {result['images']} training images")
    jitter = ", jitter" if p["color_jitter"] else ""
    lines = [f"{where} ({result['mean_file_kb']:.0f} KiB each), crop {p['size']} ({p['train_crop']}"
             f"{', flip' if p['flip'] else ''}{jitter}), batch {result['batch']}, {result['workers']} workers, "
             f"device {result['device']}, {result['iters']} batches after {result['warmup']} warm-up",
             f"{'loop':<34} {'images/s':>9} {'x bare':>7}"]
    names = {"streaming": "streaming (StreamingImages)", "bare": "bare DataLoader (torchvision.io)",
             "bare_pil": "bare DataLoader (PIL)"}
    bare = result["loops"]["bare"]["images_per_sec"]
    for key in LOOPS:
        rate = result["loops"][key]["images_per_sec"]
        lines.append(f"{names[key]:<34} {rate:>9.0f} {rate / bare:>7.2f}")
    rate = result["finish"]["images_per_sec"]
    lines.append(f"{'normalise alone (streaming finish)':<34} {rate:>9.0f} {rate / bare:>7.2f}")
    lines.append(f"{'decode only, this process':<34} {'images/s':>9} {'x tv.io':>7}")
    tv = result["decode"]["torchvision_io"]["images_per_sec"]
    for key, label in (("torchvision_io", "torchvision.io"), ("pil", "PIL")):
        rate = result["decode"][key]["images_per_sec"]
        lines.append(f"{label:<34} {rate:>9.0f} {rate / tv:>7.2f}")
    return "\n".join(lines)
