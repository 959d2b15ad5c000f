"""YOLO: train a detector, evaluate it with pycocotools, export it for TF Serving and TFLite.

Description: the zoo's flagship job. Trains `zoo.build_yolo` (anchor head, YOLOv2-style, by
    default; `--anchors 0` gives the YOLOv1 head) with `YoloLoss`, evaluates COCO mAP on the
    validation split, writes metrics.json, a PR-curve PNG and a PNG grid of validation images with
    predicted (solid) and true (dashed) boxes, exports the SavedModel (TF Object Detection API
    outputs, decoding + NMS inside, image and image-bytes signatures) and fp32 + int8 `.tflite`
    files, and checks them against the Keras model with `verify_export`.
Data: the embedded synthetic shapes set by default; `--data` takes a COCO JSON file (images in
    `--image-dir` or a sibling `images/`), a YOLO txt folder, a VOC folder or `tfds:NAME`;
    `--val-data` gives a validation set, else `--val-fraction` of `--data` is held out.
Expected result: see benchmarks/bench_yolo.py and README for measured mAP on the default.
Runtime: `--time-budget` minutes of training (default 10) + about a minute of evaluation and
    export on a 2-core CPU; `--smoke` well under a minute.

    python recipes/train_yolo.py                         # synthetic shapes, 10 minutes
    python recipes/train_yolo.py --data ann.json --image-dir images/ --time-budget 30
    python recipes/train_yolo.py --smoke                 # the CI check
"""

from __future__ import annotations

import argparse
import os
import sys

import zoo  # noqa: E402,F401 - first: keeps TensorFlow's start-up lines off the console

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from zoo.backbones import BACKBONE_STRIDES, BACKBONES, OUTPUT_STRIDES
from zoo.data import (  # noqa: E402
    CloseMosaic,
    Mosaic,
    detection_pipeline,
    load_detection_data,
    split_detection_data,
    synthetic_shapes,
)
from zoo.detection import (  # noqa: E402
    ANCHOR_HEADS,
    YoloLoss,
    build_yolo,
    draw_detection_grid,
    export_yolo,
    fit_anchors,
    make_yolo_dataset,
    plot_pr_curves,
    predict,
    yolo_eval,
)
from zoo.metrics import DetectionMetricsCallback  # noqa: E402
from zoo.training import (  # noqa: E402
    WeightEMA,
    build_parser,
    compile_options,
    configure,
    parse_flags,
    train,
)
from zoo.training.cli import run_cli  # noqa: E402
from zoo.training.flags import (  # noqa: E402
    float_in,
    int_at_least,
    positive_float,
)
from zoo.training.run_dir import write_json  # noqa: E402

# === Hyperparameters ===
# Batch 16: with a fixed time budget on a CPU, more (noisier) steps beat bigger batches.
# 3-minute runs, mAP@.5 / mAP@[.5:.95], yolov1_fast at stride 16: batch 32 + lr 2e-3 0.596 / 0.348,
# 32 + 4e-3 0.680 / 0.417, 32 + 8e-3 0.690 / 0.427, 8 + 4e-3 0.680 / 0.422, 16 + 8e-3 0.694 /
# 0.438, 16 + 4e-3 0.767 / 0.489; darknet_nano at stride 8, 16 + 4e-3: 0.767 / 0.537.
# The peak LR, 6e-3, comes from 10-minute runs at these settings (see --lr's help).
DEFAULTS = {"epochs": 1000, "batch_size": 16, "image_size": 128, "time_budget": 10.0}
SMOKE = {
    "epochs": 1,
    "batch_size": 4,
    "image_size": 64,
    "steps_per_epoch": 2,
    "time_budget": None,
}


def build_arg_parser():
    parser = build_parser(__doc__.splitlines()[0], defaults=DEFAULTS, smoke_defaults=SMOKE)
    group = parser.add_argument_group("YOLO")
    group.add_argument(
        "--image-dir",
        help="image folder of a COCO JSON or VOC set (default: found beside the annotations)",
    )
    group.add_argument("--val-data", help="validation set (same forms as --data)")
    group.add_argument(
        "--val-fraction",
        type=float_in(0, 1, low_open=True, high_open=True),
        default=0.1,
        help="share of --data held out for validation when --val-data is absent",
    )
    group.add_argument(
        "--num-train", type=int_at_least(1), default=4000, help="synthetic training images"
    )
    group.add_argument(
        "--num-val", type=int_at_least(1), default=500, help="synthetic validation images"
    )
    group.add_argument(
        "--grid-size",
        type=int_at_least(1),
        default=None,
        help="grid size S; darknet_nano also takes image_size / 4 (a stride-4 output). "
        "Default: image_size / the backbone's stride",
    )
    group.add_argument(
        "--anchors",
        type=int_at_least(0),
        default=5,
        help="number of anchors from k-means (1 - IoU) on the training boxes; 0 = YOLOv1 head",
    )
    group.add_argument(
        "--boxes-per-cell", type=int_at_least(1), default=2, help="B of the YOLOv1 head"
    )
    group.add_argument(
        "--backbone",
        default="darknet_nano",
        choices=BACKBONES,
        help="feature extractor (see docs/detection.md). Default: %(default)s",
    )
    group.add_argument(
        "--width",
        type=positive_float,
        default=0.5,
        help="backbone width multiplier. Default: %(default)s",
    )
    group.add_argument("--depth", type=positive_float, default=1.0, help="depth multiplier")
    group.add_argument(
        "--head",
        choices=ANCHOR_HEADS,
        default="decoupled",
        help="anchor head: YOLOX's decoupled box and class branches, or YOLOv2's one 3x3 conv "
        "for everything (same compute, same output). Default: %(default)s",
    )
    group.add_argument(
        "--box-loss",
        default="ciou",
        choices=("mse", "giou", "diou", "ciou"),
        help="box term of YoloLoss (mse = the paper's sqrt-w/h sum of squares)",
    )
    group.add_argument(
        "--lambda-coord",
        type=positive_float,
        default=10.0,
        help="weight of the box term (the YOLO paper uses 5). Default: %(default)s",
    )
    group.add_argument(
        "--ignore-iou",
        type=float_in(0, 1, low_open=True, high_open=True),
        default=0.6,
        help="YOLOv2's rule: predictors overlapping a truth by more are not pushed to 'no object'",
    )
    group.add_argument(
        "--anchor-iou",
        type=float_in(0, 1, low_open=True),
        default=0.5,
        help="also make every anchor of the centre cell with this shape IoU to a truth "
        "responsible for it (more positives per truth); 1.0 keeps YOLOv2's best anchor alone. "
        "Default: %(default)s",
    )
    group.add_argument(
        "--neighbour-cells",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="YOLOv5's assignment: the two cells next to a truth's centre cell are responsible "
        "too, with centre offsets 2 sigmoid - 0.5. Anchor head only. Default: on with anchors",
    )
    group.add_argument(
        "--lr",
        type=positive_float,
        default=6e-3,
        help="peak learning rate (AdamW, cosine decay). Default: %(default)s",
    )
    group.add_argument(
        "--ema",
        type=float_in(0, 1, high_open=True),
        default=0.0,
        help="decay of a moving average of the weights (zoo.training.WeightEMA), used for "
        "validation, checkpoints and the final model; 0 = off. Default: %(default)s",
    )
    group.add_argument(
        "--mosaic",
        type=float_in(0, 1),
        default=0.0,
        help="chance that a training image is a mosaic of four (YOLOv4/v5, objects keep "
        "their scale); 0 = off. Default: %(default)s",
    )
    group.add_argument(
        "--mosaic-until",
        type=float_in(0, 1, low_open=True),
        default=0.85,
        help="with --mosaic: the fraction of training (epochs or --time-budget) after which "
        "mosaic is turned off, so the last part sees plain images. Default: %(default)s",
    )
    group.add_argument(
        "--objectness-target",
        default="iou",
        choices=("iou", "one"),
        help="objectness trained toward the IoU of the prediction (the paper) or toward 1",
    )
    group.add_argument("--max-boxes", type=int_at_least(1), default=50, help="boxes kept per image")
    group.add_argument(
        "--score-threshold",
        type=float_in(0, 1),
        default=0.6,
        help="drawn predictions: drop p_c <= this (the NMS rule's 0.6)",
    )
    group.add_argument(
        "--export-score-threshold",
        type=float_in(0, 1),
        default=0.05,
        help="score threshold inside the exported models (clients filter higher themselves). "
        "Default: %(default)s",
    )
    group.add_argument(
        "--iou-threshold", type=float_in(0, 1, low_open=True), default=0.5, help="NMS IoU threshold"
    )
    group.add_argument(
        "--eval-score-threshold",
        type=float_in(0, 1),
        default=0.001,
        help="score threshold for COCO mAP (low, as COCO evaluations use)",
    )
    group.add_argument(
        "--map-every",
        type=int_at_least(0),
        default=5,
        help="log COCO val_map / val_map50 ... every N epochs during training (0: never)",
    )
    group.add_argument(
        "--map-images",
        type=int_at_least(1),
        default=200,
        help="validation images for that epoch-end mAP",
    )
    group.add_argument("--export-dir", default="saved_models", help="TF Serving model root")
    group.add_argument("--model-name", default="yolo", help="name under --export-dir")
    group.add_argument("--no-export", action="store_true", help="skip export and verification")
    return parser


def parse_args(argv=None):
    parser = build_arg_parser()
    args = parse_flags(parser, argv)
    if args.smoke:
        args.num_train, args.num_val = min(args.num_train, 16), min(args.num_val, 8)
        args.width = min(args.width, 0.125)
    if args.grid_size is None:
        stride = (
            16 if args.backbone in ("yolov1", "yolov1_fast") else BACKBONE_STRIDES[args.backbone]
        )
        args.grid_size = max(1, args.image_size // stride)
    strides = sorted({BACKBONE_STRIDES[args.backbone], *OUTPUT_STRIDES.get(args.backbone, ())})
    if args.image_size % args.grid_size or args.image_size // args.grid_size not in strides:
        parser.error(
            f"--grid-size {args.grid_size} does not fit --image-size {args.image_size} with "
            f"--backbone {args.backbone}: the image must be grid size x stride, stride one of "
            f"{strides} (e.g. --image-size {args.grid_size * strides[-1]})"
        )
    if args.neighbour_cells and not args.anchors:
        parser.error("--neighbour-cells needs the anchor head (--anchors > 0)")
    if args.neighbour_cells is None:
        args.neighbour_cells = args.anchors > 0
    if args.jit_compile:
        # YoloLoss's ignore rule gathers the batch's occupied target slots with a data-dependent
        # top_k; XLA needs k at compile time, so it compiled the step anew for every batch
        parser.error(
            "--jit-compile is not supported by this recipe: YoloLoss's --ignore-iou rule takes a "
            "data-dependent number of ground truths per batch, so XLA recompiles the train step "
            "for every batch (measured: 7 s per step against 75 ms without XLA). "
            f"Received: --jit-compile={args.jit_compile!r}"
        )
    return args


# === Data ===
def load_splits(args):
    size = (args.image_size, args.image_size)
    if args.data in (None, "synthetic"):
        train = synthetic_shapes(args.num_train, image_size=size, seed=args.seed)
        val = synthetic_shapes(args.num_val, image_size=size, seed=args.seed + 10_000)
        return train, val
    kwargs = {"image_dir": args.image_dir} if args.image_dir else {}
    data = load_detection_data(args.data, split="train", **kwargs)
    if args.val_data:
        val = load_detection_data(args.val_data, split="validation", **kwargs)
        if val.class_names != data.class_names:
            raise SystemExit(
                f"--val-data classes {val.class_names} differ from --data classes "
                f"{data.class_names}"
            )
        return data, val
    return split_detection_data(data, args.val_fraction, seed=args.seed)


def make_loss(args, num_classes, anchors):
    return YoloLoss(
        num_classes,
        args.grid_size,
        boxes_per_cell=None if anchors is not None else args.boxes_per_cell,
        anchors=anchors,
        box_loss=args.box_loss,
        lambda_coord=args.lambda_coord,
        objectness_loss="bce",
        class_loss="ce",
        objectness_target=args.objectness_target,
        ignore_iou=args.ignore_iou,
        anchor_iou_threshold=args.anchor_iou,
        xy_scale=2.0 if args.neighbour_cells else 1.0,
        neighbour_cells=args.neighbour_cells,
    )


def main(argv=None):
    args = parse_args(argv)
    strategy = configure(args)
    train_data, val_data = load_splits(args)
    num_classes = train_data.num_classes
    anchors = fit_anchors(train_data, args.anchors, seed=args.seed) if args.anchors else None
    loss = make_loss(args, num_classes, anchors)
    size = (args.image_size, args.image_size)
    mosaic = Mosaic(args.mosaic) if args.mosaic > 0 else None
    train_ds = make_yolo_dataset(
        train_data,
        loss,
        size,
        args.batch_size,
        args.max_boxes,
        training=True,
        seed=args.seed,
        mosaic=mosaic,
    )
    val_ds = make_yolo_dataset(
        val_data, loss, size, args.batch_size, args.max_boxes, training=False
    )
    config = {
        "num_classes": num_classes,
        "input_shape": (args.image_size, args.image_size, 3),
        "grid_size": args.grid_size,
        "boxes_per_cell": None if anchors is not None else args.boxes_per_cell,
        "anchors": anchors,
        "backbone": args.backbone,
        "width_multiplier": args.width,
        "depth_multiplier": args.depth,
        "head": args.head if anchors is not None else "conv",
        "xy_scale": loss.xy_scale,
    }
    with strategy.scope():
        model = build_yolo(**config)
        model.compile(
            keras.optimizers.AdamW(args.lr, weight_decay=5e-4, clipnorm=10.0),
            loss,
            **compile_options(args),
        )
    callbacks = [WeightEMA(args.ema)] if args.ema > 0 else []
    if mosaic is not None:
        callbacks.append(CloseMosaic(mosaic, args.mosaic_until))  # train() gives it the budget
    if args.map_every > 0:
        map_data = detection_pipeline(val_data, size, args.batch_size, args.max_boxes)
        callbacks.append(
            DetectionMetricsCallback(
                map_data.take(max(1, args.map_images // args.batch_size)),
                lambda model, images: predict(
                    model, images, score_threshold=args.eval_score_threshold
                ),
                every=args.map_every,
                class_names=train_data.class_names,
            )
        )
    result = train(
        model,
        train_ds,
        args,
        recipe="yolo",
        validation_data=val_ds,
        callbacks=callbacks,
        base_lr=args.lr,
        warmup=0.03,
        min_lr_ratio=0.02,
        steps_per_epoch=args.steps_per_epoch
        or max(1, (train_data.num_examples or 1000) // args.batch_size),
        config={**config, "class_names": train_data.class_names},
    )

    # === Evaluation ===
    run = result.run.path
    evaluation = yolo_eval(
        model,
        val_data,
        score_threshold=args.eval_score_threshold,
        iou_threshold=args.iou_threshold,
        class_names=train_data.class_names,
    )
    metrics = {k: v for k, v in evaluation["metrics"].items() if not isinstance(v, dict)}
    metrics["per_class"] = evaluation["metrics"]["per_class"]
    write_json(run / "metrics.json", metrics)
    plot_pr_curves(evaluation, run / "pr_curve.png")
    draw_detection_grid(
        model,
        val_data,
        run / "val_detections.png",
        score_threshold=args.score_threshold,
        iou_threshold=args.iou_threshold,
    )
    print(
        f"validation ({val_data.num_examples} images): mAP@[.5:.95]={metrics['map']:.4f} "
        f"mAP@.5={metrics['map50']:.4f} mAP@.75={metrics['map75']:.4f}  -> {run}"
    )

    # === Export ===
    if args.no_export:
        return metrics
    exported = export_yolo(
        model,
        train_data,
        args.export_dir,
        args.model_name,
        val_data=val_data,
        class_names=train_data.class_names,
        metrics={k: metrics[k] for k in ("map", "map50", "map75")},
        config=config,
        score_threshold=args.export_score_threshold,
        iou_threshold=args.iou_threshold,
        on_int8_drop="warn",
    )
    metrics.update(
        tflite_fp32_map50=exported["fp32_map50"],
        tflite_int8_map50=exported["int8_map50"],
        int8_ok=exported["int8_ok"],
    )
    write_json(run / "metrics.json", metrics)
    print(f"exported {exported['saved_model']} (+ fp32 and int8 .tflite); verify_export passed")
    for artifact, line in exported["summary"].items():
        print(f"  {artifact}: {line}")
    return metrics


if __name__ == "__main__":
    sys.exit(run_cli(main))
