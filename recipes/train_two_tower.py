"""Two-tower (multi-stream) model: match an item across two domains, fully offline.

Description: domain A is the photo-like image (28x28 Fashion-MNIST, or digits); domain B is a
    different rendering of the SAME item: a 14x14 edge sketch (Sobel gradient magnitude,
    2x2-average-pooled) flattened into a 196-d vector, i.e. another modality that needs another
    network. ``zoo.build_two_tower`` joins a small CNN (images) and an MLP (sketch vectors), each
    projected into one shared, L2-normalised space, and trains them with
    ``zoo.metric_learning.ContrastiveLoss`` on the pair embeddings: matched (image, sketch) pairs are
    similar (y = 0), each image with another item's sketch from the batch is dissimilar (y = 1).
    Evaluation is cross-modal retrieval on the test split: every image queries the gallery of all
    sketches; recall@1 counts the item's own sketch ranked first (instance level), and the class
    recall@1 counts a sketch of the same class ranked first.
Data: Fashion-MNIST from local files, digits when it is absent, or `--data FOLDER`.
Expected result: Fashion-MNIST, defaults: instance recall@1 well above chance (1 in 10000).
Runtime: a few minutes on a 2-core CPU; `--smoke` well under a minute.

    python recipes/train_two_tower.py
    python recipes/train_two_tower.py --smoke
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from zoo.data.classification import load_classification_data, subsample  # noqa: E402
from zoo.metric_learning.loss import ContrastiveLoss
from zoo.metric_learning.model import build_embedding_model, build_two_tower
from zoo.metrics.retrieval import compute_embeddings, retrieval_metrics  # noqa: E402
from zoo.training import build_parser, compile_options, configure, parse_flags, train  # noqa: E402

# === Hyperparameters ===
DEFAULTS = {"epochs": 8, "batch_size": 64, "image_size": None, "steps_per_epoch": 150}
SMOKE = {"epochs": 1, "batch_size": 16, "image_size": None, "steps_per_epoch": 2}


def parse_args(argv=None):
    parser = build_parser(
        __doc__.splitlines()[0],
        defaults=DEFAULTS,
        smoke_defaults={**SMOKE, "max_train": 400, "max_test": 200},
    )
    parser.add_argument("--projection-dim", type=int, default=64, help="shared space size")
    parser.add_argument("--margin", type=float, default=1.0, help="contrastive margin (on D²)")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (peak)")
    parser.add_argument("--max-train", type=int, default=None, help="subsample the train split")
    parser.add_argument("--max-test", type=int, default=2000, help="test items to retrieve among")
    return parse_flags(parser, argv)


# === Data: two renderings of each item ===
def sketch(images):
    """Domain B: edge magnitude (Sobel), 2x2 average-pooled, flattened, scaled to 0-255."""
    x = tf.cast(images, tf.float32)
    x = tf.image.rgb_to_grayscale(x) if x.shape[-1] == 3 else x
    edges = tf.image.sobel_edges(x)  # (N, H, W, 1, 2)
    magnitude = tf.sqrt(tf.reduce_sum(tf.square(edges), axis=-1))
    pooled = tf.nn.avg_pool2d(magnitude, 2, 2, "VALID")
    flat = tf.reshape(pooled, (tf.shape(pooled)[0], -1))
    # |Sobel| <= 4 * 255 per axis, so the magnitude is <= 4 * sqrt(2) * 255: a fixed scale,
    # the same for every split.
    return (flat / (4.0 * np.sqrt(2.0))).numpy().astype(np.float32)


def pair_batches(images, sketches, batch_size, seed):
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


# === Evaluation ===
def cross_modal_recall(model, images, sketches, labels):
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


def main(argv=None):
    args = parse_args(argv)
    strategy = configure(args)
    train_data, test_data = load_classification_data(args.data, seed=args.seed)
    train_data = subsample(train_data, args.max_train, args.seed)
    test_data = subsample(test_data, args.max_test, args.seed + 1)
    train_sketch, test_sketch = sketch(train_data.images), sketch(test_data.images)
    dataset = pair_batches(train_data.images, train_sketch, args.batch_size, args.seed)

    # === Model ===
    with strategy.scope():
        image_encoder = build_embedding_model(
            train_data.image_shape,
            embedding_dim=128,
            width=16,
            normalize=False,
            name="image_encoder",
        )
        sketch_encoder = build_embedding_model(
            train_sketch.shape[1:],
            embedding_dim=128,
            backbone="mlp",
            width=32,
            normalize=False,
            name="sketch_encoder",
        )
        model = build_two_tower(image_encoder, sketch_encoder, args.projection_dim)
        model.compile(
            keras.optimizers.Adam(args.lr),
            loss={"embeddings": ContrastiveLoss(margin=args.margin)},
            **compile_options(args),
        )
    before = cross_modal_recall(model, test_data.images, test_sketch, test_data.labels)

    # === Training ===
    result = train(
        model,
        dataset,
        args,
        recipe="two_tower",
        base_lr=args.lr,
        config={"projection_dim": args.projection_dim, "margin": args.margin},
    )

    # === Evaluation ===
    after = cross_modal_recall(model, test_data.images, test_sketch, test_data.labels)
    metrics = {"untrained": before, "trained": after}
    (result.run.path / "metrics.json").write_text(json.dumps(metrics, indent=2))
    for name, values in metrics.items():
        print(
            f"{name:<10} "
            + " ".join(
                f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
            )
        )
    return metrics


if __name__ == "__main__":
    main()
