"""Two-tower pieces: edge sketches, the pair batches (y = 0 for an item's own sketch) and the
cross-modal recall."""

import numpy as np
import pytest

from zoo import build_embedding_model, build_two_tower
from zoo.metric_learning import cross_modal_recall, edge_sketches, sketch_pair_batches


def test_edge_sketches_of_a_step_edge_by_hand():
    image = np.zeros((1, 8, 8, 1), np.uint8)
    image[0, :, 4:] = 255  # a vertical step between columns 3 and 4
    out = edge_sketches(image)
    assert out.shape == (1, 16) and out.dtype == np.float32
    grid = out.reshape(4, 4)
    # Sobel x of a 255 step is 4 * 255 on both sides of it; pooled 2x2 columns 2-3 and 4-5 see
    # it in one of their two columns (mean 2 * 255), scaled by 1 / (4 * sqrt(2)).
    expected = 2 * 255 / (4 * np.sqrt(2))
    np.testing.assert_allclose(grid[1:3, 1:3], expected, rtol=1e-5)
    np.testing.assert_allclose(grid[:, 0], 0.0, atol=1e-5)
    assert out.max() <= 255.0 + 1e-3


def test_sketch_pair_batches_pair_each_item_with_its_own_and_another_sketch():
    images = np.arange(8, dtype=np.float32).reshape(8, 1, 1, 1) * np.ones((8, 2, 2, 1))
    sketches = np.arange(8, dtype=np.float32)[:, None] * np.ones((8, 3), np.float32)
    inputs, targets = next(iter(sketch_pair_batches(images, sketches, batch_size=4, seed=0)))
    a, b, y = inputs["input_a"].numpy(), inputs["input_b"].numpy(), targets["embeddings"].numpy()
    assert a.shape == (8, 2, 2, 1) and b.shape == (8, 3)
    np.testing.assert_array_equal(y, [0, 0, 0, 0, 1, 1, 1, 1])
    ids_a, ids_b = a[:, 0, 0, 0], b[:, 0]
    np.testing.assert_array_equal(ids_a[:4], ids_b[:4])  # similar: its own sketch
    assert np.all(ids_a[4:] != ids_b[4:])  # dissimilar: another item's sketch


@pytest.mark.parametrize("seed", [0, 1])
def test_cross_modal_recall_counts_instances_and_classes(seed):
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (12, 8, 8, 1)).astype("float32")
    sketches = edge_sketches(images)
    model = build_two_tower(
        build_embedding_model((8, 8, 1), embedding_dim=4, width=4),
        build_embedding_model(sketches.shape[1:], embedding_dim=4, backbone="mlp", width=8),
        projection_dim=4,
    )
    labels = np.arange(12) % 3
    out = cross_modal_recall(model, images, sketches, labels)
    assert out["gallery_size"] == 12
    assert 0 <= out["instance_recall@1"] <= out["instance_recall@5"] <= out["instance_recall@10"]
    assert out["class_recall@1"] >= out["instance_recall@1"]  # its own sketch has its class
