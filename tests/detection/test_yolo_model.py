"""zoo.detection.model / backbones: shapes, errors, .keras round trip, one training step."""

import json
import math

import keras
import numpy as np
import pytest

from zoo.backbones import BACKBONE_STRIDES, build_backbone
from zoo.detection import YOLO, YoloLoss, build_yolo, encode_yolo_targets


def _images(n, size, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, size=(n, size, size, 3)).astype("float32")


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        # YOLOv1 head, the paper's FC layers, Fast YOLO backbone (stride 64): 64 -> 1 x 1
        (dict(input_shape=(64, 64, 3), grid_size=1, width_multiplier=0.25), (1, 1, 13)),
        # v1 head, conv variant, 3 boxes per cell
        (
            dict(
                input_shape=(128, 128, 3),
                grid_size=2,
                boxes_per_cell=3,
                head="conv",
                width_multiplier=0.25,
            ),
            (2, 2, 18),
        ),
        # the paper's 24-conv backbone, thin and shallow
        (
            dict(
                input_shape=(128, 128, 3),
                grid_size=2,
                backbone="yolov1",
                width_multiplier=0.125,
                depth_multiplier=0.5,
                head_width=64,
            ),
            (2, 2, 13),
        ),
        # anchor head on the YOLO net
        (
            dict(
                input_shape=(128, 128, 3),
                grid_size=2,
                width_multiplier=0.25,
                anchors=[(0.1, 0.1), (0.3, 0.2), (0.6, 0.6)],
            ),
            (2, 2, 3, 8),
        ),
        # Keras applications backbones (stride 32)
        (
            dict(
                input_shape=(64, 64, 3),
                grid_size=2,
                backbone="mobilenet_v3_small",
                width_multiplier=0.5,
                anchors=[(0.2, 0.2), (0.5, 0.5)],
            ),
            (2, 2, 2, 8),
        ),
        (
            dict(
                input_shape=(96, 96, 3),
                grid_size=3,
                backbone="mobilenet_v2",
                width_multiplier=0.35,
                head="conv",
            ),
            (3, 3, 13),
        ),
    ],
)
def test_output_shapes(kwargs, expected):
    model = build_yolo(3, **kwargs)
    assert isinstance(model, YOLO) and isinstance(model, keras.Model)
    assert model.output_shape == (None,) + expected
    size = kwargs["input_shape"][0]
    out = model(_images(2, size), training=False)
    assert tuple(out.shape) == (2,) + expected
    assert np.all(np.isfinite(np.asarray(out)))


def test_mobilenet_v3_large_shape():
    model = build_yolo(
        2,
        (96, 96, 3),
        grid_size=3,
        backbone="mobilenet_v3_large",
        width_multiplier=0.75,
        head="conv",
        head_width=32,
    )
    assert model.output_shape == (None, 3, 3, 12)


def test_paper_backbones_structure():
    # YOLOv1: 24 conv layers, stride 64 (448 -> 7); Fast YOLO: 9 conv layers.
    for name, convs, channels in (("yolov1", 24, 128), ("yolov1_fast", 9, 32)):
        backbone = build_backbone(name, (448, 448, 3), width_multiplier=0.125)
        conv_layers = [layer for layer in backbone.layers if isinstance(layer, keras.layers.Conv2D)]
        assert len(conv_layers) == convs
        assert backbone.output_shape == (None, 7, 7, channels)
        assert BACKBONE_STRIDES[name] == 64
    # depth_multiplier scales the repeated pairs: 4 -> 2 and 2 -> 1 pairs: 24 - 2*2 - 1*2 = 18.
    thin = build_backbone("yolov1", (128, 128, 3), width_multiplier=0.125, depth_multiplier=0.5)
    assert sum(isinstance(layer, keras.layers.Conv2D) for layer in thin.layers) == 18
    # The paper's filters: the first conv is 7x7x64 at width 1.
    first = [
        layer
        for layer in build_backbone("yolov1", (64, 64, 3)).layers
        if isinstance(layer, keras.layers.Conv2D)
    ][0]
    assert first.kernel_size == (7, 7) and first.filters == 64 and first.strides == (2, 2)


def test_paper_head_layout_and_objectness_prior():
    # 448 x 448, S = 7, B = 2, C = 20 -> 7 x 7 x 30 (the paper's tensor); FC width 4096 * w.
    model = build_yolo(20, width_multiplier=0.125)
    assert model.output_shape == (None, 7, 7, 30)
    assert model.get_layer("head_fc1").units == 512
    # Objectness biases (channels 4 and 9 of every cell) start at logit(0.1), the rest at 0.
    bias = model.get_layer("head_fc2").bias.numpy().reshape(7, 7, 30)
    prior = math.log(0.1 / 0.9)
    np.testing.assert_allclose(bias[..., [4, 9]], prior, rtol=1e-6)
    assert np.all(np.delete(bias, [4, 9], axis=-1) == 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(backbone="resnet9000"), "backbone='resnet9000'"),
        (dict(grid_size=7), r"grid_size=7 does not match input_shape=\(64, 64, 3\).*stride 64"),
        (dict(input_shape=(100, 100, 3)), r"1.5625 x 1.5625.*grid_size \* stride"),
        (dict(color="red"), "color='red'"),
        (dict(anchors=[(10, 20)]), r"anchors=\[\(10, 20\)\]"),
        (dict(anchors=[(0.1, 0.1)], head="fc"), "head='fc'"),
        (dict(anchors=[(0.1, 0.1)], boxes_per_cell=2), "boxes_per_cell=2"),
        (dict(head="dense"), "head='dense'"),
        (dict(width_multiplier=0), "width_multiplier=0"),
        (
            dict(backbone="mobilenet_v3_small", grid_size=2, depth_multiplier=2.0),
            "depth_multiplier=2.0",
        ),
        (
            dict(backbone="mobilenet_v3_small", grid_size=2, backbone_weights="/no/such.h5"),
            "backbone_weights='/no/such.h5'",
        ),
        (dict(input_shape=(64, 64, 1)), r"input_shape=\(64, 64, 1\)"),
        (dict(dropout=1.0), "dropout=1.0"),
    ],
)
def test_bad_arguments_raise_with_value(kwargs, match):
    base = dict(num_classes=3, input_shape=(64, 64, 3), grid_size=1, width_multiplier=0.25)
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        build_yolo(**base)
    with pytest.raises(ValueError, match="num_classes=0"):
        build_yolo(0, (64, 64, 3), grid_size=1)


@pytest.mark.parametrize("anchors", [None, [(0.1, 0.2), (0.5, 0.4)]])
def test_keras_round_trip(tmp_path, anchors):
    model = build_yolo(
        3, (128, 128, 3), grid_size=2, anchors=anchors, width_multiplier=0.25, head_width=64
    )
    images = _images(2, 128)
    before = np.asarray(model(images, training=False))
    path = tmp_path / "yolo.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, YOLO)
    assert json.dumps(loaded.get_config(), sort_keys=True) == json.dumps(
        model.get_config(), sort_keys=True
    )
    assert loaded.anchors == model.anchors and loaded.num_classes == 3
    np.testing.assert_allclose(np.asarray(loaded(images, training=False)), before, atol=1e-5)


@pytest.mark.parametrize(
    "anchors, box_loss",
    [(None, "mse"), ([(0.15, 0.15), (0.4, 0.3)], "ciou")],
)
def test_one_training_step_with_fit(anchors, box_loss):
    model = build_yolo(
        2, (128, 128, 3), grid_size=2, anchors=anchors, width_multiplier=0.125, head_width=32
    )
    boxes = np.array([[[8, 8, 60, 56], [68, 60, 120, 124]]] * 4, "float32")
    labels = np.array([[0, 1]] * 4, "int32")
    loss = YoloLoss(2, 2, anchors=anchors, box_loss=box_loss)
    targets = encode_yolo_targets(boxes, labels, 2, 2, anchors, "xyxy", (128, 128))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss)
    weights_before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(_images(4, 128), targets, batch_size=2, epochs=1, verbose=0)
    value = history.history["loss"][0]
    assert np.isfinite(value) and value > 0
    changed = [
        not np.array_equal(a, b.numpy())
        for a, b in zip(weights_before, model.trainable_weights, strict=True)
    ]
    assert all(changed)


@pytest.mark.parametrize("grid_size", [2, 4, 8, 16])
def test_yolo_nets_drop_down_sampling_to_reach_finer_grids(grid_size):
    model = build_yolo(
        2, (128, 128, 3), grid_size=grid_size, anchors=[(0.2, 0.2)], width_multiplier=0.125
    )
    assert model.output_shape == (None, grid_size, grid_size, 1, 7)
    pools = [layer for layer in model.get_layer("backbone").layers if "pool" in layer.name]
    assert len(pools) == {2: 6, 4: 5, 8: 4, 16: 3}[grid_size]


def test_darknet_nano_is_stride_8_with_a_top_down_merge(tmp_path):
    backbone = build_backbone("darknet_nano", (64, 64, 3), width_multiplier=0.25)
    assert BACKBONE_STRIDES["darknet_nano"] == 8 and backbone.output_shape == (None, 8, 8, 32)
    convs = [layer for layer in backbone.layers if isinstance(layer, keras.layers.Conv2D)]
    assert not any(layer.output.shape[1] == 64 for layer in convs)  # nothing at full resolution
    assert convs[0].strides == (2, 2)
    merge = backbone.get_layer("nano_merge")  # /8 features + upsampled /16 features
    assert [tuple(t.shape[1:3]) for t in merge.input] == [(8, 8), (8, 8)]
    # depth_multiplier scales the residual blocks: 1 + 2 + 2 -> 1 + 1 + 1 at 0.5
    adds = lambda m: sum(isinstance(layer, keras.layers.Add) for layer in m.layers)  # noqa: E731
    thin = build_backbone("darknet_nano", (64, 64, 3), width_multiplier=0.25, depth_multiplier=0.5)
    assert adds(backbone) == 5 and adds(thin) == 3
    # local weights file (nothing downloaded)
    path = tmp_path / "nano.weights.h5"
    backbone.save_weights(path)
    again = build_backbone("darknet_nano", (64, 64, 3), width_multiplier=0.25, weights=str(path))
    x = _images(1, 64)
    np.testing.assert_allclose(again(x), backbone(x), atol=1e-6)
    model = build_yolo(
        3, (128, 128, 3), grid_size=16, anchors=[(0.1, 0.1)], backbone="darknet_nano"
    )
    assert model.output_shape == (None, 16, 16, 1, 8)
    with pytest.raises(ValueError, match="grid_size=8 does not match"):
        build_yolo(3, (128, 128, 3), grid_size=8, backbone="darknet_nano")


def test_darknet_nano_at_stride_4_merges_onto_the_stride_4_stage():
    stride8 = build_backbone("darknet_nano", (64, 64, 3), width_multiplier=0.25)
    stride4 = build_backbone("darknet_nano", (64, 64, 3), width_multiplier=0.25, output_stride=4)
    assert stride4.output_shape == (None, 16, 16, 16)
    merge = stride4.get_layer("nano_merge4")  # /4 stage + upsampled stride-8 output
    assert [tuple(t.shape[1:3]) for t in merge.input] == [(16, 16), (16, 16)]
    # the stride-8 part keeps its layer names, so stride-8 weights load by name
    names8 = {layer.name for layer in stride8.layers}
    assert names8 < {layer.name for layer in stride4.layers}
    model = build_yolo(
        3,
        (64, 64, 3),
        grid_size=16,
        anchors=[(0.1, 0.1)],
        backbone="darknet_nano",
        width_multiplier=0.25,
    )
    assert model.output_shape == (None, 16, 16, 1, 8) and model.stride == 4
    with pytest.raises(ValueError, match="darknet_nano' gives output_stride 4 or 8.*=16"):
        build_backbone("darknet_nano", (64, 64, 3), output_stride=16)
    with pytest.raises(ValueError, match=r"stride 8, or 4 on request\): the feature map would"):
        build_yolo(3, (64, 64, 3), grid_size=32, backbone="darknet_nano")


def test_fixed_stride_backbones_refuse_other_grids():
    with pytest.raises(ValueError, match="grid_size=8 does not match"):
        build_yolo(2, (128, 128, 3), grid_size=8, backbone="mobilenet_v3_small")


def test_xy_scale_is_kept_by_the_model_and_used_by_decoding(tmp_path):
    from zoo.detection import detection_model, predict

    model = build_yolo(
        2,
        (64, 64, 3),
        grid_size=8,
        anchors=[(0.3, 0.3)],
        backbone="darknet_nano",
        width_multiplier=0.25,
        xy_scale=2.0,
    )
    assert model.get_config()["xy_scale"] == 2.0
    path = tmp_path / "m.keras"
    model.save(path)
    assert keras.saving.load_model(path).xy_scale == 2.0
    assert detection_model(model).get_layer("detections").xy_scale == 2.0
    from zoo.detection import yolo_detections

    images = _images(2, 64)
    raw = model(images, training=False)
    got = detection_model(model, score_threshold=0.001)(images)["detection_boxes"].numpy()
    kwargs = dict(anchors=model.anchors, score_threshold=0.001)
    want = yolo_detections(raw, 2, 1, xy_scale=2.0, **kwargs)["detection_boxes"].numpy()
    plain = yolo_detections(raw, 2, 1, **kwargs)["detection_boxes"].numpy()
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert not np.allclose(got, plain, atol=1e-3)  # the same logits decode elsewhere
    first = predict(model, images[:1], score_threshold=0.001)[0]["boxes"][0]
    np.testing.assert_allclose(first, want[0, 0, [1, 0, 3, 2]] * 64, atol=1e-3)
    with pytest.raises(ValueError, match="xy_scale"):
        build_yolo(
            2, (64, 64, 3), grid_size=8, anchors=[(0.3, 0.3)], backbone="darknet_nano", xy_scale=0.5
        )


def test_decoupled_head_layout_prior_and_separate_branches(tmp_path):
    anchors = [(0.15, 0.15), (0.4, 0.3)]
    model = build_yolo(
        3,
        (64, 64, 3),
        grid_size=8,
        anchors=anchors,
        backbone="darknet_nano",
        width_multiplier=0.125,
        head="decoupled",
        head_width=32,
    )
    assert model.output_shape == (None, 8, 8, 2, 8) and model.head == "decoupled"
    # two branches of head_width / 2 filters each: box + objectness (A x 5), classes (A x C)
    assert model.get_layer("head_box_conv").filters == 16
    assert model.get_layer("head_cls_conv").filters == 16
    assert model.get_layer("head_box_out").filters == 2 * 5
    assert model.get_layer("head_cls_out").filters == 2 * 3
    box_bias = model.get_layer("head_box_out").bias.numpy().reshape(2, 5)
    np.testing.assert_allclose(box_bias[:, 4], math.log(0.1 / 0.9), rtol=1e-6)
    assert np.all(box_bias[:, :4] == 0)
    assert np.all(model.get_layer("head_cls_out").bias.numpy() == 0)
    # the class channels do not depend on the box branch, and the box channels not on the
    # class branch
    images = _images(2, 64)
    before = np.asarray(model(images, training=False))
    kernel = model.get_layer("head_box_conv").kernel
    kernel.assign(kernel.numpy() * 3.0 + 0.01)
    after = np.asarray(model(images, training=False))
    np.testing.assert_array_equal(after[..., 5:], before[..., 5:])
    assert not np.allclose(after[..., :5], before[..., :5])
    kernel = model.get_layer("head_cls_conv").kernel
    kernel.assign(kernel.numpy() * 3.0 + 0.01)
    again = np.asarray(model(images, training=False))
    np.testing.assert_array_equal(again[..., :5], after[..., :5])
    # .keras round trip
    path = tmp_path / "decoupled.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.head == "decoupled"
    np.testing.assert_allclose(np.asarray(loaded(images, training=False)), again, atol=1e-5)


def test_decoupled_head_trains_one_finite_step():
    anchors = [(0.15, 0.15), (0.4, 0.3)]
    model = build_yolo(
        2,
        (128, 128, 3),
        grid_size=2,
        anchors=anchors,
        width_multiplier=0.125,
        head="decoupled",
        head_width=32,
    )
    boxes = np.array([[[8, 8, 60, 56], [68, 60, 120, 124]]] * 4, "float32")
    labels = np.array([[0, 1]] * 4, "int32")
    targets = encode_yolo_targets(boxes, labels, 2, 2, anchors, "xyxy", (128, 128))
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    weights_before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(_images(4, 128), targets, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    for name in ("head_box_out", "head_cls_out", "head_box_conv", "head_cls_conv"):
        index = [id(w) for w in model.trainable_weights].index(
            id(model.get_layer(name).trainable_weights[0])
        )
        assert not np.array_equal(weights_before[index], model.trainable_weights[index].numpy())


def test_decoupled_head_needs_anchors():
    with pytest.raises(ValueError, match=r"head='decoupled'"):
        build_yolo(3, (64, 64, 3), grid_size=1, width_multiplier=0.25, head="decoupled")
