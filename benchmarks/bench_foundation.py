"""Foundation benchmark: data throughput, box ops and NMS speed, COCO evaluation time.

Everything is measured side by side in one run and printed as rates and ratios, so the numbers
compare on whatever machine runs it (the zoo's reference machine is a 2-core CPU).

    python benchmarks/bench_foundation.py            # about a minute
    python benchmarks/bench_foundation.py --quick    # a few seconds, smaller sizes
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import zoo  # noqa: E402,F401 - first: keeps TensorFlow's start-up lines off the console

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import zoo.metrics  # noqa: E402
import zoo.ops  # noqa: E402
from zoo.data import detection_pipeline, render_shapes, synthetic_shapes  # noqa: E402
from zoo.training.cli import run_cli


def rate(fn, repeat):
    """Calls per second of ``fn`` (best of ``repeat`` timed calls after one warm-up)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return 1.0 / best


def numpy_greedy_nms(boxes, scores, iou_threshold, score_threshold):
    """Textbook greedy NMS in NumPy (drop p <= 0.6, keep the best, drop IoU >= 0.5), the speed baseline."""
    order = [i for i in np.argsort(-scores, kind="stable") if scores[i] > score_threshold]
    keep = []
    areas = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=1)
    while order:
        best = order.pop(0)
        keep.append(best)
        rest = np.array(order, dtype=np.int64)
        if not len(rest):
            break
        lt = np.maximum(boxes[best, :2], boxes[rest, :2])
        rb = np.minimum(boxes[best, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
        iou = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        order = [int(i) for i in rest[iou < iou_threshold]]
    return np.array(keep)


def random_boxes(rng, n, size=512.0):
    xy = rng.uniform(0, size * 0.9, (n, 2))
    wh = rng.uniform(4, size * 0.3, (n, 2))
    return np.concatenate([xy, np.minimum(xy + wh, size)], axis=1).astype(np.float32)


def bench_data(n_images, image_size):
    print(f"\n== data: synthetic shapes at {image_size}x{image_size}")
    count = min(n_images, 256)
    start = time.perf_counter()
    for i in range(count):
        render_shapes(i, seed=0, image_size=(image_size, image_size))
    numpy_rate = count / (time.perf_counter() - start)

    data = synthetic_shapes(n_images, image_size=(image_size, image_size), seed=0)
    start = time.perf_counter()
    for _ in data.dataset:
        pass
    tfdata_rate = n_images / (time.perf_counter() - start)

    pipeline = detection_pipeline(
        data, (image_size, image_size), batch_size=32, max_boxes=20, augment=True
    )
    start = time.perf_counter()
    seen = sum(int(batch["images"].shape[0]) for batch in pipeline)
    pipeline_rate = seen / (time.perf_counter() - start)
    print(f"  numpy drawing, one process      {numpy_rate:8.0f} images/s")
    print(f"  tf.data decoded elements        {tfdata_rate:8.0f} images/s")
    print(f"  full pipeline (augment, batch)  {pipeline_rate:8.0f} images/s")
    return {"numpy": numpy_rate, "tfdata": tfdata_rate, "pipeline": pipeline_rate}


def bench_iou(n):
    print(f"\n== ops: pairwise IoU family, {n} x {n} boxes")
    rng = np.random.default_rng(0)
    a, b = random_boxes(rng, n), random_boxes(rng, n)
    ta, tb = tf.constant(a), tf.constant(b)
    results = {}
    for name in ("iou", "giou", "diou", "ciou"):
        fn = tf.function(getattr(zoo.ops, name))
        results[name] = rate(lambda fn=fn: fn(ta, tb).numpy(), 5) * n * n / 1e6
        print(f"  zoo.ops.{name:5s} (tf.function)    {results[name]:8.1f} M pairs/s")
    return results


def bench_nms(n, repeat):
    print(f"\n== ops: NMS on {n} boxes (score > 0.6 kept, IoU >= 0.5 suppressed)")
    rng = np.random.default_rng(1)
    boxes = random_boxes(rng, n)
    scores = rng.uniform(0, 1, n).astype(np.float32)
    tb, ts = tf.constant(boxes), tf.constant(scores)
    zoo_nms = tf.function(lambda b, s: zoo.ops.non_max_suppression(b, s, max_output_size=n))
    tf_nms = tf.function(
        lambda b, s: tf.image.non_max_suppression(b, s, n, iou_threshold=0.5, score_threshold=0.6)
    )
    kept_zoo = zoo_nms(tb, ts).numpy()
    kept_ref = numpy_greedy_nms(boxes, scores, 0.5, 0.6)
    same = np.array_equal(kept_zoo, kept_ref)
    r_zoo = rate(lambda: zoo_nms(tb, ts).numpy(), repeat)
    r_tf = rate(lambda: tf_nms(tb, ts).numpy(), repeat)
    r_np = rate(lambda: numpy_greedy_nms(boxes, scores, 0.5, 0.6), repeat)
    print(f"  zoo.ops.non_max_suppression     {r_zoo:8.0f} calls/s  (kept {len(kept_zoo)})")
    print(f"  tf.image.non_max_suppression    {r_tf:8.0f} calls/s  zoo/tf = {r_zoo / r_tf:.2f}x")
    print(f"  NumPy greedy reference          {r_np:8.0f} calls/s  zoo/numpy = {r_zoo / r_np:.1f}x")
    print(f"  same selection as the NumPy reference: {same}")
    return {"zoo_vs_tf": r_zoo / r_tf, "zoo_vs_numpy": r_zoo / r_np, "same": same}


def bench_coco(n_images):
    print(f"\n== metrics: coco_map on {n_images} images x ~20 detections")
    rng = np.random.default_rng(2)
    gt, det = [], []
    for _ in range(n_images):
        k = int(rng.integers(1, 6))
        boxes = random_boxes(rng, k)
        classes = rng.integers(0, 5, k)
        gt.append({"boxes": boxes, "classes": classes})
        jitter = boxes + rng.normal(0, 3, boxes.shape)
        jitter = np.concatenate(
            [np.minimum(jitter[:, :2], jitter[:, 2:]), np.maximum(jitter[:, :2], jitter[:, 2:])],
            axis=1,
        )
        noisy = np.concatenate([jitter, random_boxes(rng, 15)])
        det.append(
            {
                "boxes": noisy.astype(np.float32),
                "classes": np.concatenate([classes, rng.integers(0, 5, 15)]),
                "scores": np.concatenate([rng.uniform(0.5, 1, k), rng.uniform(0, 0.7, 15)]),
            }
        )
    start = time.perf_counter()
    result = zoo.metrics.coco_map(gt, det)
    seconds = time.perf_counter() - start
    print(f"  coco_map: {seconds:.2f} s  (map={result['map']:.3f}, map50={result['map50']:.3f})")
    return {"seconds": seconds}


def build_arg_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a few seconds")
    return parser


def main(argv=None):
    args = build_arg_parser().parse_args(argv)
    quick = args.quick
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores")
    bench_data(128 if quick else 1024, 128)
    bench_iou(200 if quick else 1000)
    bench_nms(500 if quick else 2000, 3 if quick else 10)
    bench_coco(100 if quick else 500)


if __name__ == "__main__":
    sys.exit(run_cli(main))
