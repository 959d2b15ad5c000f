"""Pretext-label pipeline benchmark: batched tf.data transforms vs a naive per-example pipeline,
and vs the training throughput of the default SSL encoder on the same batches.

For each image size (32x32 and 64x64 RGB, random uint8 images generated here) and each pretext
task, then for all tasks together (every batch labelled by all five transforms, a multi-task
stream), one run measures examples/s of:

- batched: ``zoo.ssl.pretext.make_pretext_dataset`` (batch first, one vectorised stateless
  transform per batch, parallel map, prefetch);
- naive: the same maths in NumPy, one image at a time inside ``tf.numpy_function``, mapped per
  example (parallel map), then batched and prefetched. The NumPy code is reasonable (np.rot90,
  reshape/transpose tiles, vectorised Lab formulas, slicing masks, one Generator), not slowed down;
- training: ``model.train_on_batch`` of ``build_pretext_model(build_ssl_encoder(...), task)``
  compiled with ``pretext_loss(task)`` on batches taken from the batched pipeline ("all": the five
  models one after the other on each batch).

Rates: the best of 3 wall-clock windows per measurement (the least disturbed on a shared
machine), and "cpu ratio": the ratio of examples per process CPU-second (independent of the
load). Targets: batched / naive >= 20x at 32x32 and >= 5x at 64x64; batched / training
>= 10x (the pipeline is never the bottleneck). Figures depend on the machine and its load.

    python benchmarks/bench_pretext.py                 # full run (a few minutes)
    python benchmarks/bench_pretext.py --quick         # short run, smoke check
    python benchmarks/bench_pretext.py --no-train      # pipelines only
    python benchmarks/bench_pretext.py --variants      # also quantized / irregular / salt-pepper
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import zoo  # noqa: E402,F401 - first: keeps TensorFlow's start-up lines off the console

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from zoo.ssl import (
    TASKS,
    ab_bins,
    batch_seed,
    jigsaw_permutations,
    make_pretext_dataset,
    pretext_options,
    split_pretext_transform,
)

try:  # the encoder and heads live in another module; the pipeline part runs without them
    from zoo.ssl.loss import pretext_loss
    from zoo.ssl.model import build_pretext_model, build_ssl_encoder
except ImportError as error:  # pragma: no cover - depends on the checkout
    TRAIN_IMPORT_ERROR = error
else:
    TRAIN_IMPORT_ERROR = None

TARGET_NAIVE = {32: 20.0, 64: 5.0}
TARGET_TRAIN = 10.0
VARIANTS = {
    "colorization:quantized": ("colorization", {"mode": "quantized"}),
    "inpainting:irregular": ("inpainting", {"mask": "irregular"}),
    "denoising:salt_pepper": ("denoising", {"noise": "salt_pepper"}),
}


# === the naive per-example NumPy implementations (same maths, one image at a time) ===

_M = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
from zoo.training.cli import run_cli  # noqa: E402
from zoo.training.flags import int_at_least, positive_float  # noqa: E402
from zoo.training.run_dir import write_json  # noqa: E402

_M_WHITE = (_M / np.array([0.95047, 1.0, 1.08883])[:, None]).T.astype(np.float32)
_D = 6.0 / 29.0


def _lab(image):
    c = image.astype(np.float32) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _M_WHITE
    f = np.where(xyz > _D**3, np.cbrt(xyz), xyz / (3 * _D * _D) + 4.0 / 29.0)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1
    ).astype(np.float32)


def _nearest_bin_table(bin_size):
    bins = ab_bins(bin_size)
    half = int(math.ceil(128.0 / bin_size)) + 1
    grid = np.arange(-half, half + 1) * float(bin_size)
    ga, gb = np.meshgrid(grid, grid, indexing="ij")
    d2 = (ga[..., None] - bins[:, 0]) ** 2 + (gb[..., None] - bins[:, 1]) ** 2
    return np.argmin(d2, -1).astype(np.int32), half


def _rect_mask(rng, h, w, lo, hi):
    total = h * w
    area = rng.uniform(lo, hi) * total
    ratio = math.exp(rng.uniform(-math.log(2.0), math.log(2.0)))
    rh = min(max(round(math.sqrt(area * ratio)), math.ceil(lo * h)), h)
    w_lo, w_hi = math.ceil(lo * total / rh), min(math.floor(hi * total / rh), w)
    rw = min(max(min(max(round(area / rh), w_lo), w_hi), 1), w)
    top, left = rng.integers(0, h - rh + 1), rng.integers(0, w - rw + 1)
    mask = np.zeros((h, w), np.float32)
    mask[top : top + rh, left : left + rw] = 1.0
    return mask


def _irregular_mask(rng, h, w, lo, hi, max_strokes, pixels):
    size = np.array([h, w], np.float32)
    count = rng.integers(1, max_strokes + 1)
    start = rng.uniform(size=(count, 1, 2)).astype(np.float32) * (size - 1)
    angles = rng.uniform(0, 2 * np.pi, (count, 1)) + np.cumsum(
        rng.uniform(-np.pi / 2, np.pi / 2, (count, 4)), axis=1
    )
    lengths = rng.uniform(0.1, 0.35, (count, 4)) * max(h, w)
    steps = np.stack([np.sin(angles), np.cos(angles)], -1) * lengths[..., None]
    vertices = np.clip(np.concatenate([start, start + np.cumsum(steps, 1)], 1), 0, size - 1)
    a, b = vertices[:, :-1].reshape(-1, 2), vertices[:, 1:].reshape(-1, 2)
    ab = b - a
    ap = pixels[:, None, :] - a[None]
    t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-6), 0, 1)
    nearest = ((ap - t[..., None] * ab) ** 2).sum(-1).min(1)
    k = min(max(round(rng.uniform(lo, hi) * h * w), math.ceil(lo * h * w)), math.floor(hi * h * w))
    rank = np.argsort(np.argsort(nearest, kind="stable"), kind="stable")
    return (rank < k).reshape(h, w).astype(np.float32)


def naive_transform(task, options, image_shape, seed=0):
    """Per-example NumPy version of ``task``: image (H, W, C) uint8 -> tuple of arrays."""
    o = pretext_options(task, **options)
    rng = np.random.default_rng(seed)
    h, w, _ = image_shape
    if task == "rotation":

        def fn(image):
            k = rng.integers(4)
            return np.rot90(image, k).astype(np.float32), np.int32(k)

    elif task == "jigsaw":
        perms = jigsaw_permutations(o["num_permutations"], o["permutation_seed"])
        th, tw = h // 3, w // 3
        top, left = (h - 3 * th) // 2, (w - 3 * tw) // 2

        def fn(image):
            crop = image[top : top + 3 * th, left : left + 3 * tw].astype(np.float32)
            tiles = crop.reshape(3, th, 3, tw, -1).swapaxes(1, 2).reshape(9, th, tw, -1)
            p = rng.integers(len(perms))
            shuffled = tiles[perms[p]].reshape(3, 3, th, tw, -1).swapaxes(1, 2)
            return shuffled.reshape(3 * th, 3 * tw, -1), np.int32(p)

    elif task == "colorization":
        table, half = _nearest_bin_table(o["bin_size"])

        def fn(image):
            lab = _lab(image)
            if o["mode"] == "regression":
                return lab[..., :1] * 2.55, lab[..., 1:] / 128.0
            cell = np.clip(
                np.round(lab[..., 1:] / o["bin_size"]).astype(np.int64) + half, 0, 2 * half
            )
            return lab[..., :1] * 2.55, table[cell[..., 0], cell[..., 1]]

    elif task == "inpainting":
        rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        pixels = np.stack([rows.ravel(), cols.ravel()], -1).astype(np.float32)

        def fn(image):
            x = image.astype(np.float32)
            if o["mask"] == "rectangle":
                mask = _rect_mask(rng, h, w, o["min_area"], o["max_area"])
            else:
                mask = _irregular_mask(
                    rng, h, w, o["min_area"], o["max_area"], o["max_strokes"], pixels
                )
            mask = mask[..., None]
            if o["fill"] == "zero":
                inputs = x * (1.0 - mask)
            else:
                visible = 1.0 - mask
                mean = (x * visible).sum((0, 1)) / max(visible.sum(), 1.0)
                inputs = np.where(mask > 0, mean, x)
            return inputs, np.concatenate([x / 255.0, mask], -1)

    elif task == "denoising":

        def fn(image):
            x = image.astype(np.float32)
            if o["noise"] == "gaussian":
                noisy = x + np.float32(o["stddev"]) * rng.standard_normal(x.shape, np.float32)
            else:
                u = rng.random((h, w, 1), np.float32)
                p = o["fraction"]
                fill = 0.0 if o["noise"] == "masking" else np.where(u < p / 2, 0.0, 255.0)
                noisy = np.where(u < p, fill, x)
            return np.clip(noisy, 0, 255).astype(np.float32), x / 255.0

    else:
        raise ValueError(f"Unknown task. Received: task={task!r}")
    return fn


# === pipelines ===


def _source(images):
    return tf.data.Dataset.from_tensor_slices(images).repeat()


def batched_pipeline(images, tasks, batch):
    """One task: ``make_pretext_dataset``; several: every batch labelled by each of them (the
    same construction: draws as TF kernels, the arithmetic XLA-compiled)."""
    if len(tasks) == 1:
        name, options = tasks[0]
        return make_pretext_dataset(_source(images), name, batch, seed=0, **options)
    parts = []
    for name, options in tasks:
        draw, apply = split_pretext_transform(name, **options)
        parts.append((draw, tf.function(apply, jit_compile=True, autograph=False)))

    def label_all(index, x):
        return tuple(
            apply(x, draw(x, batch_seed(j, index))) for j, (draw, apply) in enumerate(parts)
        )

    ds = _source(images).batch(batch, drop_remainder=True).enumerate()
    return ds.map(label_all, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def naive_pipeline(images, tasks, batch):
    fns = [
        naive_transform(name, options, images.shape[1:], seed=j)
        for j, (name, options) in enumerate(tasks)
    ]

    def per_example(image):
        outputs = []
        for fn in fns:
            outputs.extend(fn(image))
        return outputs

    sample = per_example(images[0])
    dtypes = [tf.as_dtype(np.asarray(a).dtype) for a in sample]
    shapes = [np.shape(a) for a in sample]

    def wrapped(image):
        outputs = tf.numpy_function(per_example, [image], dtypes, stateful=True)
        for tensor, shape in zip(outputs, shapes, strict=False):
            tensor.set_shape(shape)
        return tuple(outputs)

    ds = _source(images).map(wrapped, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def examples_per_second(ds, batch, seconds, warmup=3, windows=3):
    """(best wall-clock examples/s over ``windows`` windows, examples per CPU-second).

    The best window is the least disturbed by other processes on a shared machine; the
    CPU-time rate (process CPU time, all threads) does not depend on that load.
    """
    iterator = iter(ds)
    for _ in range(warmup):
        next(iterator)
    best, total, cpu_start = 0.0, 0, time.process_time()
    for _ in range(windows):
        count, start = 0, time.perf_counter()
        while True:
            next(iterator)
            count += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / windows and count >= 2:
                break
        best, total = max(best, count * batch / elapsed), total + count
    return best, total * batch / max(time.process_time() - cpu_start, 1e-9)


# === training throughput ===


def training_rate(name, options, images, batch, seconds, steps=3):
    """examples/s of train_on_batch of the default encoder + the task's head, on pipeline
    batches of ``name`` (at least ``steps`` timed steps after one warm-up step)."""
    model_options = {}
    loss_options = {}
    if name == "jigsaw":
        model_options["num_permutations"] = pretext_options("jigsaw", **options)["num_permutations"]
    if name == "colorization":
        mode = pretext_options("colorization", **options)["mode"]
        model_options["mode"] = loss_options["mode"] = mode
        if mode == "quantized":
            model_options["num_bins"] = len(ab_bins())
    encoder = build_ssl_encoder(images.shape[1:])
    model = build_pretext_model(encoder, name, **model_options)
    model.compile(optimizer="adam", loss=pretext_loss(name, **loss_options))
    batches = list(make_pretext_dataset(_source(images), name, batch, **options).take(2))
    model.train_on_batch(*batches[0])  # warm-up (tracing)
    count, start = 0, time.perf_counter()
    while True:
        model.train_on_batch(*batches[count % len(batches)])
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and count >= steps:
            return count * batch / elapsed


# === main ===


def build_arg_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short measurements (smoke check)")
    parser.add_argument("--no-train", action="store_true", help="skip the training throughput")
    parser.add_argument("--variants", action="store_true", help="also time option variants")
    parser.add_argument(
        "--sizes", type=int_at_least(1), nargs="+", default=[32, 64], help="image sizes"
    )
    parser.add_argument("--batch", type=int_at_least(1), default=128, help="batch size (128)")
    parser.add_argument(
        "--seconds", type=positive_float, default=None, help="seconds per measurement"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    return parser


def main(argv=None):
    args = build_arg_parser().parse_args(argv)
    seconds = args.seconds or (1.5 if args.quick else 6.0)
    train_seconds, train_steps = (0.0, 2) if args.quick else (seconds / 2, 3)
    num_images = 1024 if args.quick else 4096
    train = not args.no_train
    if train and TRAIN_IMPORT_ERROR is not None:
        print(f"training throughput skipped: {TRAIN_IMPORT_ERROR} (use --no-train)")
        train = False

    rows = {name: [(name, {})] for name in TASKS}
    if args.variants:
        rows.update({label: [spec] for label, spec in VARIANTS.items()})
    rows["all"] = [(name, {}) for name in TASKS]
    print(
        f"TF {tf.__version__}, {os.cpu_count()} CPUs, batch {args.batch}, {seconds:g} s per "
        f"measurement, {num_images} random uint8 RGB images per size"
    )
    results = []
    for size in args.sizes:
        images = np.random.default_rng(size).integers(0, 256, (num_images, size, size, 3), np.uint8)
        target = TARGET_NAIVE.get(size)
        print(f"\n== {size}x{size}x3 ==")
        header = (
            f"{'task':24s} {'batched ex/s':>13s} {'naive ex/s':>11s} {'ratio':>7s} "
            f"{'cpu ratio':>10s}"
        )
        if train:
            header += f" {'train ex/s':>11s} {'pipe/train':>10s}"
        print(header)
        train_rates = {}
        for label, tasks in rows.items():
            fast, fast_cpu = examples_per_second(
                batched_pipeline(images, tasks, args.batch), args.batch, seconds
            )
            slow, slow_cpu = examples_per_second(
                naive_pipeline(images, tasks, args.batch), args.batch, seconds
            )
            row = {
                "size": size,
                "task": label,
                "batched": fast,
                "naive": slow,
                "ratio": fast / slow,
                "batched_per_cpu_s": fast_cpu,
                "naive_per_cpu_s": slow_cpu,
                "cpu_ratio": fast_cpu / slow_cpu,
            }
            line = (
                f"{label:24s} {fast:13.0f} {slow:11.0f} {fast / slow:6.1f}x "
                f"{fast_cpu / slow_cpu:9.1f}x"
            )
            if train:
                if label == "all":  # the five models trained one after the other on each batch
                    rate = 1.0 / sum(1.0 / train_rates[name] for name in TASKS)
                else:
                    rate = training_rate(
                        tasks[0][0], tasks[0][1], images, args.batch, train_seconds, train_steps
                    )
                train_rates[label] = rate
                row.update(train=rate, pipeline_over_train=fast / rate)
                line += f" {rate:11.0f} {fast / rate:9.1f}x"
            print(line, flush=True)
            results.append(row)
        ratios = [r["ratio"] for r in results if r["size"] == size]
        cpu = [r["cpu_ratio"] for r in results if r["size"] == size]
        summary = (
            f"batched/naive: min {min(ratios):.1f}x, median {np.median(ratios):.1f}x "
            f"(per CPU-second: min {min(cpu):.1f}x, median {np.median(cpu):.1f}x)"
        )
        if target:
            summary += f"; target >= {target:g}x: {'met' if min(ratios) >= target else 'NOT met'}"
        print(summary)
        if train:
            over = [r["pipeline_over_train"] for r in results if r["size"] == size]
            met = "met" if min(over) >= TARGET_TRAIN else "NOT met"
            print(f"batched/training: min {min(over):.1f}x (target >= {TARGET_TRAIN:g}x: {met})")
    if args.json:
        write_json(args.json, results, indent=1)
    return results


if __name__ == "__main__":
    sys.exit(run_cli(main))
