"""Two-tower (multi-stream) matching of an item across two renderings: photo-like images
and their edge sketches, with the pair batches and the cross-modal recall that go with them."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from zoo.metrics.retrieval import compute_embeddings, retrieval_metrics

__all__ = ["cross_modal_recall", "edge_sketches", "sketch_pair_batches"]


def edge_sketches(images):
    """A second rendering of each image for two-tower (multi-stream) training, domain B: edge magnitude (Sobel), 2x2 average-pooled, flattened, scaled to 0-255."""
    x = tf.cast(images, tf.float32)
    x = tf.image.rgb_to_grayscale(x) if x.shape[-1] == 3 else x
    edges = tf.image.sobel_edges(x)  # (N, H, W, 1, 2)
    magnitude = tf.sqrt(tf.reduce_sum(tf.square(edges), axis=-1))
    pooled = tf.nn.avg_pool2d(magnitude, 2, 2, "VALID")
    flat = tf.reshape(pooled, (tf.shape(pooled)[0], -1))
    # |Sobel| <= 4 * 255 per axis, so the magnitude is <= 4 * sqrt(2) * 255: a fixed scale,
    # the same for every split.
    return (flat / (4.0 * np.sqrt(2.0))).numpy().astype(np.float32)


def sketch_pair_batches(images, sketches, batch_size, seed):
    """Infinite batches: each item with its own sketch (y = 0) and with a shuffled one (y = 1)."""
    ds = tf.data.Dataset.from_tensor_slices((images.astype(np.float32), sketches))
    ds = ds.shuffle(len(images), seed=seed).repeat().batch(batch_size, drop_remainder=True)

    def make_pairs(a, b):
        shift = tf.random.uniform([], 1, batch_size, dtype=tf.int32, seed=seed)
        inputs = {
            "input_a": tf.concat([a, a], 0),
            "input_b": tf.concat([b, tf.roll(b, shift, 0)], 0),
        }
        y = tf.concat([tf.zeros([batch_size]), tf.ones([batch_size])], 0)  # 0 = similar
        return inputs, {"embeddings": y}

    return ds.map(make_pairs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


def cross_modal_recall(model, images, sketches, labels):
    """Every image queries the gallery of all sketches: instance recall@1/5/10 (its own sketch
    ranked first) and class recall@1 (a sketch of its class ranked first)."""
    tower_a, tower_b = model.get_layer("tower_a"), model.get_layer("tower_b")
    ea = compute_embeddings(tower_a, images)
    eb = compute_embeddings(tower_b, sketches)
    ids = np.arange(len(images))
    instance = retrieval_metrics(ea, ids, eb, ids, ks=(1, 5, 10), map_at_r=False)
    by_class = retrieval_metrics(ea, labels, eb, labels, ks=(1,), map_at_r=False)
    return {
        "instance_recall@1": instance["recall@1"],
        "instance_recall@5": instance["recall@5"],
        "instance_recall@10": instance["recall@10"],
        "class_recall@1": by_class["recall@1"],
        "gallery_size": len(ids),
    }
