"""zoo.detection.loss: target encoding and the YOLO loss, golden values computed by hand."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.detection import YoloLoss, encode_yolo_targets, yolo_loss, yolo_loss_terms

LN_1_5 = math.log(1.5)  # sigmoid(ln 1.5) = 0.6, sigmoid(-ln 1.5) = 0.4


# === Target encoding ===


def test_encode_v1_two_boxes_golden():
    # S = 2, C = 3. Box A [0.1, 0.1, 0.3, 0.5], label 2: centre (0.2, 0.3) -> floor(0.2 * 2) = 0,
    # floor(0.3 * 2) = 0 -> row 0, column 0. Box B [0.55, 0.6, 0.95, 0.8], label 0: centre
    # (0.75, 0.7) -> row 1, column 1. The third row is padding (label -1).
    boxes = [[[0.1, 0.1, 0.3, 0.5], [0.55, 0.6, 0.95, 0.8], [0.0, 0.0, 0.0, 0.0]]]
    labels = [[2, 0, -1]]
    target = encode_yolo_targets(boxes, labels, num_classes=3, grid_size=2).numpy()
    expected = np.zeros((1, 2, 2, 8), "float32")
    expected[0, 0, 0] = [0.1, 0.1, 0.3, 0.5, 1, 0, 0, 1]
    expected[0, 1, 1] = [0.55, 0.6, 0.95, 0.8, 1, 1, 0, 0]
    np.testing.assert_allclose(target, expected, atol=1e-7)


def test_encode_same_cell_larger_area_wins_in_any_order():
    # Both centres in cell (0, 0) of a 2 x 2 grid: the 0.4 x 0.4 box beats the 0.2 x 0.4 box.
    small = [0.1, 0.1, 0.3, 0.5]
    large = [0.05, 0.05, 0.45, 0.45]
    for boxes, labels in (([small, large], [2, 1]), ([large, small], [1, 2])):
        target = encode_yolo_targets([boxes], [labels], num_classes=3, grid_size=2).numpy()
        np.testing.assert_allclose(target[0, 0, 0], large + [1, 0, 1, 0], atol=1e-7)
        assert target[0, ..., 4].sum() == 1
    # Equal areas: the first in input order wins.
    first, second = [0.1, 0.1, 0.3, 0.3], [0.2, 0.2, 0.4, 0.4]
    target = encode_yolo_targets([[first, second]], [[0, 1]], 2, 2).numpy()
    np.testing.assert_allclose(target[0, 0, 0], first + [1, 1, 0], atol=1e-7)


def test_encode_anchor_assignment_golden():
    # Anchors a0 = (0.1, 0.1), a1 = (0.4, 0.2). Box 1: w = 0.4, h = 0.2 ->
    #   IoU(a0) = 0.1*0.1 / (0.08 + 0.01 - 0.01) = 0.125, IoU(a1) = 1 -> anchor 1.
    # Box 2: w = h = 0.12 -> IoU(a0) = 0.01 / 0.0144 = 0.694, IoU(a1) = 0.12*0.12 /
    #   (0.0144 + 0.08 - 0.0144) = 0.18 -> anchor 0. Both centres at (0.5, 0.5) -> cell (1, 1)
    #   of a 2 x 2 grid (floor(1.0) = 1): two boxes in one cell, different anchors, both kept.
    anchors = [(0.1, 0.1), (0.4, 0.2)]
    boxes = [[0.3, 0.4, 0.7, 0.6], [0.44, 0.44, 0.56, 0.56]]
    target = encode_yolo_targets(boxes, [1, 0], 2, 2, anchors=anchors).numpy()
    assert target.shape == (2, 2, 2, 7)
    np.testing.assert_allclose(target[1, 1, 1], boxes[0] + [1, 0, 1], atol=1e-7)
    np.testing.assert_allclose(target[1, 1, 0], boxes[1] + [1, 1, 0], atol=1e-7)
    assert target[..., 4].sum() == 2


def test_encode_absolute_pixels_and_clipping_match_relative():
    # xyxy pixels of a 100 (h) x 200 (w) image; the second box sticks out and is clipped.
    pixels = [[[20.0, 10.0, 60.0, 50.0], [150.0, 60.0, 260.0, 120.0]]]
    relative = [[[0.1, 0.1, 0.3, 0.5], [0.75, 0.6, 1.0, 1.0]]]
    a = encode_yolo_targets(pixels, [[0, 1]], 2, 4, box_format="xyxy", image_shape=(100, 200))
    b = encode_yolo_targets(relative, [[0, 1]], 2, 4)
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="box_format='xyxy' is absolute"):
        encode_yolo_targets(pixels, [[0, 1]], 2, 4, box_format="xyxy")
    with pytest.raises(ValueError, match="box_format='xyzw'"):
        encode_yolo_targets(pixels, [[0, 1]], 2, 4, box_format="xyzw")


def test_encode_in_tf_data_map_batched_and_unbatched():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 0.6, size=(6, 5, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0.05, 0.4, size=(6, 5, 2))], -1).astype("f4")
    labels = rng.integers(-1, 3, size=(6, 5)).astype("int32")
    eager = encode_yolo_targets(boxes, labels, 3, 4, anchors=[(0.1, 0.1), (0.3, 0.3)]).numpy()
    ds = tf.data.Dataset.from_tensor_slices((boxes, labels))
    unbatched = ds.map(lambda b, lab: encode_yolo_targets(b, lab, 3, 4, [(0.1, 0.1), (0.3, 0.3)]))
    batched = ds.batch(3).map(
        lambda b, lab: encode_yolo_targets(b, lab, 3, 4, [(0.1, 0.1), (0.3, 0.3)])
    )
    np.testing.assert_allclose(np.stack(list(unbatched.as_numpy_iterator())), eager)
    np.testing.assert_allclose(np.concatenate(list(batched.as_numpy_iterator())), eager)
    assert eager[..., 4].sum() <= (labels >= 0).sum()


def test_encode_rejects_label_out_of_range():
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_classes=3"):
        encode_yolo_targets([[0.1, 0.1, 0.2, 0.2]], [3], num_classes=3, grid_size=2)


# === Loss: a hand-made two-box example ===


def _two_box_example():
    """S = 2, B = 2, C = 2; raw output zeros except where noted.

    Raw zeros give, for every predictor: x = y = 0.5 (cell centre), sqrt(w) = sqrt(h) = 0.5
    (w = h = 0.25), objectness 0.5, class probabilities (0.5, 0.5).

    GT 1, class 0, box [0.22, 0.02, 0.38, 0.38]: centre (0.3, 0.2) -> cell (row 0, col 0),
      offsets x^ = 0.3*2 - 0 = 0.6, y^ = 0.2*2 - 0 = 0.4, w = 0.16 (sqrt 0.4), h = 0.36 (sqrt 0.6).
      Predictor 1 of that cell is shrunk: t_w = t_h = -ln 3 -> sqrt(w) = 1/4, w = h = 1/16.
    GT 2, class 1, box [0.62, 0.62, 0.98, 0.78]: centre (0.8, 0.7) -> cell (1, 1),
      x^ = 0.6, y^ = 0.4, w = 0.36 (sqrt 0.6), h = 0.16 (sqrt 0.4). Predictor 1 of that cell
      predicts it exactly (t = +-ln 1.5 -> 0.6 / 0.4) with objectness 0.8 (t_o = ln 4), and
      the cell's class logits (0, ln 3) give probabilities (1/4, 3/4).
    """
    raw = np.zeros((1, 2, 2, 12), "float32")
    raw[0, 0, 0, 7:9] = -math.log(3.0)  # cell (0, 0), predictor 1: t_w, t_h
    raw[0, 1, 1, 5:10] = [LN_1_5, -LN_1_5, LN_1_5, -LN_1_5, math.log(4.0)]
    raw[0, 1, 1, 10:12] = [0.0, math.log(3.0)]
    boxes = [[[0.22, 0.02, 0.38, 0.38], [0.62, 0.62, 0.98, 0.78]]]
    target = encode_yolo_targets(boxes, [[0, 1]], num_classes=2, grid_size=2)
    return target, raw


# IoUs of cell (0, 0) with GT 1 [0.22, 0.02, 0.38, 0.38] (area 0.16 * 0.36 = 0.0576):
#   predictor 0 [0.125, 0.125, 0.375, 0.375]: overlap (0.375 - 0.22) x (0.375 - 0.125)
#     = 0.155 * 0.25 = 0.03875, union 0.0625 + 0.0576 - 0.03875 = 0.08135 -> IoU = 775/1627
#   predictor 1 [0.21875, 0.21875, 0.28125, 0.28125]: overlap 0.06125 * 0.0625 = 0.003828125,
#     union 0.00390625 + 0.0576 - 0.003828125 = 0.057678125 -> IoU 0.0664 -> predictor 0 wins.
# Cell (1, 1): predictor 1 equals GT 2 (IoU 1); predictor 0 [0.625, 0.625, 0.875, 0.875] has
#   IoU 0.03875 / 0.08135 (the mirror image of the above) -> predictor 1 is responsible.
IOU_1 = 775.0 / 1627.0


def test_loss_two_box_golden_mse():
    target, raw = _two_box_example()
    terms = {k: np.asarray(v) for k, v in yolo_loss_terms(target, raw, num_classes=2).items()}
    expected_responsible = np.zeros((1, 2, 2, 2))
    expected_responsible[0, 0, 0, 0] = expected_responsible[0, 1, 1, 1] = 1
    np.testing.assert_array_equal(terms["responsible"], expected_responsible)
    # coord: cell (0, 0), predictor 0: (0.5 - 0.6)^2 + (0.5 - 0.4)^2 + (0.5 - 0.4)^2
    #   + (0.5 - 0.6)^2 = 0.04; cell (1, 1) predictor 1 exact: 0 -> 5 * 0.04 = 0.2
    np.testing.assert_allclose(terms["coord"], [0.2], rtol=1e-5)
    # object: (0.5 - 775/1627)^2 + (0.8 - 1)^2 = 0.000559947 + 0.04
    np.testing.assert_allclose(terms["object"], [(0.5 - IOU_1) ** 2 + 0.04], rtol=1e-5)
    # no object: 8 predictors - 2 responsible = 6, each 0.5^2 -> 0.5 * 6 * 0.25 = 0.75
    np.testing.assert_allclose(terms["noobject"], [0.75], rtol=1e-6)
    # class: cell (0, 0) (0.5 - 1)^2 + (0.5 - 0)^2 = 0.5; cell (1, 1) (1/4)^2 + (3/4 - 1)^2
    #   = 0.125 -> 0.625
    np.testing.assert_allclose(terms["class"], [0.625], rtol=1e-6)
    total = yolo_loss(target, raw, num_classes=2)
    np.testing.assert_allclose(total, [0.2 + (0.5 - IOU_1) ** 2 + 0.04 + 0.75 + 0.625], rtol=1e-5)
    # The Loss class (mean over a batch of one) gives the same number.
    value = YoloLoss(num_classes=2, grid_size=2)(target, raw)
    np.testing.assert_allclose(float(value), 1.6155599, rtol=1e-5)


def test_loss_two_box_golden_giou_bce_ce():
    target, raw = _two_box_example()
    # GIoU of cell (0, 0) predictor 0 with GT 1: enclosing box [0.125, 0.02, 0.38, 0.38] has
    #   area 0.255 * 0.36 = 0.0918 -> GIoU = 775/1627 - (0.0918 - 0.08135) / 0.0918;
    #   predictor 1 of cell (1, 1) is exact (GIoU 1).
    giou = IOU_1 - (0.0918 - 0.08135) / 0.0918
    terms = yolo_loss_terms(target, raw, 2, box_loss="giou", objectness_loss="bce", class_loss="ce")
    np.testing.assert_allclose(terms["coord"], [5.0 * (1.0 - giou)], rtol=1e-5)
    # BCE: predictor (0, 0, 0): logit 0, target t = 775/1627 -> -(t ln 0.5 + (1 - t) ln 0.5)
    #   = ln 2; predictor (1, 1, 1): logit ln 4 (p = 0.8), target 1 -> -ln 0.8.
    np.testing.assert_allclose(terms["object"], [math.log(2) - math.log(0.8)], rtol=1e-5)
    # no object: 6 predictors with logit 0 -> 0.5 * 6 * ln 2
    np.testing.assert_allclose(terms["noobject"], [3.0 * math.log(2)], rtol=1e-5)
    # CE: cell (0, 0): -ln 0.5; cell (1, 1): -ln 0.75
    np.testing.assert_allclose(terms["class"], [-math.log(0.5) - math.log(0.75)], rtol=1e-5)
    one = yolo_loss_terms(target, raw, 2, objectness_target="one")
    np.testing.assert_allclose(one["object"], [0.25 + 0.04], rtol=1e-5)


def test_loss_anchor_golden():
    # S = 1, anchors a0 = (0.2, 0.2), a1 = (0.5, 0.25), C = 2. GT [0.3, 0.4, 0.7, 0.6], class 1:
    #   w = 0.4, h = 0.2; shape IoU with a0 = 0.04 / 0.08 = 0.5, with a1 = 0.08 / 0.125 = 0.64
    #   -> anchor 1 responsible. Raw zeros: predictor 1 is the anchor at the centre,
    #   [0.25, 0.375, 0.75, 0.625], which contains the GT -> IoU 0.08 / 0.125 = 0.64.
    anchors = [(0.2, 0.2), (0.5, 0.25)]
    target = encode_yolo_targets([[0.3, 0.4, 0.7, 0.6]], [1], 2, 1, anchors=anchors)[None]
    raw = np.zeros((1, 1, 1, 2, 7), "float32")
    terms = {k: np.asarray(v) for k, v in yolo_loss_terms(target, raw, 2, anchors=anchors).items()}
    # coord: x, y exact (0.5 = 0.5); t_w = 0 vs ln(0.4/0.5), t_h = 0 vs ln(0.2/0.25):
    #   5 * 2 * (ln 0.8)^2 = 0.49793
    np.testing.assert_allclose(terms["coord"], [10.0 * math.log(0.8) ** 2], rtol=1e-5)
    np.testing.assert_allclose(terms["object"], [(0.5 - 0.64) ** 2], rtol=1e-5)
    np.testing.assert_allclose(terms["noobject"], [0.5 * 0.25], rtol=1e-6)  # anchor 0
    np.testing.assert_allclose(terms["class"], [0.5], rtol=1e-6)  # (0.5-0)^2 + (0.5-1)^2
    np.testing.assert_array_equal(terms["responsible"], [[[[0.0, 1.0]]]])


@pytest.mark.parametrize("box_loss", ["mse", "giou", "diou", "ciou"])
@pytest.mark.parametrize("anchors", [None, [(0.1, 0.1), (0.4, 0.3)]])
def test_loss_and_gradients_finite_for_empty_and_extreme(box_loss, anchors):
    num_boxes = 2
    shape = (2, 3, 3, 5 * num_boxes + 4) if anchors is None else (2, 3, 3, 2, 9)
    raw = tf.Variable(np.random.default_rng(0).normal(0, 30, size=shape).astype("float32"))
    boxes = [[[0.0, 0.0, 1.0, 1.0], [0.5, 0.5, 0.5001, 0.5001]], [[0, 0, 0, 0], [0, 0, 0, 0]]]
    target = encode_yolo_targets(boxes, [[0, 3], [-1, -1]], 4, 3, anchors=anchors)
    loss = YoloLoss(4, 3, anchors=anchors, box_loss=box_loss)
    with tf.GradientTape() as tape:
        value = loss(target, raw)
    grad = tape.gradient(value, raw)
    assert np.isfinite(float(value)) and float(value) > 0
    assert np.all(np.isfinite(grad.numpy()))


def test_loss_config_round_trip_and_errors():
    loss = YoloLoss(3, 7, anchors=[(0.1, 0.2), (0.3, 0.3)], box_loss="ciou", lambda_noobj=0.25)
    config = loss.get_config()
    again = YoloLoss.from_config(config)
    assert json.dumps(again.get_config(), sort_keys=True) == json.dumps(config, sort_keys=True)
    assert again.boxes_per_cell == 2 and again.anchors == [[0.1, 0.2], [0.3, 0.3]]
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, YoloLoss) and restored.box_loss == "ciou"
    with pytest.raises(ValueError, match="box_loss='iou'"):
        YoloLoss(3, 7, box_loss="iou")
    with pytest.raises(ValueError, match="boxes_per_cell=3"):
        YoloLoss(3, 7, boxes_per_cell=3, anchors=[(0.1, 0.1)])
    with pytest.raises(ValueError, match="grid_size=7"):
        YoloLoss(3, 7)(np.zeros((1, 2, 2, 8)), np.zeros((1, 2, 2, 13), "float32"))
    with pytest.raises(ValueError, match=r"y_true.shape=\(1, 2, 2, 9\)"):
        yolo_loss(np.zeros((1, 2, 2, 9)), np.zeros((1, 2, 2, 13), "float32"), 3)


def test_encode_method_matches_function():
    loss = YoloLoss(2, 2, anchors=[(0.2, 0.2)])
    boxes, labels = [[10.0, 20.0, 30.0, 60.0]], [1]
    np.testing.assert_array_equal(
        loss.encode(boxes, labels, "xyxy", (100, 100)).numpy(),
        encode_yolo_targets(boxes, labels, 2, 2, [(0.2, 0.2)], "xyxy", (100, 100)).numpy(),
    )


def test_ignore_iou_spares_a_well_placed_non_responsible_predictor():
    # S = 2, anchors 0.2 and 0.3; one truth centred in cell (0, 0) with the first anchor's shape.
    anchors = [(0.2, 0.2), (0.3, 0.3)]
    truth = encode_yolo_targets([[[0.15, 0.15, 0.35, 0.35]]], [[0]], 1, 2, anchors=anchors)
    raw = np.zeros((1, 2, 2, 2, 6), "float32")  # every logit 0: sigmoid 0.5, objectness 0.5
    raw[0, 0, 0, 1, 2:4] = np.log(0.2 / 0.3)  # anchor 1 also decodes exactly onto the truth
    kwargs = dict(anchors=anchors, objectness_loss="bce", lambda_noobj=0.5)
    plain = yolo_loss_terms(truth, raw, 1, **kwargs)
    spared = yolo_loss_terms(truth, raw, 1, ignore_iou=0.5, **kwargs)
    # only anchor 1 of cell (0, 0) leaves the no-object sum: 0.5 * BCE(0, logit 0) = 0.5 log 2
    np.testing.assert_allclose(
        plain["noobject"].numpy() - spared["noobject"].numpy(), [0.5 * np.log(2.0)], rtol=1e-5
    )
    for term in ("coord", "object", "class"):
        np.testing.assert_allclose(plain[term].numpy(), spared[term].numpy())
    with pytest.raises(ValueError, match="ignore_iou"):
        YoloLoss(1, 2, anchors=anchors, ignore_iou=1.5)
    assert YoloLoss(1, 2, anchors=anchors, ignore_iou=0.6).get_config()["ignore_iou"] == 0.6


def _numpy_iou(a, b):
    """(N, 4) x (M, 4) rel_xyxy -> (N, M) IoU."""
    lo, hi = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=-1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def test_ignore_iou_mask_matches_numpy_on_uneven_batches():
    # Three images with 3, 0 and 1 truths: the loss compares predictors only with the occupied
    # target slots; the result must equal the all-pairs NumPy rule (empty image: nothing spared).
    anchors = [(0.2, 0.2), (0.35, 0.3)]
    boxes = np.array(
        [
            [[0.1, 0.1, 0.3, 0.3], [0.5, 0.4, 0.9, 0.7], [0.6, 0.1, 0.8, 0.35]],
            [[0, 0, 0, 0]] * 3,
            [[0.2, 0.5, 0.55, 0.8], [0, 0, 0, 0], [0, 0, 0, 0]],
        ],
        "float32",
    )
    labels = np.array([[0, 1, 0], [-1, -1, -1], [1, -1, -1]], "int32")
    truth = encode_yolo_targets(boxes, labels, 2, 4, anchors=anchors, anchor_iou_threshold=0.3)
    raw = np.random.default_rng(0).normal(0, 1.0, (3, 4, 4, 2, 7)).astype("float32")
    kwargs = dict(anchors=anchors, objectness_loss="bce")
    terms = yolo_loss_terms(truth, raw, 2, ignore_iou=0.3, **kwargs)
    plain = yolo_loss_terms(truth, raw, 2, **kwargs)
    from zoo.detection.grid import decode_yolo_grid

    pred = decode_yolo_grid(raw, 2, anchors=anchors)["boxes"].numpy().reshape(3, -1, 4)
    logits = raw[..., 4].reshape(3, -1)
    noobj_bce = np.log1p(np.exp(logits))  # BCE toward 0 from logits
    responsible = truth.numpy()[..., 4].reshape(3, -1)
    for i in range(3):
        real = boxes[i][labels[i] >= 0]
        spared = (_numpy_iou(pred[i], real).max(axis=1) > 0.3) if len(real) else np.zeros(32, bool)
        mask = (1 - responsible[i]) * (1 - spared)
        np.testing.assert_allclose(terms["noobject"][i], 0.5 * (mask * noobj_bce[i]).sum(), 1e-5)
    assert terms["noobject"][1] == plain["noobject"][1]
    assert np.all(terms["noobject"].numpy() <= plain["noobject"].numpy() + 1e-6)


def test_anchor_iou_threshold_makes_every_matching_anchor_responsible():
    anchors = [(0.2, 0.2), (0.22, 0.22), (0.5, 0.5)]
    box = [[[0.3, 0.3, 0.5, 0.5]]]  # 0.2 x 0.2, centre (0.4, 0.4): cell (0, 0) of S = 2
    one = encode_yolo_targets(box, [[1]], 2, 2, anchors=anchors)
    many = encode_yolo_targets(box, [[1]], 2, 2, anchors=anchors, anchor_iou_threshold=0.5)
    # shape IoU: anchor 0 -> 1, anchor 1 -> 0.04 / 0.0484 = 0.826, anchor 2 -> 0.16
    np.testing.assert_array_equal(one[0, 0, 0, :, 4].numpy(), [1, 0, 0])
    np.testing.assert_array_equal(many[0, 0, 0, :, 4].numpy(), [1, 1, 0])
    np.testing.assert_allclose(many[0, 0, 0, 1].numpy(), [0.3, 0.3, 0.5, 0.5, 1, 0, 1])
    assert float(tf.reduce_sum(many[..., 4])) == 2.0


def test_a_truths_best_anchor_beats_another_truths_secondary_match():
    anchors = [(0.26, 0.26), (0.24, 0.24)]
    # A: 0.24 x 0.24, best anchor 1. B: 0.26 x 0.26 (larger), best anchor 0, and anchor 1 as a
    # secondary match (shape IoU 0.0576 / 0.0676 = 0.85). Same cell (0, 0) of S = 2. By area
    # alone B would take anchor 1 too; a best-anchor claim outranks it, so A keeps anchor 1.
    boxes = [[[0.1, 0.1, 0.34, 0.34], [0.1, 0.1, 0.36, 0.36]]]
    t = encode_yolo_targets(boxes, [[0, 1]], 2, 2, anchors=anchors, anchor_iou_threshold=0.5)
    np.testing.assert_allclose(t[0, 0, 0, 1, :4].numpy(), [0.1, 0.1, 0.34, 0.34])
    np.testing.assert_allclose(t[0, 0, 0, 0, :4].numpy(), [0.1, 0.1, 0.36, 0.36])
    loss = YoloLoss(2, 2, anchors=anchors, anchor_iou_threshold=0.5)
    np.testing.assert_allclose(loss.encode(boxes, [[0, 1]]).numpy(), t.numpy())
    assert loss.get_config()["anchor_iou_threshold"] == 0.5


def test_neighbour_cells_assign_the_two_nearest_cells_golden():
    anchors = [(0.2, 0.2), (0.5, 0.5)]
    # centre (0.3, 0.3), S = 4: cell (row 1, col 1), offsets 0.2 / 0.2 -> left and upper cells
    t = encode_yolo_targets(
        [[[0.2, 0.2, 0.4, 0.4]]], [[1]], 2, 4, anchors=anchors, neighbour_cells=True
    ).numpy()
    assert np.argwhere(t[0, ..., 4] > 0).tolist() == [[0, 1, 0], [1, 0, 0], [1, 1, 0]]
    for r, c in ((0, 1), (1, 0), (1, 1)):  # the same box and class everywhere
        np.testing.assert_allclose(t[0, r, c, 0], [0.2, 0.2, 0.4, 0.4, 1, 0, 1], atol=1e-7)
    # in the corner cell both neighbours fall outside the grid
    t = encode_yolo_targets(
        [[[0.0, 0.0, 0.2, 0.2]]], [[0]], 2, 4, anchors=anchors, neighbour_cells=True
    ).numpy()
    assert np.argwhere(t[0, ..., 4] > 0).tolist() == [[0, 0, 0]]
    # B's centre cell is A's right neighbour: the centre assignment wins the slot
    t = encode_yolo_targets(
        [[[0.3, 0.05, 0.45, 0.2], [0.55, 0.05, 0.7, 0.2]]],
        [[0, 1]],
        2,
        4,
        anchors=anchors,
        neighbour_cells=True,
    ).numpy()
    assert np.argwhere(t[0, ..., 4] > 0).tolist() == [
        [0, 1, 0],
        [0, 2, 0],
        [0, 3, 0],
        [1, 1, 0],
        [1, 2, 0],
    ]
    np.testing.assert_array_equal(t[0, 0, 1, 0, 5:], [1, 0])
    np.testing.assert_array_equal(t[0, 0, 2, 0, 5:], [0, 1])
    # without the option the same boxes use their centre cells only
    plain = encode_yolo_targets([[[0.2, 0.2, 0.4, 0.4]]], [[1]], 2, 4, anchors=anchors).numpy()
    assert np.argwhere(plain[0, ..., 4] > 0).tolist() == [[1, 1, 0]]


def test_neighbour_cells_needs_anchors_and_xy_scale_2():
    with pytest.raises(ValueError, match="neighbour_cells"):
        encode_yolo_targets([[[0.2, 0.2, 0.4, 0.4]]], [[0]], 2, 4, neighbour_cells=True)
    with pytest.raises(ValueError, match="xy_scale >= 2"):
        YoloLoss(2, 4, anchors=[(0.2, 0.2)], neighbour_cells=True)
    with pytest.raises(ValueError, match="xy_scale"):
        YoloLoss(2, 4, anchors=[(0.2, 0.2)], xy_scale=0.5)
    loss = YoloLoss(2, 4, anchors=[(0.2, 0.2)], xy_scale=2.0, neighbour_cells=True)
    again = YoloLoss.from_config(json.loads(json.dumps(loss.get_config())))
    assert again.xy_scale == 2.0 and again.neighbour_cells


def test_xy_scale_2_lets_a_neighbour_cell_fit_the_centre():
    # S = 4, one anchor equal to the box: the left neighbour (row 1, col 0) must put the centre
    # 0.3 * 4 = 1.2 cells from the grid origin, offset 1.2 from its corner: sigmoid(t) = 0.85
    # with 2 sigmoid - 0.5 (impossible with plain sigmoid, whose offsets stay below 1).
    anchors = [(0.2, 0.2)]
    truth = encode_yolo_targets(
        [[[0.2, 0.2, 0.4, 0.4]]], [[0]], 1, 4, anchors=anchors, neighbour_cells=True
    )
    raw = np.zeros((1, 4, 4, 1, 6), "float32")
    logit = math.log(0.85 / 0.15)
    raw[0, 1, 0, 0, 0] = logit  # x: 2 * 0.85 - 0.5 = 1.2 -> column 0 + 1.2
    raw[0, 1, 0, 0, 1] = math.log(0.35 / 0.65)  # y: 2 * 0.35 - 0.5 = 0.2 -> row 1 + 0.2 = 1.2
    terms = yolo_loss_terms(truth, raw, 1, anchors=anchors, box_loss="giou", xy_scale=2.0)
    from zoo.detection.grid import decode_yolo_grid

    box = decode_yolo_grid(raw, 1, anchors=anchors, xy_scale=2.0)["boxes"][0, 1, 0, 0].numpy()
    np.testing.assert_allclose(box, [0.2, 0.2, 0.4, 0.4], atol=1e-6)
    assert terms["responsible"][0, 1, 0, 0] == 1
    one = decode_yolo_grid(raw, 1, anchors=anchors)["boxes"][0, 1, 0, 0].numpy()
    np.testing.assert_allclose((one[0] + one[2]) / 2 * 4, 0.85, atol=1e-6)  # plain: 0 + 0.85
