import time

import numpy as np
import pytest
import tensorflow as tf

from zoo.data import SHAPES, render_shapes, synthetic_shapes


def _as_numpy(element):
    return (
        element["images"],
        element["bounding_boxes"]["boxes"],
        element["bounding_boxes"]["labels"],
    )


def test_same_seed_same_examples_in_any_order():
    data = synthetic_shapes(12, image_size=(64, 80), seed=3)
    in_order = [_as_numpy(e) for e in data.dataset.as_numpy_iterator()]
    shuffled = data.records.shuffle(12, seed=1).map(
        lambda i: (i, data.decode_fn(i)), num_parallel_calls=4, deterministic=False
    )
    seen = 0
    for index, element in shuffled.as_numpy_iterator():
        for a, b in zip(in_order[index], _as_numpy(element), strict=True):
            np.testing.assert_array_equal(a, b)
        seen += 1
    assert seen == 12
    for a, b in zip(in_order[5], render_shapes(5, seed=3, image_size=(64, 80)), strict=True):
        np.testing.assert_array_equal(a, b)
    other = render_shapes(5, seed=4, image_size=(64, 80))
    assert not np.array_equal(other[0], in_order[5][0])


def test_layout_and_static_image_shape():
    data = synthetic_shapes(4, image_size=(48, 72))
    spec = data.dataset.element_spec
    assert spec["images"].shape == (48, 72, 3) and spec["images"].dtype == tf.uint8
    assert spec["bounding_boxes"]["boxes"].dtype == tf.float32
    assert spec["bounding_boxes"]["labels"].dtype == tf.int32
    assert data.num_examples == 4 and data.class_names == list(SHAPES[:5])


@pytest.mark.parametrize("image_size", [(128, 128), (72, 160), (200, 48)])
def test_boxes_are_tight_to_unoccluded_shapes(image_size):
    checked = 0
    for index in range(25):
        image, boxes, labels, masks, top = render_shapes(
            index, image_size=image_size, return_masks=True
        )
        height, width = image_size
        assert (
            np.all(boxes[:, :2] >= 0)
            and np.all(boxes[:, 2] <= width)
            and np.all(boxes[:, 3] <= height)
        )
        for j, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
            # the box is exactly the bounding box of the shape's full mask (pixel edges)
            rows, cols = np.flatnonzero(masks[j].any(1)), np.flatnonzero(masks[j].any(0))
            assert (x1, y1, x2, y2) == (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
            if not np.all(top[masks[j]] == j):
                continue  # partly covered by a later shape
            checked += 1
            color = image[masks[j]][0]
            same = np.all(image == color, axis=-1)
            inside = same[y1:y2, x1:x2]
            # every pixel of the shape is drawn in its colour, inside the box
            assert same[masks[j]].all()
            # the box edges touch the shape: first/last rows and columns hold shape pixels
            assert (
                inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
            )
            # nothing of the colour in the one-pixel ring just outside the box (no bleeding)
            ring = np.zeros_like(same)
            ring[max(y1 - 1, 0) : y2 + 1, max(x1 - 1, 0) : x2 + 1] = True
            ring[y1:y2, x1:x2] = False
            assert not (same & ring & (top == j)).any() and not (same & ring & (top == -1)).any()
    assert checked > 40


def test_visible_fraction_is_bounded():
    for index in range(30):
        _, _, _, masks, top = render_shapes(index, max_objects=10, return_masks=True)
        for j, mask in enumerate(masks):
            assert (top[mask] == j).mean() >= 0.65 - 1e-9


def test_classes_sizes_and_empty_images():
    samples = [render_shapes(i, max_objects=6, empty_fraction=0.2) for i in range(60)]
    labels = np.concatenate([s[2] for s in samples])
    assert set(labels.tolist()) == set(range(5))
    counts = [len(s[2]) for s in samples]
    assert 0 in counts and max(counts) <= 6 and max(counts) >= 4
    sides = np.concatenate([s[1][:, 2:] - s[1][:, :2] for s in samples if len(s[1])])
    assert sides.min() >= 3 and sides.max() <= 128 * 0.5 + 2 and sides.max() > 40
    assert all(len(render_shapes(i, empty_fraction=1.0)[2]) == 0 for i in range(5))
    assert all(len(render_shapes(i, empty_fraction=0.0)[2]) > 0 for i in range(20))


def test_backgrounds_are_textured_and_colors_vary():
    image = render_shapes(0, empty_fraction=1.0)[0].astype(float)
    assert image.std(axis=(0, 1)).min() > 3  # not flat
    colors = {tuple(render_shapes(i)[0][0, 0]) for i in range(10)}
    assert len(colors) == 10


def test_class_name_choice_and_validation():
    data = synthetic_shapes(2, class_names=["star", "cross"])
    assert data.class_names == ["star", "cross"]
    assert synthetic_shapes(2, num_classes=3).class_names == ["circle", "rectangle", "triangle"]
    for kwargs, match in [
        ({"class_names": ["hexagon"]}, "class_names must be distinct names"),
        ({"num_classes": 9}, "num_classes must be in 1..6"),
        ({"image_size": (8, 64)}, "at least 16x16"),
        ({"empty_fraction": 1.5}, "empty_fraction"),
    ]:
        with pytest.raises(ValueError, match=match):
            synthetic_shapes(2, **kwargs)


def test_throughput_one_core():
    """Streams 128x128 images through tf.data; CPU time per image, so other load matters less."""
    data = synthetic_shapes(400, image_size=(128, 128), seed=1)
    iterator = data.dataset.as_numpy_iterator()
    next(iterator)
    start = time.process_time()
    count = sum(1 for _ in iterator)
    rate = count / (time.process_time() - start)
    print(f"synthetic_shapes: {rate:.0f} images/s (CPU time, 128x128)")
    assert rate > 150  # about 450/s measured on one core; a wide margin for busy CI machines


def _object_lab(image, mask):
    from zoo.ops import rgb_to_lab

    return rgb_to_lab(image[mask].astype(np.float32)).numpy().mean(axis=0)


def test_by_class_colours_hue_follows_the_class_lightness_does_not():
    num_classes = len(SHAPES)
    hues, lightness = {c: [] for c in range(num_classes)}, {c: [] for c in range(num_classes)}
    for index in range(120):
        image, _, labels, masks, top = render_shapes(
            index,
            image_size=(32, 32),
            class_names=SHAPES,
            max_objects=1,
            empty_fraction=0.0,
            size_range=(0.45, 0.9),
            return_masks=True,
            colors="by_class",
        )
        lab = _object_lab(image, top == 0)
        label = int(labels[0])
        hues[label].append(np.arctan2(lab[2], lab[1]))
        lightness[label].append(lab[0])
    for label in range(num_classes):
        expected = 2 * np.pi * label / num_classes
        error = np.angle(np.exp(1j * (np.asarray(hues[label]) - expected)))  # wrapped
        assert len(error) >= 8 and np.median(np.abs(error)) < 0.25, (label, error)
    # Lightness: the same spread in every class, so grayscale does not give the class away.
    means = [np.mean(lightness[c]) for c in range(num_classes)]
    assert max(means) - min(means) < 15.0, means
    assert all(np.std(lightness[c]) > 6.0 for c in range(num_classes))


def test_random_colours_say_nothing_about_the_class_and_bad_option_raises():
    hues = {0: [], 1: []}
    for index in range(80):
        image, _, labels, masks, top = render_shapes(
            index,
            image_size=(32, 32),
            class_names=SHAPES[:2],
            max_objects=1,
            empty_fraction=0.0,
            size_range=(0.45, 0.9),
            return_masks=True,
        )
        lab = _object_lab(image, top == 0)
        hues[int(labels[0])].append(np.arctan2(lab[2], lab[1]))
    # Class 0 "by_class" hue is 0 rad; with random colours its hues spread over the circle.
    assert np.mean(np.abs(np.asarray(hues[0])) < 0.5) < 0.5
    with pytest.raises(ValueError, match="colors must be"):
        render_shapes(0, colors="rainbow")
