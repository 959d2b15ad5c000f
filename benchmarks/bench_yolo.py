"""YOLO benchmark: accuracy of the default recipe, deployability, and speed, in one run.

Trains `recipes/train_yolo.py` with its defaults (or the flags passed after `--`) under a time
budget, then measures on the fixed validation set:
- COCO mAP@0.5 and mAP@[.5:.95] (pycocotools) of the Keras model, of the exported SavedModel
  (loaded with plain TensorFlow, NMS and thresholds inside, as a TF Serving client sees it), and
  of the fp32 and int8 `.tflite` files, exported with the in-graph score threshold 0.001 that
  COCO evaluations use (YOLOv8n predicts at the same confidence);
- batch-1 latency: TFLite fp32 and int8 (ai-edge-litert), the Keras detection model inside a
  `tf.function`, and an eager `model(x)` call;
- training images/s, inference images/s at batch 1 and 32, and the achieved GFLOP/s at batch 32
  as a fraction of a large float32 matmul's GFLOP/s measured in the same run.

    python benchmarks/bench_yolo.py                      # 10 training minutes, synthetic shapes
    python benchmarks/bench_yolo.py --minutes 3
    python benchmarks/bench_yolo.py --coco-dir /tmp/coco_shapes  # also a COCO-JSON data set
    python benchmarks/bench_yolo.py --coco-dir /tmp/coco_shapes --skip-synthetic
    python benchmarks/bench_yolo.py --quick              # smoke-sized, to check the script
    # real objects: Fashion-MNIST items on cluttered backgrounds (zoo.data.fashion_objects),
    # 3000 training / 500 validation images as COCO JSON; one run per budget, one table
    python benchmarks/bench_yolo.py --fashion-dir /tmp/fashion --skip-synthetic --budgets 3,10,30
    # + Ultralytics YOLOv8n from scratch on the same COCO-JSON split, same budget, scored by the
    # same pycocotools call (PY: a venv with ultralytics; see benchmarks/ultralytics_yolov8n.py)
    python benchmarks/bench_yolo.py --coco-dir /tmp/coco_shapes --skip-synthetic \
        --ultralytics-python /tmp/ulvenv/bin/python
    python benchmarks/bench_yolo.py --fashion-dir /tmp/fashion --skip-synthetic \
        --budgets 3,10,30 --ultralytics-python /tmp/ulvenv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zoo  # noqa: E402,F401 - first: keeps TensorFlow's start-up lines off the console

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "recipes"))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import train_yolo  # noqa: E402

from zoo.data import fashion_objects, synthetic_shapes, write_coco  # noqa: E402
from zoo.detection import detection_model  # noqa: E402
from zoo.detection.evaluate import collect_detections  # noqa: E402
from zoo.detection.export import tflite_predict  # noqa: E402
from zoo.metrics import coco_map  # noqa: E402
from zoo.training.cli import run_cli  # noqa: E402
from zoo.training.flags import comma_list, int_at_least, positive_float  # noqa: E402

# Both detectors are scored at the confidence COCO evaluations and Ultralytics' validation use:
# the zoo's models are exported with it (the recipe's deployment default is 0.05), YOLOv8n
# predicts with it.
SCORE_THRESHOLD = 0.001


def median_ms(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def tflite_latency_ms(paths, x, repeat, threads):
    """Median batch-1 invoke times of open interpreters (set input, invoke, read outputs).

    The files are timed in turns within one loop, so drifts of this shared CPU's speed (runs
    minutes apart differed by up to 2x on sub-millisecond models) hit all of them alike.
    """
    from ai_edge_litert.interpreter import Interpreter

    calls = []
    for path in paths:
        runner = Interpreter(model_path=str(path), num_threads=threads).get_signature_runner()
        name = next(iter(runner.get_input_details()))
        calls.append(lambda runner=runner, name=name: runner(**{name: x}))
    times = [[] for _ in calls]
    for call in calls:
        call()
    for _ in range(repeat):
        for call, record in zip(calls, times, strict=True):
            start = time.perf_counter()
            call()
            record.append(time.perf_counter() - start)
    return [1000 * statistics.median(record) for record in times]


def conv_dense_flops(model):
    """Multiply-adds x 2 of every Conv2D / Dense layer for one image (the bulk of the work)."""
    total = 0
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            out = layer.output.shape
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1]
            total += 2 * kh * kw * cin * out[1] * out[2] * out[3] // layer.groups
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return total


def _all_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer


def matmul_gflops(n=2048, repeat=10):
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    fn = tf.function(lambda: tf.matmul(a, b))
    ms = median_ms(lambda: fn().numpy(), repeat)
    return 2 * n**3 / (ms / 1000) / 1e9


def saved_model_predict(path, images, size):
    """Detections from the exported SavedModel (plain TF), in each image's pixels."""
    loaded = tf.saved_model.load(str(path))
    serve = loaded.signatures["serving_default"]
    results = []
    for image in images:
        out = serve(images=tf.constant(image[None], tf.float32))
        n = int(out["num_detections"][0])
        height, width = image.shape[:2]
        ymin, xmin, ymax, xmax = out["detection_boxes"][0, :n].numpy().T
        results.append(
            {
                "boxes": np.stack([xmin * width, ymin * height, xmax * width, ymax * height], 1),
                "scores": out["detection_scores"][0, :n].numpy(),
                "classes": out["detection_classes"][0, :n].numpy().astype(np.int32),
            }
        )
    return results


def write_coco_shapes(folder, num_images, seed, image_size=128, num_classes=5):
    """A COCO-JSON data set on disk (PNG files + instances.json), made from the synthetic
    generator with its own seed: the recipe reads it through --data like any user data."""
    data = synthetic_shapes(
        num_images, image_size=(image_size, image_size), seed=seed, num_classes=num_classes
    )
    return write_coco(data, folder)


def write_fashion_objects(folder, num_train, num_val, seed, image_size=128):
    """The Fashion-objects set as COCO JSON: ``folder/instances.json`` (training items) and
    ``folder/val/instances.json`` (items of the IDX test file, ids and file names after the
    training ones), a fixed validation set that the recipe reads through --val-data.

    Returns:
        ``(train instances.json, validation instances.json)``.
    """
    folder = Path(folder)
    size = (image_size, image_size)
    train = fashion_objects(num_train, image_size=size, seed=seed, split="train")
    val = fashion_objects(num_val, image_size=size, seed=seed + 1, split="validation")
    return (
        write_coco(train, folder),
        write_coco(val, folder / "val", start_id=num_train + 1),
    )


def write_yolo_split(folder, annotations, splits):
    """The COCO-JSON set as an Ultralytics YOLO-format set: ``images/<split>`` (links to the
    PNG files), ``labels/<split>/*.txt`` (``class cx cy w h``, normalised), ``data.yaml``.

    Args:
        folder: output folder.
        annotations: the instances.json ``write_coco`` wrote, or a list of them (a training
            and a validation file, with file names unique across them).
        splits: ``{"train": [image paths], "val": [image paths]}`` (the zoo recipe's split).

    Returns:
        The data.yaml path.
    """
    folder = Path(folder)
    files = [annotations] if isinstance(annotations, (str, os.PathLike)) else annotations
    by_name = {}
    for file in files:
        coco = json.loads(Path(file).read_text())
        by_image = {image["id"]: (image, []) for image in coco["images"]}
        for ann in coco["annotations"]:
            by_image[ann["image_id"]][1].append(ann)
        by_name.update({image["file_name"]: (image, anns) for image, anns in by_image.values()})
    categories = sorted(c["id"] for c in coco["categories"])
    names = {c["id"]: c["name"] for c in coco["categories"]}
    for split, paths in splits.items():
        (folder / "images" / split).mkdir(parents=True, exist_ok=True)
        (folder / "labels" / split).mkdir(parents=True, exist_ok=True)
        for path in paths:
            path = Path(path)
            image, anns = by_name[path.name]
            link = folder / "images" / split / path.name
            if not link.exists():
                link.symlink_to(path.resolve())
            w, h = image["width"], image["height"]
            lines = [
                f"{categories.index(a['category_id'])} {(a['bbox'][0] + a['bbox'][2] / 2) / w:.6f} "
                f"{(a['bbox'][1] + a['bbox'][3] / 2) / h:.6f} {a['bbox'][2] / w:.6f} "
                f"{a['bbox'][3] / h:.6f}"
                for a in anns
            ]
            (folder / "labels" / split / f"{path.stem}.txt").write_text("\n".join(lines) + "\n")
    (folder / "val.txt").write_text(
        "\n".join(str(folder / "images" / "val" / Path(p).name) for p in splits["val"]) + "\n"
    )
    yaml = folder / "data.yaml"
    yaml.write_text(
        f"path: {folder.resolve()}\ntrain: images/train\nval: images/val\nnames:\n"
        + "".join(f"  {i}: {names[c]}\n" for i, c in enumerate(categories))
    )
    return yaml


def ultralytics_run(args, out, data_args, zoo_row, minutes, tag):
    """YOLOv8n from scratch on the zoo recipe's own split of a COCO-JSON set, in another
    Python, for the same minutes; its detections scored with the same ``coco_map`` call.

    Args:
        data_args: the recipe's data flags (``--data A`` or ``--data A --val-data B``).
        minutes: training budget (``--quick``: 0.2).
        tag: names the run's folder under ``out``.
    """
    # the recipe's flags (--seed, --val-fraction) decide the split: the same as the zoo's run
    parsed = train_yolo.parse_args([*data_args, *args.recipe_args])
    train, val = train_yolo.load_splits(parsed)
    annotations = [parsed.data] + ([parsed.val_data] if parsed.val_data else [])
    yaml = write_yolo_split(
        out / f"ultralytics_data_{tag}", annotations, {"train": train.files, "val": val.files}
    )
    minutes = 0.2 if args.quick else minutes
    command = [
        args.ultralytics_python,
        str(ROOT / "benchmarks" / "ultralytics_yolov8n.py"),
        "--data",
        str(yaml),
        "--val-list",
        str(yaml.parent / "val.txt"),
        "--minutes",
        str(minutes),
        "--out",
        str(out / f"ultralytics_{tag}"),
        "--conf",
        str(SCORE_THRESHOLD),
    ]
    print(f"\n=== YOLOv8n (Ultralytics): {' '.join(command)}", flush=True)
    subprocess.run(command, check=True)
    result = json.loads((out / f"ultralytics_{tag}" / "detections.json").read_text())
    n_eval = min(args.eval_images, val.num_examples)
    _, truth, _ = collect_detections(lambda imgs: [None] * len(imgs), val, max_images=n_eval)
    scored = coco_map(truth, result["detections"][:n_eval])  # lists of boxes, scores, classes
    row = {
        "run": f"yolov8n (ultralytics, same split, {tag})",
        "train_wall_s": result["train_s"],
        "epochs": result["epochs"],
        **{key: scored[key] for key in SCORE_KEYS},
        "latency_ms_torch_predict": result["latency_ms_torch_predict"],
        "latency_ms_onnxruntime": result.get("latency_ms_onnxruntime"),
        "torch": result["torch"],
        "threads": result["threads"],
    }
    if zoo_row is not None:
        row["zoo_savedmodel_minus_yolov8n_map"] = zoo_row["savedmodel_map"] - row["map"]
        row["zoo_savedmodel_minus_yolov8n_map50"] = zoo_row["savedmodel_map50"] - row["map50"]
        if row["latency_ms_onnxruntime"]:  # batch 1, same threads; target <= 1
            row["zoo_tflite_int8_over_yolov8n_onnx_latency"] = (
                zoo_row["latency_ms_tflite_int8"] / row["latency_ms_onnxruntime"]
            )
    return row


SCORE_KEYS = ("map50", "map", "map_small", "map_medium", "map_large")


def _pair(scores, first, second):
    if scores is None:
        return "not run"
    return " / ".join(_number(scores.get(key)) for key in (first, second))


def _number(value):
    return "n/a" if value is None or value != value else f"{value:.3f}"


def budget_table(entries):
    """A Markdown table of zoo vs YOLOv8n per training budget (pure: numbers in, text out).

    Args:
        entries: one dict per budget: ``"budget"`` (minutes, or a label such as ``"smoke"``),
            ``"zoo"`` (the zoo SavedModel's ``coco_map`` figures: ``map50``, ``map``,
            ``map_small``, ``map_medium``, ``map_large``) and ``"yolov8n"`` (the same for
            YOLOv8n, or ``None`` when it was not run). NaN (no object of a size) prints "n/a".

    Returns:
        The table as a string.
    """
    lines = [
        "| budget | zoo mAP@.5 / mAP@[.5:.95] (SavedModel) | YOLOv8n | zoo - YOLOv8n "
        "| zoo AP small / medium / large | YOLOv8n AP small / medium / large |",
        "|---|---|---|---|---|---|",
    ]
    for entry in entries:
        budget, zoo_scores, yolo = entry["budget"], entry["zoo"], entry.get("yolov8n")
        label = f"{budget:g} min" if isinstance(budget, (int, float)) else str(budget)
        if yolo is None:
            difference = "not run"
        else:
            difference = " / ".join(
                f"{zoo_scores[key] - yolo[key]:+.3f}" for key in ("map50", "map")
            )
        sizes = [
            "not run"
            if scores is None
            else " / ".join(_number(scores.get(f"map_{s}")) for s in ("small", "medium", "large"))
            for scores in (zoo_scores, yolo)
        ]
        lines.append(
            f"| {label} | {_pair(zoo_scores, 'map50', 'map')} | {_pair(yolo, 'map50', 'map')} "
            f"| {difference} | {sizes[0]} | {sizes[1]} |"
        )
    return "\n".join(lines)


def evaluate_run(args, recipe_args, label):
    print(f"\n=== {label}: python recipes/train_yolo.py {' '.join(recipe_args)}", flush=True)
    start = time.perf_counter()
    metrics = train_yolo.main(recipe_args)
    wall = time.perf_counter() - start
    parsed = train_yolo.parse_args(recipe_args)
    run = Path(parsed.output) / parsed.name
    history = (run / "history.csv").read_text().strip().splitlines()
    epochs = len(history) - 1
    model = keras.models.load_model(run / "checkpoints" / "last.keras", compile=False)
    size = (parsed.image_size, parsed.image_size)
    _, val = train_yolo.load_splits(parsed)
    version = max(
        int(p.name)
        for p in (Path(parsed.export_dir) / parsed.model_name).iterdir()
        if p.name.isdigit()
    )
    export = Path(parsed.export_dir) / parsed.model_name / str(version)
    n_eval = min(args.eval_images, val.num_examples or args.eval_images)

    images, truth, saved_dets = collect_detections(
        lambda imgs: saved_model_predict(export, imgs, size), val, max_images=n_eval
    )
    row = {
        "run": label,
        "train_wall_s": wall,
        "epochs": epochs,
        "keras_map": metrics["map"],
        "keras_map50": metrics["map50"],
    }
    saved = coco_map(truth, saved_dets)
    for key in SCORE_KEYS:
        row[f"savedmodel_{key}"] = saved[key]
    for kind in ("fp32", "int8"):
        path = export / f"model_{kind}.tflite"
        _, _, dets = collect_detections(
            lambda imgs, path=path: tflite_predict(path, imgs, size), val, max_images=n_eval
        )
        result = coco_map(truth, dets)
        row[f"tflite_{kind}_map"], row[f"tflite_{kind}_map50"] = result["map"], result["map50"]

    # --- speed ---
    x1 = np.asarray(tf.image.resize(images[0], size))[None].astype(np.float32)
    x32 = np.repeat(x1, 32, axis=0)
    detector = detection_model(model, batch_size=1, score_threshold=parsed.export_score_threshold)
    graph = tf.function(lambda x: detector(x, training=False))
    kinds = ("fp32", "int8")
    for threads in (1, 2):
        paths = [export / f"model_{kind}.tflite" for kind in kinds]
        timed = tflite_latency_ms(paths, x1, 10 * args.repeat, threads)
        for kind, ms in zip(kinds, timed, strict=True):
            row[f"latency_ms_tflite_{kind}_{threads}t"] = ms
    for kind in kinds:
        row[f"latency_ms_tflite_{kind}"] = min(
            row[f"latency_ms_tflite_{kind}_{t}t"] for t in (1, 2)
        )
    row["latency_ms_keras_tf_function"] = median_ms(
        lambda: [v.numpy() for v in graph(x1).values()], args.repeat
    )
    row["latency_ms_keras_eager"] = median_ms(
        lambda: [v.numpy() for v in detector(x1).values()], args.repeat
    )
    raw = tf.function(lambda x: model(x, training=False))
    ms32 = median_ms(lambda: raw(x32).numpy(), max(3, args.repeat // 5))
    row["infer_img_s_batch1"] = 1000 / median_ms(lambda: raw(x1).numpy(), args.repeat)
    row["infer_img_s_batch32"] = 32 * 1000 / ms32
    flops = conv_dense_flops(model)
    row["gflop_per_image"] = flops / 1e9
    row["achieved_gflops_b32"] = flops * 32 / (ms32 / 1000) / 1e9
    row["matmul_gflops"] = matmul_gflops()
    row["fraction_of_matmul"] = row["achieved_gflops_b32"] / row["matmul_gflops"]

    # training throughput: timed steps on the recipe's own pipeline and loss
    loss = train_yolo.make_loss(parsed, model.num_classes, model.anchors)
    train_data, _ = train_yolo.load_splits(parsed)
    ds = train_yolo.make_yolo_dataset(
        train_data, loss, size, parsed.batch_size, parsed.max_boxes, training=True
    )
    model.compile(keras.optimizers.AdamW(1e-4), loss)
    model.fit(ds, steps_per_epoch=3, epochs=1, verbose=0)
    steps = 5 if args.quick else 20
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    row["train_img_s"] = steps * parsed.batch_size / (time.perf_counter() - start)
    return row


def build_arg_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=positive_float, default=10.0, help="training time budget")
    parser.add_argument(
        "--eval-images", type=int_at_least(1), default=500, help="validation images"
    )
    parser.add_argument("--repeat", type=int_at_least(1), default=50, help="latency repetitions")
    parser.add_argument("--coco-dir", help="also train on a COCO-JSON set written here")
    parser.add_argument(
        "--fashion-dir",
        help="also train on the Fashion-objects set (real Fashion-MNIST items on cluttered "
        "backgrounds), written here as COCO JSON: instances.json + val/instances.json",
    )
    parser.add_argument(
        "--fashion-train", type=int_at_least(1), default=3000, help="Fashion-objects train images"
    )
    parser.add_argument(
        "--fashion-val",
        type=int_at_least(1),
        default=500,
        help="Fashion-objects validation images (items of the IDX test file)",
    )
    parser.add_argument(
        "--budgets",
        type=comma_list(positive_float),
        default=None,
        help="with --fashion-dir: training minutes per run, e.g. 3,10,30 (default: --minutes); "
        "the zoo and YOLOv8n train once per budget, and one table compares them",
    )
    parser.add_argument(
        "--skip-synthetic",
        action="store_true",
        help="only the --coco-dir / --fashion-dir runs (needs one of them)",
    )
    parser.add_argument(
        "--ultralytics-python",
        help="with --coco-dir or --fashion-dir: a Python with ultralytics installed; trains "
        "YOLOv8n from scratch on the same split for the same minutes and scores it beside the zoo",
    )
    parser.add_argument("--out", default=None, help="folder for runs/exports (default: temp)")
    parser.add_argument("--quick", action="store_true", help="smoke-sized run of this script")
    parser.add_argument("recipe_args", nargs="*", help="extra recipe flags (after --)")
    return parser


def _budget_args(args, minutes):
    return ["--smoke"] if args.quick else ["--time-budget", str(minutes)]


def fashion_runs(args, out, common):
    """The zoo (and YOLOv8n) on the Fashion-objects set once per budget; rows and table entries."""
    num_train, num_val = (48, 16) if args.quick else (args.fashion_train, args.fashion_val)
    train_ann, val_ann = write_fashion_objects(args.fashion_dir, num_train, num_val, seed=2024)
    data_args = ["--data", str(train_ann), "--val-data", str(val_ann)]
    budgets = args.budgets or [args.minutes]
    if args.quick:
        budgets = budgets[:1]
    rows, ultras, entries = [], [], []
    for minutes in budgets:
        tag = "smoke" if args.quick else f"{minutes:g}m".replace(".", "p")
        zoo_row = evaluate_run(
            args,
            [
                *_budget_args(args, minutes),
                *common,
                "--name",
                f"fashion_{tag}",
                "--model-name",
                f"yolo_fashion_{tag}",
                *data_args,
                *args.recipe_args,
            ],
            f"fashion-objects {tag}",
        )
        rows.append(zoo_row)
        ultra = None
        if args.ultralytics_python:
            ultra = ultralytics_run(args, out, data_args, zoo_row, minutes, f"fashion_{tag}")
            ultras.append(ultra)
        entries.append(
            {
                "budget": "smoke" if args.quick else minutes,
                "zoo": {key: zoo_row[f"savedmodel_{key}"] for key in SCORE_KEYS},
                "yolov8n": None if ultra is None else {key: ultra[key] for key in SCORE_KEYS},
            }
        )
    return rows, ultras, entries


def main(argv=None):
    parser = build_arg_parser()
    args = parser.parse_args(argv)
    if args.quick:
        args.eval_images, args.repeat = 8, 5
    out = Path(args.out or tempfile.mkdtemp(prefix="bench_yolo_"))
    common = [
        *("--output", str(out / "runs"), "--export-dir", str(out / "models"), "--verbose", "2"),
        *("--export-score-threshold", str(SCORE_THRESHOLD)),
    ]
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU cores")
    if args.skip_synthetic and not (args.coco_dir or args.fashion_dir):
        parser.error("--skip-synthetic needs --coco-dir or --fashion-dir")
    if args.ultralytics_python and not (args.coco_dir or args.fashion_dir):
        parser.error("--ultralytics-python needs --coco-dir or --fashion-dir")
    if args.budgets and not args.fashion_dir:
        parser.error("--budgets needs --fashion-dir")
    rows, ultras, entries = [], [], []
    if not args.skip_synthetic:
        rows.append(
            evaluate_run(
                args,
                [
                    *_budget_args(args, args.minutes),
                    *common,
                    "--name",
                    "synthetic",
                    *args.recipe_args,
                ],
                "synthetic",
            )
        )
    if args.coco_dir:
        ann = write_coco_shapes(args.coco_dir, 80 if args.quick else 3000, seed=777)
        rows.append(
            evaluate_run(
                args,
                [
                    *_budget_args(args, args.minutes),
                    *common,
                    "--name",
                    "coco",
                    "--model-name",
                    "yolo_coco",
                    "--data",
                    str(ann),
                    *args.recipe_args,
                ],
                "coco-json",
            )
        )
        if args.ultralytics_python:
            ultras.append(
                ultralytics_run(args, out, ["--data", str(ann)], rows[-1], args.minutes, "coco")
            )
    if args.fashion_dir:
        fashion_rows, fashion_ultras, entries = fashion_runs(args, out, common)
        rows += fashion_rows
        ultras += fashion_ultras
    print("\n=== results")
    for ultra in ultras:
        print(json.dumps(ultra, indent=1, default=float))
        print(
            f"[{ultra['run']}] mAP@.5 {ultra['map50']:.4f}  mAP@[.5:.95] {ultra['map']:.4f} "
            f"({ultra['epochs']} epochs, {ultra['threads']} threads; zoo SavedModel minus "
            f"YOLOv8n: {ultra.get('zoo_savedmodel_minus_yolov8n_map50', float('nan')):+.4f} / "
            f"{ultra.get('zoo_savedmodel_minus_yolov8n_map', float('nan')):+.4f})"
        )
        if ultra.get("zoo_tflite_int8_over_yolov8n_onnx_latency") is not None:
            print(
                f"  batch-1 latency: YOLOv8n ONNX Runtime {ultra['latency_ms_onnxruntime']:.2f} ms "
                "(raw head, no NMS); zoo TFLite int8 (decoding + NMS inside) / YOLOv8n ONNX = "
                f"{ultra['zoo_tflite_int8_over_yolov8n_onnx_latency']:.2f} (target <= 1)"
            )
    for row in rows:
        print(json.dumps(row, indent=1, default=float))
        r = row
        print(
            f"[{r['run']}] mAP@.5 {r['keras_map50']:.4f}  mAP@[.5:.95] {r['keras_map']:.4f}  "
            f"(SavedModel {r['savedmodel_map50']:.4f} / {r['savedmodel_map']:.4f}; "
            f"TFLite fp32 {r['tflite_fp32_map50']:.4f}, int8 {r['tflite_int8_map50']:.4f} "
            f"-> int8 - fp32 = {r['tflite_int8_map50'] - r['tflite_fp32_map50']:+.4f})\n"
            f"  batch-1 latency ms: TFLite fp32 {r['latency_ms_tflite_fp32']:.2f}, int8 "
            f"{r['latency_ms_tflite_int8']:.2f} (int8/fp32 "
            f"{r['latency_ms_tflite_int8'] / r['latency_ms_tflite_fp32']:.2f}x; 1 thread "
            f"{r['latency_ms_tflite_fp32_1t']:.2f} / {r['latency_ms_tflite_int8_1t']:.2f}, 2 "
            f"threads {r['latency_ms_tflite_fp32_2t']:.2f} / {r['latency_ms_tflite_int8_2t']:.2f}),"
            " Keras "
            f"tf.function {r['latency_ms_keras_tf_function']:.2f} (TFLite/Keras "
            f"{r['latency_ms_tflite_fp32'] / r['latency_ms_keras_tf_function']:.2f}x), eager "
            f"{r['latency_ms_keras_eager']:.2f}\n"
            f"  train {r['train_img_s']:.0f} img/s, inference {r['infer_img_s_batch1']:.0f} img/s "
            f"(batch 1) / {r['infer_img_s_batch32']:.0f} img/s (batch 32); "
            f"{r['gflop_per_image']:.3f} GFLOP/image -> {r['achieved_gflops_b32']:.1f} GFLOP/s "
            f"= {r['fraction_of_matmul']:.2f} of matmul's {r['matmul_gflops']:.1f} GFLOP/s"
        )
    if entries:
        print(f"\n=== Fashion-objects ({args.eval_images} validation images at most), COCO AP")
        print(budget_table(entries))


if __name__ == "__main__":
    sys.exit(run_cli(main))
