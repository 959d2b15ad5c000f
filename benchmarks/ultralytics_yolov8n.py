"""Train Ultralytics YOLOv8n from scratch on a YOLO-format set under a time budget; predict.

The comparison half of `bench_yolo.py --ultralytics-python PY`: it runs under another Python
(a virtual environment with `ultralytics` and PyTorch; the zoo does not depend on either), so it
imports neither TensorFlow nor the zoo. bench_yolo.py writes the data (the same train /
validation split its own COCO-JSON run uses), calls this script, and scores the detections it
writes with pycocotools beside the zoo's.

    python -m venv /tmp/ulvenv
    /tmp/ulvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 ultralytics onnx onnxruntime
    /tmp/ulvenv/bin/python benchmarks/ultralytics_yolov8n.py --data DIR/data.yaml \
        --val-list DIR/val.txt --minutes 10 --out DIR/ultralytics --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="Ultralytics data.yaml")
    parser.add_argument("--val-list", required=True, help="validation image paths, one per line")
    parser.add_argument("--minutes", type=float, default=10.0, help="training time budget")
    parser.add_argument("--imgsz", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (CPU cores used)")
    parser.add_argument("--model", default="yolov8n.yaml", help="architecture; no weights loaded")
    parser.add_argument("--out", required=True, help="folder for the run and detections.json")
    parser.add_argument(
        "--optimizer",
        default="SGD",
        help="Ultralytics optimizer (default SGD, lr0 0.01, momentum 0.937: YOLOv8's recipe and "
        "what 'auto' picked for long runs before Ultralytics 8.4 made it MuSGD, whose bfloat16 "
        "Newton-Schulz steps make a CPU training step many times slower; 'auto' to use it)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--conf",
        type=float,
        default=0.001,
        help="confidence threshold of the scored predictions (Ultralytics validates at 0.001)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("YOLO_OFFLINE", "1")  # nothing can be downloaded here

    import torch
    from ultralytics import YOLO

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = YOLO(args.model)  # a .yaml: built from scratch, random init
    start = time.perf_counter()
    model.train(
        data=args.data,
        imgsz=args.imgsz,
        epochs=1000,
        time=args.minutes / 60.0,  # hours; Ultralytics fits its LR schedule to this budget
        batch=args.batch,
        workers=args.threads,
        optimizer=args.optimizer,
        device="cpu",
        project=str(out),
        name="train",
        exist_ok=True,
        plots=False,
        val=False,
        amp=False,
        pretrained=False,
        seed=args.seed,
        verbose=False,
    )
    train_s = time.perf_counter() - start
    paths = [p for p in Path(args.val_list).read_text().splitlines() if p]
    detections = []
    for i in range(0, len(paths), 32):
        # Ultralytics' own validation settings: conf 0.001 (--conf), NMS IoU 0.7, 300 boxes at most
        for result in model.predict(
            paths[i : i + 32],
            imgsz=args.imgsz,
            conf=args.conf,
            iou=0.7,
            max_det=300,
            device="cpu",
            verbose=False,
        ):
            boxes = result.boxes
            detections.append(
                {
                    "boxes": boxes.xyxy.cpu().numpy().tolist(),
                    "scores": boxes.conf.cpu().numpy().tolist(),
                    "classes": boxes.cls.cpu().numpy().astype(int).tolist(),
                }
            )
    # batch-1 latency of the PyTorch model on one validation image (median of 50)
    model.predict(paths[0], imgsz=args.imgsz, device="cpu", verbose=False)
    times = []
    for _ in range(50):
        t0 = time.perf_counter()
        model.predict(paths[0], imgsz=args.imgsz, device="cpu", verbose=False)
        times.append(time.perf_counter() - t0)
    times.sort()
    epochs = getattr(getattr(model, "trainer", None), "epoch", None)
    onnx_ms = onnx_latency_ms(model, args.imgsz, args.threads)
    result = {
        "train_s": train_s,
        "epochs": None if epochs is None else int(epochs) + 1,
        "torch": torch.__version__,
        "threads": args.threads,
        "optimizer": args.optimizer,
        "latency_ms_torch_predict": 1000 * times[len(times) // 2],
        "latency_ms_onnxruntime": onnx_ms,
        "detections": detections,
    }
    (out / "detections.json").write_text(json.dumps(result))
    print(f"YOLOv8n: {len(detections)} images predicted -> {out / 'detections.json'}")
    return 0


def onnx_latency_ms(model, imgsz, threads, repeat=200):
    """Batch-1 latency of the model's ONNX export under ONNX Runtime (median of ``repeat``
    runs, ``threads`` intra-op threads; the raw head, NMS not included), or None without
    onnx / onnxruntime in this environment."""
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError:
        return None
    path = model.export(format="onnx", imgsz=imgsz, batch=1, dynamic=False, simplify=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    runner = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed = {runner.get_inputs()[0].name: np.random.default_rng(0).random((1, 3, imgsz, imgsz))}
    feed = {k: v.astype("float32") for k, v in feed.items()}
    for _ in range(20):
        runner.run(None, feed)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        runner.run(None, feed)
        times.append(time.perf_counter() - t0)
    return 1000 * sorted(times)[len(times) // 2]


if __name__ == "__main__":
    sys.exit(main())
