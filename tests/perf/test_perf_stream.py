"""`bench perf --stream` on CPU with a handful of tiny images: the command end to end (synthetic fixture and
a streamed dataset under --data-root), the pieces it is built from, and one-line errors. Rates are only
checked to be positive: speed lives in benchmarks."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import run_cli
from torchvision.io import encode_jpeg

from bench.core.errors import UsageError
from bench.perf import stream
from noisytail_datasets.images import StreamTransforms
from noisytail_datasets.lt_splits import STREAM as LT_STREAM

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")

#: batch, timed batches, warm-up batches of every run here
BATCH, ITERS, WARMUP = 4, 2, 1
TINY = ("--batch", str(BATCH), "--iters", str(ITERS), "--warmup", str(WARMUP), "--image-size", "32")


@pytest.fixture(scope="module")
def fixture_files(tmp_path_factory):
    """Six synthetic JPEGs of 40×48 pixels."""
    return stream.write_fixture(tmp_path_factory.mktemp("stream_fixture"), 6, shape=(40, 48))


def places_lt_root(root: Path, per_split: int = 5) -> Path:
    """A tiny Places-LT release: three split files beside the images they list (`per_split` each)."""
    folder = root / "Places_LT"
    for split in ("train", "val", "test"):
        lines = []
        for k in range(per_split):
            rel = f"{split}/category_{k:03d}/{k + 1:08d}.jpg"
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            picture = torch.full((3, 36, 44), 40 * k, dtype=torch.uint8)
            (folder / rel).write_bytes(encode_jpeg(picture, quality=90).numpy().tobytes())
            lines.append(f"{rel} {k}\n")
        (folder / f"Places_LT_{split}.txt").write_text("".join(lines))
    return root


def assert_complete(result: dict, images: int, workers: int) -> None:
    """Every loop and decoder reported, with positive rates; the loops timed the same images."""
    assert set(result["loops"]) == set(stream.LOOPS) and set(result["decode"]) == set(stream.DECODERS)
    assert {"streaming_over_bare", "pil_over_torchvision_io", "decode_pil_over_torchvision_io"} == set(result["ratios"])
    assert result["images"] == images and result["workers"] == workers and result["batch"] == BATCH
    for loop in result["loops"].values():
        assert loop["images"] == ITERS * BATCH and loop["visited"] == (WARMUP + ITERS) * BATCH
        assert loop["images_per_sec"] > 0 and loop["seconds"] > 0
    assert result["finish"]["images"] == ITERS * BATCH and result["finish"]["images_per_sec"] > 0
    for decoded in result["decode"].values():
        assert decoded["images"] == images and decoded["images_per_sec"] > 0
    assert all(r > 0 for r in result["ratios"].values())
    assert result["pipeline"]["size"] == 32
    # the streaming loop hands over normalised float batches, the bare ones the collated uint8 crops
    assert {name: loop["dtype"] for name, loop in result["loops"].items()} == {
        "streaming": "float32", "bare": "uint8", "bare_pil": "uint8"}
    assert all(loop["batch_shape"] == [BATCH, 3, 32, 32] for loop in result["loops"].values())


def test_cli_times_the_synthetic_fixture_and_writes_json(capsys, tmp_path):
    out = tmp_path / "perf" / "stream.json"
    code, text, err = run_cli(capsys, "perf", "--stream", "--images", "6", "--workers", "1", *TINY, "--json",
                              "--json-out", str(out))
    assert code == 0, err
    result = json.loads(text)
    assert_complete(result, images=6, workers=1)
    assert result["source"] == "synthetic" and result["image_shape"] == list(stream.FIXTURE_SHAPE)
    assert result["device"] == "cpu" and result["pipeline"]["train_crop"] == "random-resized"
    written = json.loads(out.read_text())
    assert written["command"].startswith("python -m bench") and written["loops"].keys() == result["loops"].keys()


def test_cli_times_a_streamed_dataset_under_data_root(capsys, tmp_path):
    root = places_lt_root(tmp_path / "data")
    code, text, err = run_cli(capsys, "perf", "--stream", "--dataset", "places-lt", "--data-root", str(root),
                              "--images", "3", "--workers", "0", *TINY, "--json")
    assert code == 0, err
    result = json.loads(text)
    assert_complete(result, images=3, workers=0)  # a sample of 3 of the 5 training images
    assert result["source"] == "places-lt" and result["data_root"] == str(root)
    assert result["pipeline"]["color_jitter"] == list(LT_STREAM.color_jitter)  # the dataset's own pipeline


def test_text_report_names_every_loop_and_decoder():
    result = stream.run_stream_perf(images=3, batch=BATCH, iters=ITERS, warmup=WARMUP, workers=0, image_size=32,
                                    shape=(40, 48))
    text = stream.format_stream_perf(result)
    for words in ("synthetic 3 JPEGs 40×48", "streaming (StreamingImages)", "bare DataLoader (torchvision.io)",
                  "bare DataLoader (PIL)", "normalise alone", "decode only", "batch 4, 0 workers, device cpu"):
        assert words in text


@pytest.mark.parametrize("argv, words", [
    (("--images", "0"), "--images must be at least 1"),
    (("--workers", "-1"), "--workers must be at least 0"),
    (("--iters", "0"), "--iters must be at least 1"),
    (("--image-size", "0"), "--image-size must be at least 1"),
    (("--data-root", "somewhere"), "--data-root needs --dataset"),
    (("--dataset", "cifar10"), "not streamed"),
    (("--device", "gpu0"), "unknown --device"),
    (("--epoch",), "cannot be combined with --epoch"),
])
def test_bad_values_are_one_line_with_exit_code_2(capsys, argv, words):
    code, out, err = run_cli(capsys, "perf", "--stream", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("bench: error:") and words in err


def test_plan_cycles_through_the_images():
    plan = stream.plan_batches(5, 3, 4)
    assert [b.tolist() for b in plan] == [[0, 1, 2], [3, 4, 0], [1, 2, 3], [4, 0, 1]]


def test_streaming_and_bare_loops_visit_the_same_images(fixture_files):
    transforms = StreamTransforms().at_size(24)
    plan = stream.plan_batches(len(fixture_files), BATCH, WARMUP + ITERS)
    cpu = torch.device("cpu")
    seen = {}
    for name, batches in (
        ("streaming", stream.streaming_batches(fixture_files, transforms, plan, cpu, 0, lambda x: x.float() / 255)),
        ("bare", stream.bare_batches(fixture_files, transforms, plan, cpu, 0)),
        ("bare_pil", stream.bare_batches(fixture_files, transforms, plan, cpu, 1, "pil")),
    ):
        got = list(batches)
        seen[name] = sum(len(x) for x in got)
        assert all(x.shape == (BATCH, 3, 24, 24) for x in got), name
        assert all(x.dtype == (torch.float32 if name == "streaming" else torch.uint8) for x in got), name
    assert seen == {name: (WARMUP + ITERS) * BATCH for name in stream.LOOPS}


def test_timed_counts_only_the_batches_after_the_warm_up():
    batches = iter([torch.zeros(4, 1), torch.zeros(4, 1), torch.zeros(3, 1)])
    result = stream.timed(batches, warmup=1, device=torch.device("cpu"))
    assert result["images"] == 7 and result["visited"] == 11 and result["images_per_sec"] > 0
    assert result["batch_shape"] == [3, 1] and result["dtype"] == "float32"


def test_the_fixture_and_both_decoders_give_the_same_picture(fixture_files, tmp_path):
    assert len(fixture_files) == 6 and all(Path(p).is_file() for p in fixture_files.paths)
    for i in range(len(fixture_files)):
        ours, pil = fixture_files.decode(i), stream.decode_pil(str(fixture_files.paths[i]))
        assert ours.shape == pil.shape == (3, 40, 48) and pil.dtype == torch.uint8
        assert (ours.float() - pil.float()).abs().mean() < 2.0  # both libjpeg; the IDCT may differ slightly
    assert fixture_files.decode(0).float().std() > 10  # content, not a flat colour
    grey = tmp_path / "grey.jpg"
    grey.write_bytes(encode_jpeg(torch.full((1, 20, 30), 90, dtype=torch.uint8)).numpy().tobytes())
    assert stream.decode_pil(str(grey)).shape == (3, 20, 30)  # expanded to RGB like torchvision.io's RGB mode


def test_an_in_memory_dataset_is_refused_before_loading():
    with pytest.raises(UsageError, match="streamed from image files.*places-lt"):
        stream.dataset_files("digits", None, 4)


def test_default_workers_is_half_the_cores_at_most_8(monkeypatch):
    monkeypatch.setattr(stream.os, "sched_getaffinity", lambda pid: set(range(40)), raising=False)
    assert stream.default_workers() == 8
    monkeypatch.setattr(stream.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert stream.default_workers() == 1


@pytest.mark.parametrize("decoder, pil_calls", [("pil", (WARMUP + ITERS) * BATCH), ("torchvision_io", 0)])
def test_the_pil_loop_decodes_with_pil_only(fixture_files, monkeypatch, decoder, pil_calls):
    calls = []
    real = stream.decode_pil
    monkeypatch.setattr(stream, "decode_pil", lambda path: calls.append(path) or real(path))
    plan = stream.plan_batches(len(fixture_files), BATCH, WARMUP + ITERS)
    list(stream.bare_batches(fixture_files, StreamTransforms().at_size(24), plan, torch.device("cpu"), 0, decoder))
    assert len(calls) == pil_calls
