"""``python -m zoo predict MODEL INPUTS... --out DIR``: an exported model on image files.

One JSON per image (family, model, input, image size, results in the image's pixels) under
``--out`` at the image's relative name, and for detectors and landmark models a PNG with the
results drawn beside it. Unreadable images are skipped with a warning and listed at the end;
a wrong model path, a model that does not take images or no images at all end with one
``error:`` line and exit status 2 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from zoo.data.errors import DataError
from zoo.predict.images import (
    IMAGE_SUFFIXES,
    draw_detections,
    draw_landmarks,
    find_images,
    output_names,
    read_image,
)
from zoo.predict.models import load_predictor, resolve_model

__all__ = ["build_parser", "main", "run"]

DRAWN_FAMILIES = ("detection", "landmarks")
EPILOG = """\
examples:
  python -m zoo predict saved_models/yolo/1 photos/ --out predictions
  python -m zoo predict saved_models/yolo/1/model_fp32.tflite a.jpg b.png --score-threshold 0.7
  python -m zoo predict saved_models/landmarks faces/ --out faces_out   # highest version
  python -m zoo predict tower.keras gallery/ --out embeddings

The family comes from the model's outputs: detection (boxes, scores, classes; a PNG with the
boxes), landmarks (presence, points; a PNG with the points), embedding (a vector), classifier
(a vector of class scores named by manifest.json), or the raw outputs. Class names come from
manifest.json beside the model. Add --debug (or ZOO_DEBUG=1) for a traceback on errors.
See docs/predict.md.
"""


def _threshold(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite: {text!r}")
    return value


def build_parser():
    """The ``predict`` subcommand's argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m zoo predict",
        description="Run an exported zoo model (any family) on image files and folders; write "
        "one JSON per image (and a drawn PNG for detection and landmarks).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "model",
        metavar="MODEL",
        help="a SavedModel folder (a folder of numbered versions takes the highest), a .keras "
        "file or a .tflite file",
    )
    parser.add_argument(
        "inputs",
        metavar="INPUTS",
        nargs="+",
        help=f"image files and / or folders (searched recursively for {', '.join(IMAGE_SUFFIXES)})",
    )
    parser.add_argument(
        "--out",
        default="predictions",
        metavar="DIR",
        help="output folder: one .json (and .png) per image at its relative name "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--score-threshold",
        type=_threshold,
        default=None,
        metavar="T",
        help="detection: keep detections with score > T (default: what the model returns; an "
        "exported detector's own NMS threshold applies first, a .keras YOLO uses T as its NMS "
        "threshold)",
    )
    parser.add_argument(
        "--no-draw", action="store_true", help="write only the JSON files, no drawn PNGs"
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bar (the summary line stays)"
    )
    return parser


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_json(path, record):
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=2, default=_json_value, allow_nan=False)
    path.write_text(text + "\n")


def main(argv=None):
    """Parse ``argv``, predict every image, write the files; returns the summary dict."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    resolve_model(args.model)  # a wrong path is reported before anything heavy is imported
    images = find_images(args.inputs)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise DataError("exists and is not a folder", file=args.out, field="--out")

    predictor = load_predictor(args.model, score_threshold=args.score_threshold)
    import keras

    stems = output_names([relative for _, relative in images])
    # a live bar on a terminal, one line at the end in a log
    verbose = 1 if sys.stdout.isatty() else 2
    progress = (
        None if args.quiet else keras.utils.Progbar(len(images), verbose=verbose, unit_name="image")
    )
    written, drawn, skipped = [], 0, []
    for i, ((path, _), stem) in enumerate(zip(images, stems, strict=True)):
        try:
            pixels = read_image(path, predictor.channels)
        except DataError as error:
            print(f"warning: {error}; skipped", file=sys.stderr)
            skipped.append(str(path))
        else:
            results = predictor.predict(pixels, score_threshold=args.score_threshold)
            record = {
                "family": predictor.family,
                "model": str(args.model),
                "format": predictor.format,
                "input": str(path),
                "image_size": {"width": int(pixels.shape[1]), "height": int(pixels.shape[0])},
                "model_input_size": None
                if predictor.model_size is None
                else {"width": predictor.model_size[1], "height": predictor.model_size[0]},
            }
            if predictor.family == "detection":
                record["score_threshold"] = args.score_threshold
            record["results"] = results
            target = out / stem.parent / (stem.name + ".json")
            _write_json(target, record)
            written.append(target)
            if predictor.family in DRAWN_FAMILIES and not args.no_draw:
                if predictor.family == "detection":
                    picture = draw_detections(pixels, results)
                else:
                    picture = draw_landmarks(pixels, results["presence"], results["points"])
                picture.save(target.with_name(stem.name + ".png"))
                drawn += 1
        if progress is not None:
            progress.update(i + 1)
    if not written:
        raise DataError(
            f"none of the {len(images)} images could be decoded", file=", ".join(args.inputs)
        )
    line = (
        f"predicted {len(written)} images with {predictor.path} ({predictor.family}, "
        f"{predictor.format}): {len(written)} .json"
        + (f" + {drawn} .png" if drawn else "")
        + f" written to {out}"
    )
    if skipped:
        line += f"; {len(skipped)} skipped (cannot decode): {', '.join(skipped)}"
    print(line)
    return {"written": written, "drawn": drawn, "skipped": skipped, "family": predictor.family}


def run(argv=None):
    """``main`` behind ``zoo.training.cli.run_cli``: returns the exit status."""
    from zoo.training.cli import run_cli

    return run_cli(main, argv)
