"""zoo.detection: decoding + class-aware NMS vs NumPy, predict in pixels, exports with NMS."""

import math

import keras
import numpy as np
import pytest

from zoo.detection import (
    YoloDetections,
    build_yolo,
    decode_yolo_predictions,
    detection_model,
    predict,
    yolo_detections,
    yolo_outputs_fn,
)


def _logit(p):
    return math.log(p / (1.0 - p))


# === NumPy reference ===


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _np_candidates(raw, num_classes, boxes_per_cell=2, anchors=None, multi_label=False):
    """Per image: list of (box rel_xyxy, score, class), in cell / predictor / class order."""
    raw = np.asarray(raw, np.float64)
    S = raw.shape[1]
    P = boxes_per_cell if anchors is None else len(anchors)
    images = []
    for b in range(raw.shape[0]):
        cands = []
        for r in range(S):
            for c in range(S):
                for p in range(P):
                    if anchors is None:
                        t = raw[b, r, c, 5 * p : 5 * p + 5]
                        logits = raw[b, r, c, 5 * P :]
                        w, h = _sigmoid(t[2]) ** 2, _sigmoid(t[3]) ** 2
                    else:
                        t = raw[b, r, c, p, :5]
                        logits = raw[b, r, c, p, 5:]
                        w = anchors[p][0] * np.exp(min(t[2], 6.0))
                        h = anchors[p][1] * np.exp(min(t[3], 6.0))
                    x, y = (c + _sigmoid(t[0])) / S, (r + _sigmoid(t[1])) / S
                    box = np.clip([x - w / 2, y - h / 2, x + w / 2, y + h / 2], 0.0, 1.0)
                    probs = np.exp(logits - logits.max())
                    probs /= probs.sum()
                    scores = _sigmoid(t[4]) * probs
                    if multi_label:
                        cands.extend((box, scores[k], k) for k in range(num_classes))
                    else:
                        cands.append((box, scores.max(), int(scores.argmax())))
        images.append(cands)
    return images


def _np_iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _np_nms(cands, score_threshold, iou_threshold, max_out):
    """Per class: drop score <= t, keep the best, drop IoU >= t to it; merge by score."""
    kept = []
    for k in sorted({c[2] for c in cands}):
        pool = sorted(
            (c for c in cands if c[2] == k and c[1] > score_threshold), key=lambda c: -c[1]
        )
        while pool:
            best = pool.pop(0)
            kept.append(best)
            pool = [c for c in pool if _np_iou(best[0], c[0]) < iou_threshold]
    kept.sort(key=lambda c: -c[1])
    return kept[:max_out]


def _assert_matches_reference(out, reference, atol=1e-5):
    for i, expected in enumerate(reference):
        n = int(out["num_detections"][i])
        assert n == len(expected), f"image {i}: {n} detections, reference {len(expected)}"
        boxes = np.asarray(out["detection_boxes"][i])
        scores = np.asarray(out["detection_scores"][i])
        classes = np.asarray(out["detection_classes"][i])
        for j, (box, score, cls) in enumerate(expected):
            np.testing.assert_allclose(boxes[j], np.asarray(box)[[1, 0, 3, 2]], atol=atol)
            np.testing.assert_allclose(scores[j], score, atol=atol)
            assert classes[j] == cls
        assert np.all(scores[n:] == 0) and np.all(classes[n:] == -1) and np.all(boxes[n:] == 0)


# === Hand-made head output ===


def _hand_made_raw():
    """S = 2, B = 2, C = 2 (see the expected detections in the test)."""
    raw = np.zeros((1, 2, 2, 12), "float32")
    raw[..., 4] = raw[..., 9] = -10.0  # objectness ~ 0 everywhere unless set below
    # cell (row 0, col 0), predictor 0: centre (0.25, (0 + 0.98) / 2 = 0.49), w = h = 0.25,
    # objectness 0.9, classes (0.95, 0.05) -> score 0.855, class 0
    raw[0, 0, 0, 0:5] = [0.0, _logit(0.98), 0.0, 0.0, _logit(0.9)]
    raw[0, 0, 0, 10:12] = [math.log(19.0), 0.0]
    # cell (1, 0), predictor 0: centre (0.25, (1 + 0.02) / 2 = 0.51), objectness 0.8,
    # classes (0.05, 0.95) -> score 0.76, class 1; IoU with the box above 0.0575 / 0.0675 = 0.85
    # but another class: kept.
    raw[0, 1, 0, 0:5] = [0.0, _logit(0.02), 0.0, 0.0, _logit(0.8)]
    raw[0, 1, 0, 10:12] = [0.0, math.log(19.0)]
    # cell (1, 0), predictor 1: centre (0.275, 0.51), objectness 0.7 -> score 0.665, class 1;
    # IoU with predictor 0: 0.225 * 0.25 / (0.125 - 0.05625) = 0.818 >= 0.5: suppressed.
    raw[0, 1, 0, 5:10] = [_logit(0.55), _logit(0.02), 0.0, 0.0, _logit(0.7)]
    # cell (0, 1), predictor 0: centre (0.75, 0.25), objectness 0.7, classes (0.8, 0.2) ->
    # score 0.56 <= 0.6: dropped by the default threshold.
    raw[0, 0, 1, 0:5] = [0.0, 0.0, 0.0, 0.0, _logit(0.7)]
    raw[0, 0, 1, 10:12] = [math.log(4.0), 0.0]
    return raw


def test_hand_made_defaults():
    out = yolo_detections(_hand_made_raw(), num_classes=2, max_detections=5)
    assert out["detection_boxes"].shape == (1, 5, 4)
    assert float(out["num_detections"][0]) == 2
    # [ymin, xmin, ymax, xmax]: A y 0.49 -+ 0.125, x 0.25 -+ 0.125; B y 0.51 -+ 0.125
    np.testing.assert_allclose(
        out["detection_boxes"][0, :2],
        [[0.365, 0.125, 0.615, 0.375], [0.385, 0.125, 0.635, 0.375]],
        atol=1e-5,
    )
    np.testing.assert_allclose(out["detection_scores"][0, :2], [0.855, 0.76], atol=1e-5)
    np.testing.assert_array_equal(out["detection_classes"][0], [0, 1, -1, -1, -1])


def test_hand_made_thresholds_are_parameters():
    # score 0.5 lets the 0.56 box in; IoU 0.9 keeps the 0.818-overlap box.
    out = yolo_detections(
        _hand_made_raw(), 2, score_threshold=0.5, iou_threshold=0.9, box_format="rel_xyxy"
    )
    assert float(out["num_detections"][0]) == 4
    np.testing.assert_allclose(
        out["detection_scores"][0, :4], [0.855, 0.76, 0.665, 0.56], atol=1e-5
    )
    np.testing.assert_array_equal(out["detection_classes"][0, :4], [0, 1, 1, 0])
    np.testing.assert_allclose(
        out["detection_boxes"][0, 3], [0.625, 0.125, 0.875, 0.375], atol=1e-5
    )
    out = yolo_detections(_hand_made_raw(), 2, score_threshold=0.5, max_detections=1)
    assert out["detection_scores"].shape == (1, 1) and float(out["num_detections"][0]) == 1


@pytest.mark.parametrize("multi_label", [False, True])
@pytest.mark.parametrize(
    "anchors, shape",
    [(None, (3, 3, 3, 13)), ([(0.2, 0.3), (0.5, 0.4), (0.9, 0.9)], (3, 3, 3, 3, 8))],
)
def test_matches_numpy_reference(anchors, shape, multi_label):
    rng = np.random.default_rng(1)
    raw = rng.normal(0.0, 2.0, size=shape).astype("float32")
    for score_threshold, iou_threshold in ((0.05, 0.5), (0.3, 0.3), (0.6, 0.5)):
        out = yolo_detections(
            raw,
            3,
            boxes_per_cell=2,
            anchors=anchors,
            score_threshold=score_threshold,
            iou_threshold=iou_threshold,
            max_detections=40,
            multi_label=multi_label,
        )
        reference = [
            _np_nms(c, score_threshold, iou_threshold, 40)
            for c in _np_candidates(raw, 3, 2, anchors, multi_label)
        ]
        assert sum(len(r) for r in reference) > 0
        _assert_matches_reference({k: np.asarray(v) for k, v in out.items()}, reference)


def test_decode_candidates_shapes():
    raw = np.zeros((2, 3, 3, 13), "float32")
    boxes, scores, classes = decode_yolo_predictions(raw, 3)
    assert boxes.shape == (2, 18, 4) and scores.shape == (2, 18) and classes.shape == (2, 18)
    boxes, scores, classes = decode_yolo_predictions(raw, 3, multi_label=True)
    assert boxes.shape == (2, 54, 4)
    np.testing.assert_array_equal(classes[0, :6], [0, 1, 2, 0, 1, 2])
    np.testing.assert_allclose(scores, 0.5 / 3, rtol=1e-6)  # objectness 0.5 x P = 1/3


def test_bad_nms_arguments():
    with pytest.raises(ValueError, match="box_format='xyxy'"):
        yolo_detections(_hand_made_raw(), 2, box_format="xyxy")
    with pytest.raises(ValueError, match="iou_threshold=0"):
        YoloDetections(2, iou_threshold=0)
    with pytest.raises(ValueError, match="max_detections=0"):
        yolo_outputs_fn(
            build_yolo(2, (64, 64, 3), grid_size=1, width_multiplier=0.125), max_detections=0
        )


# === Models: predict, layer, detection model ===


SIZE = 128


@pytest.fixture(scope="module")
def tiny_model():
    """A 2 x 2 grid, 2 boxes per cell; head weights spread so scores are far from ties."""
    keras.utils.set_random_seed(3)
    model = build_yolo(
        3, (SIZE, SIZE, 3), grid_size=2, width_multiplier=0.125, head="conv", head_width=16
    )
    conv = model.get_layer("head_out_conv")
    rng = np.random.default_rng(0)
    conv.kernel.assign(rng.normal(0.0, 1.0, conv.kernel.shape).astype("float32"))
    conv.bias.assign(rng.normal(0.0, 1.0, conv.bias.shape).astype("float32"))
    return model


def _images(n, height=SIZE, width=SIZE, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, size=(n, height, width, 3)).astype("float32")


def test_predict_pixels_of_original_sizes(tiny_model):
    import tensorflow as tf

    images = [_images(1)[0], _images(1, 96, 160, seed=1)[0]]
    dets = predict(tiny_model, images, score_threshold=0.0, batch_size=1)
    assert len(dets) == 2
    for image, det in zip(images, dets, strict=True):
        resized = tf.image.resize(image, (SIZE, SIZE)) if image.shape[:2] != (SIZE, SIZE) else image
        ref = yolo_detections(
            tiny_model(resized[None]), 3, score_threshold=0.0, box_format="rel_xyxy"
        )
        n = int(ref["num_detections"][0])
        assert n > 0 and det["boxes"].shape == (n, 4) and det["classes"].dtype == np.int32
        h, w = image.shape[:2]
        np.testing.assert_allclose(
            det["boxes"], np.asarray(ref["detection_boxes"][0, :n]) * [w, h, w, h], atol=1e-3
        )
        np.testing.assert_allclose(det["scores"], ref["detection_scores"][0, :n], atol=1e-6)
        assert np.all(det["boxes"][:, 2] <= w + 1e-3) and np.all(det["boxes"][:, 3] <= h + 1e-3)
    # A batch array gives the same as the list; the default threshold keeps fewer or equal.
    batch = predict(tiny_model, np.stack([images[0], images[0]]), score_threshold=0.0)
    np.testing.assert_allclose(batch[1]["boxes"], dets[0]["boxes"], atol=1e-4)
    assert len(predict(tiny_model, images[0])[0]["scores"]) <= len(dets[0]["scores"])


def test_predict_needs_head_settings_for_plain_models():
    inputs = keras.Input((32, 32, 3))
    plain = keras.Model(inputs, keras.layers.Conv2D(13, 16, strides=16)(inputs))
    with pytest.raises(ValueError, match="pass num_classes"):
        predict(plain, np.zeros((1, 32, 32, 3)))
    out = predict(plain, np.zeros((1, 32, 32, 3)), num_classes=3, score_threshold=-1.0)
    assert len(out[0]["scores"]) >= 1


def test_detection_model_and_layer_config(tiny_model, tmp_path):
    detector = detection_model(tiny_model, score_threshold=0.0, max_detections=10)
    images = _images(2, seed=1)
    out = detector(images)
    assert set(out) == {
        "detection_boxes",
        "detection_scores",
        "detection_classes",
        "num_detections",
    }
    ref = yolo_detections(tiny_model(images), 3, score_threshold=0.0, max_detections=10)
    for key in out:
        np.testing.assert_allclose(np.asarray(out[key]), np.asarray(ref[key]), atol=1e-6)
    layer = detector.get_layer("detections")
    again = YoloDetections.from_config(layer.get_config())
    assert again.get_config() == layer.get_config()
    path = tmp_path / "detector.keras"
    detector.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        np.asarray(loaded(images)["detection_scores"]),
        np.asarray(out["detection_scores"]),
        atol=1e-6,
    )


# === Exports with decoding + NMS in the graph ===


@pytest.mark.slow
def test_saved_model_with_nms_round_trip(tiny_model, tmp_path):
    from zoo.export import export_saved_model, run_saved_model_subprocess

    fn = yolo_outputs_fn(tiny_model, score_threshold=0.0, max_detections=10)
    path = export_saved_model(
        tiny_model, tmp_path, "yolo", 1, outputs_fn=fn, class_names=["a", "b", "c"]
    )
    images = _images(2, seed=2)
    outputs, meta = run_saved_model_subprocess(path, {"images": images})
    assert meta["zoo_in_sys_modules"] is False
    ref = {k: np.asarray(v) for k, v in fn({"outputs": tiny_model(images)}).items()}
    assert set(outputs) == set(ref)
    for key in ref:
        np.testing.assert_allclose(outputs[key], ref[key], atol=1e-4, err_msg=key)
    # Another image size: the graph resizes, boxes stay normalised = predict()'s pixels / size.
    other = _images(1, 96, 160, seed=3)
    outputs, _ = run_saved_model_subprocess(path, {"images": other})
    det = predict(tiny_model, other, score_threshold=0.0, max_detections=10)[0]
    n = int(outputs["num_detections"][0])
    assert n == len(det["scores"]) > 0
    np.testing.assert_allclose(
        outputs["detection_boxes"][0, :n][:, [1, 0, 3, 2]] * [160, 96, 160, 96],
        det["boxes"],
        atol=1e-2,
    )


@pytest.mark.slow
def test_tflite_with_nms_builtin_ops_and_verify_export(tiny_model, tmp_path):
    import contextlib
    import io
    import re

    import tensorflow as tf

    from zoo.export import export_saved_model, export_tflite, run_tflite, verify_export

    images = _images(2, seed=4)
    fn = yolo_outputs_fn(tiny_model, score_threshold=0.0, max_detections=10)
    path = export_tflite(tiny_model, tmp_path / "yolo.tflite", outputs_fn=fn)
    # Every subgraph's ops (NMS sits inside the WHILE body of the per-image loop).
    listing = io.StringIO()
    with contextlib.redirect_stdout(listing):
        tf.lite.experimental.Analyzer.analyze(model_path=str(path))
    ops = set(re.findall(r"Op#\d+ (\w+)", listing.getvalue()))
    assert {"NON_MAX_SUPPRESSION_V5", "WHILE", "CONV_2D"} <= ops
    assert not any(name.startswith("Flex") or "CUSTOM" in name for name in ops)
    got = run_tflite(path, images)
    ref = {k: np.asarray(v) for k, v in fn({"outputs": tiny_model(images)}).items()}
    for key in ref:
        np.testing.assert_allclose(got[key], ref[key], atol=1e-4, err_msg=key)
    # The same through the detection model and verify_export (parity by output name).
    detector = detection_model(tiny_model, score_threshold=0.0, max_detections=10)
    saved = export_saved_model(detector, tmp_path / "sm", "yolo_det", 1)
    lite = export_tflite(detector, tmp_path / "det.tflite")
    report = verify_export(detector, images, saved_model_dir=saved, tflite_paths=[lite])
    assert report["ok"]
    assert report["tflite"][str(lite)]["outputs"]["detection_boxes"]["max_abs"] < 1e-4


@pytest.mark.slow
def test_batch_one_tflite_runs_nms_without_a_loop_and_int8_keeps_it_float(tiny_model, tmp_path):
    """Phones' files: a static batch of one has no WHILE loop, so int8 calibration sees NMS's
    inputs (a loop body is left uncalibrated and its scores and boxes were quantized blind)."""
    import contextlib
    import io
    import re

    import tensorflow as tf

    from zoo.export import export_tflite, verify_export

    def listing(path):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            tf.lite.experimental.Analyzer.analyze(model_path=str(path))
        return out.getvalue()

    images = _images(3, seed=5)
    phone = detection_model(tiny_model, batch_size=1, score_threshold=0.0, max_detections=10)
    lite = export_tflite(phone, tmp_path / "phone.tflite")
    text = listing(lite)
    assert "NON_MAX_SUPPRESSION_V5" in text and "WHILE" not in text
    assert "Subgraph#1" not in text
    # A batch-1 file is run one image at a time; it matches the any-batch Keras detector.
    detector = detection_model(tiny_model, score_threshold=0.0, max_detections=10)
    report = verify_export(detector, images, tflite_paths=[lite])
    assert report["ok"], report
    int8 = export_tflite(
        phone,
        tmp_path / "phone_int8.tflite",
        "int8",
        representative_dataset=_images(8, seed=6),
        float_layers=("detections",),
    )
    text = listing(int8)
    assert "WHILE" not in text
    nms_inputs = re.search(r"NON_MAX_SUPPRESSION_V5\((T#\d+), (T#\d+)", text).groups()
    for tensor in nms_inputs:  # boxes and scores reach NMS in float32
        assert re.search(rf"{tensor}\([^)]*\) shape[^\n]*type:FLOAT32", text), tensor
