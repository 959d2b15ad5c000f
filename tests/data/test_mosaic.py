"""zoo.data.mosaic: the 2 x 2 tiling, its boxes, the switch and the callback that closes it."""

import numpy as np
import pytest
import tensorflow as tf

from zoo.data import CloseMosaic, Mosaic, detection_pipeline, make_element, mosaic_dataset
from zoo.data.synthetic import synthetic_shapes

H = W = 32


def _element(value, boxes, labels):
    image = np.full((H, W, 3), value, np.uint8)
    for (x1, y1, x2, y2), label in zip(boxes, labels, strict=True):
        image[int(y1) : int(y2), int(x1) : int(x2)] = 10 + 40 * label
    return make_element(image, np.asarray(boxes, np.float32), np.asarray(labels, np.int32))


def _group():
    elements = [
        _element(200, [[2, 2, 12, 10]], [0]),
        _element(201, [[20, 4, 30, 28]], [1]),
        _element(202, [[0, 18, 16, 32], [24, 24, 28, 28]], [2, 3]),
        _element(203, [], []),
    ]
    dataset = tf.data.Dataset.from_tensor_slices([0]).flat_map(
        lambda _: tf.data.Dataset.from_generator(
            lambda: iter(elements),
            output_signature={
                "images": tf.TensorSpec((H, W, 3), tf.uint8),
                "bounding_boxes": {
                    "boxes": tf.TensorSpec((None, 4), tf.float32),
                    "labels": tf.TensorSpec((None,), tf.int32),
                },
            },
        )
    )
    return next(iter(dataset.ragged_batch(4)))


def test_tile_places_images_and_boxes_and_drops_hidden_boxes():
    mosaic = Mosaic(1.0, min_visibility=0.25)
    out = mosaic.tile(_group(), tf.constant([16, 8]))
    image = out["images"].numpy()
    assert image.shape == (H, W, 3)
    # canvas: image 0 at (0, 0), 1 at (32, 0), 2 at (0, 32), 3 at (32, 32); window x 16..48,
    # y 8..40. Background values tell which image each window pixel came from.
    assert image[0, 0, 0] == 200 and image[0, W - 1, 0] == 201
    assert image[H - 1, 0, 0] == 202 and image[H - 1, W - 1, 0] == 203
    boxes = out["bounding_boxes"]["boxes"].numpy()
    labels = out["bounding_boxes"]["labels"].numpy()
    # image 0's box [2, 2, 12, 10] lies left of x = 16: dropped. Image 1's [20, 4, 30, 28] is
    # [52, 4, 62, 28] on the canvas and [36, -4, 46, 20] in the window: clipped to
    # [32, 0, 32, 20], zero width, dropped. Image 2's [0, 18, 16, 32] -> canvas
    # [0, 50, 16, 64] -> window [-16, 42, 0, 56]: gone. Its [24, 24, 28, 28] -> canvas
    # [24, 56, 28, 60] -> window [8, 48, 12, 52]: outside (y > 32), dropped.
    assert labels.tolist() == [] and boxes.shape == (0, 4)
    # a window at (8, 0) keeps image 0's box (clipped from 2..12 to 0..4: 40 % of its width
    # and so 40 % of its area, above 25 %) and image 1's ([52, 4, 62, 28] - 8 = [44, 4, 54, 28],
    # outside: dropped)
    out = mosaic.tile(_group(), tf.constant([8, 0]))
    np.testing.assert_allclose(out["bounding_boxes"]["boxes"].numpy(), [[0, 2, 4, 10]])
    assert out["bounding_boxes"]["labels"].numpy().tolist() == [0]
    # the pixels inside a kept box are the object's, as drawn
    kept = out["images"].numpy()[2:10, 0:4, 0]
    assert np.all(kept == 10)


def test_tile_keeps_every_box_of_a_window_on_one_image_unchanged():
    mosaic = Mosaic(1.0)
    out = mosaic.tile(_group(), tf.constant([0, 32]))  # exactly image 2
    np.testing.assert_allclose(
        out["bounding_boxes"]["boxes"].numpy(), [[0, 18, 16, 32], [24, 24, 28, 28]]
    )
    assert out["bounding_boxes"]["labels"].numpy().tolist() == [2, 3]
    assert np.all(out["images"].numpy()[0, 20] == 202)


def test_probability_zero_and_close_give_the_first_element_unchanged():
    group = _group()
    for mosaic in (Mosaic(0.0), Mosaic(1.0)):
        mosaic.close()
        assert mosaic.closed
        out = mosaic(group, tf.constant([3, 4]))
        np.testing.assert_array_equal(out["images"].numpy(), group["images"][0].numpy())
        np.testing.assert_allclose(out["bounding_boxes"]["boxes"].numpy(), [[2, 2, 12, 10]])
    on = Mosaic(1.0)(group, tf.constant([3, 4]))["images"].numpy()
    assert len(np.unique(on[..., 0][np.isin(on[..., 0], [200, 201, 202, 203])])) > 1


def test_mosaic_dataset_reads_the_switch_while_iterating():
    def flat(i):
        value = tf.cast(i % 200, tf.uint8)
        return make_element(tf.fill((H, W, 3), value), [[4.0, 4.0, 20.0, 20.0]], [0])

    mosaic = Mosaic(1.0)
    stream = mosaic_dataset(tf.data.Dataset.range(10_000).map(flat), mosaic, seed=3)
    iterator = iter(stream.prefetch(2))
    mixed = [next(iterator)["images"].numpy() for _ in range(4)]
    assert all(len(np.unique(image)) > 1 for image in mixed)  # parts of several images
    mosaic.close()
    for _ in range(20):  # elements made before the switch drain
        next(iterator)
    plain = [next(iterator) for _ in range(4)]
    assert all(len(np.unique(e["images"].numpy())) == 1 for e in plain)
    assert all(e["bounding_boxes"]["boxes"].numpy().tolist() == [[4, 4, 20, 20]] for e in plain)


def test_detection_pipeline_with_mosaic_batches_as_without():
    data = synthetic_shapes(32, image_size=(H, W), seed=1)
    kwargs = dict(max_boxes=30, augment=True, repeat=True, seed=2)
    with_mosaic = next(iter(detection_pipeline(data, (H, W), 4, mosaic=Mosaic(1.0), **kwargs)))
    plain = next(iter(detection_pipeline(data, (H, W), 4, **kwargs)))
    assert with_mosaic["images"].shape == plain["images"].shape == (4, H, W, 3)
    assert with_mosaic["bounding_boxes"]["boxes"].shape == (4, 30, 4)
    assert not np.array_equal(with_mosaic["images"].numpy(), plain["images"].numpy())


def test_mosaic_dataset_needs_one_static_image_size():
    dataset = tf.data.Dataset.from_generator(
        lambda: iter([]),
        output_signature={
            "images": tf.TensorSpec((None, None, 3), tf.uint8),
            "bounding_boxes": {
                "boxes": tf.TensorSpec((None, 4), tf.float32),
                "labels": tf.TensorSpec((None,), tf.int32),
            },
        },
    )
    with pytest.raises(ValueError, match="one static size"):
        mosaic_dataset(dataset, Mosaic())


def test_close_mosaic_callback_at_a_fraction_of_the_time_budget_or_epochs():
    used = [0.0]
    mosaic = Mosaic(1.0)
    callback = CloseMosaic(mosaic, at=0.8, time_fraction=lambda: used[0])
    callback.set_params({"epochs": 100})
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    used[0] = 0.79
    callback.on_train_batch_begin(5)
    assert not mosaic.closed and callback.closed_at is None
    used[0] = 0.8
    callback.on_train_batch_begin(6)
    assert mosaic.closed and callback.closed_at == (0, 6)
    # without a budget: the epoch fraction
    mosaic = Mosaic(0.5)
    callback = CloseMosaic(mosaic, at=0.5)
    callback.set_params({"epochs": 10})
    callback.on_train_begin()
    callback.on_epoch_begin(4)
    callback.on_train_batch_begin(0)
    assert not mosaic.closed
    callback.on_epoch_begin(5)
    callback.on_train_batch_begin(0)
    assert mosaic.closed


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(probability=1.5), "probability=1.5"), (dict(min_visibility=-0.1), "min_visibility")],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Mosaic(**kwargs)
    with pytest.raises(ValueError, match="at=0"):
        CloseMosaic(Mosaic(), at=0)
