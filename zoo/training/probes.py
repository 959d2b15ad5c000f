"""Probes: how good are an encoder's features for a labelled task?

The protocol of the self-supervised family (fixed in advance, the same for every encoder):

- features = the encoder's output (the pooled vector after its last conv stage; what
  self-supervised encoders return), computed with ``training=False``;
- ``linear_probe``: multinomial logistic regression (scikit-learn, L-BFGS, the standard tool)
  on standardised frozen features, trained to convergence (``LINEAR_PROBE_MAX_ITER``);
- ``knn_probe``: weighted k-NN vote (cosine, k = 20, weights exp(sim / 0.07) as in
  Wu et al. 2018) over the frozen training features, exact search by
  ``zoo.metrics.retrieval.knn_search``;
- ``fine_tune``: a copy of the encoder plus a fresh ``Dense`` soft-max head, every weight trained,
  for a fixed wall-clock budget (the same for every starting point), light augmentation;
- ``label_fraction``: a class-stratified subset (1 %, 10 %, …) for the low-label regime.

Example:
    >>> acc = linear_probe(encoder, train, test)["accuracy"]
    >>> few = label_fraction(train, 0.01, seed=0)
    >>> acc_ft = fine_tune(encoder, few, test, minutes=1.0)["accuracy"]
"""

from __future__ import annotations

import time
import warnings

import keras
import numpy as np

from zoo.metrics.retrieval import compute_embeddings, knn_search
from zoo.ops.checks import check_fraction, check_int

__all__ = [
    "LINEAR_PROBE_MAX_ITER",
    "features",
    "fine_tune",
    "knn_probe",
    "label_fraction",
    "label_fraction_indices",
    "linear_probe",
    "probe_encoder",
]

# L-BFGS iterations of the linear probe. On the 128-d features of a random-init
# build_ssl_encoder((28, 28, 1)) (width 32), Fashion-MNIST, scikit-learn's defaults (tol 1e-4,
# C = 1) converge after 623 iterations on all 60,000 training rows, 460 on 10 % and 230 on 1 %;
# 200 stopped short (accuracy 0.8229 against 0.8251 converged). 1000 leaves a margin; a probe
# that still stops short says so in its result instead of warning.
LINEAR_PROBE_MAX_ITER = 1000


def label_fraction_indices(labels, fraction, seed=0):
    """Sorted indices of a class-stratified ``fraction`` of ``labels`` (at least one per class)."""
    fraction = check_fraction("fraction", fraction, include_low=False)
    labels = np.asarray(labels).reshape(-1)
    if fraction == 1.0:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n = max(1, int(round(len(idx) * fraction)))
        keep.append(rng.choice(idx, n, replace=False))
    return np.sort(np.concatenate(keep))


def label_fraction(data, fraction, seed=0):
    """A class-stratified subset holding ``fraction`` of every class (at least one per class).

    Args:
        data: ``zoo.data.classification.ClassificationData``.
        fraction: in ``(0, 1]``; 1 returns ``data`` itself.
        seed: which examples.

    Returns:
        ``ClassificationData`` (the same class names).
    """
    fraction = check_fraction("fraction", fraction, include_low=False)
    if fraction == 1.0:
        return data
    return data.take(label_fraction_indices(data.labels, fraction, seed))


def features(encoder, images, batch_size=512):
    """Frozen features: ``encoder(images, training=False)`` flattened to ``(N, D)`` float32."""
    out = compute_embeddings(encoder, images, batch_size)
    return out.reshape(len(out), -1)


def linear_probe(
    encoder,
    train,
    test,
    max_iter=LINEAR_PROBE_MAX_ITER,
    c=1.0,
    batch_size=512,
    return_head=False,
):
    """Multinomial logistic regression on standardised frozen features (scikit-learn L-BFGS).

    Trained until L-BFGS converges (scikit-learn's tolerance) or ``max_iter`` iterations. A
    probe that stops at ``max_iter`` raises and prints nothing: the result says so
    (``converged`` False), so a table of probes stays readable and can be checked.

    Args:
        encoder: image → feature model, or a precomputed ``(train_features, test_features)``
            pair.
        train, test: ``ClassificationData``.
        max_iter: most L-BFGS iterations (``LINEAR_PROBE_MAX_ITER``, enough for the zoo's
            128-d encoder features on Fashion-MNIST).
        c: inverse L2 regularisation strength (scikit-learn's ``C``).
        batch_size: feature extraction batch.
        return_head: also return the probe as one linear layer on the raw features, the
            standardisation folded in: ``"head": (kernel (D, C), bias (C,))``, the starting
            head of ``fine_tune(head=...)`` (LP-FT).

    Returns:
        ``{"accuracy": float, "train_accuracy": float, "seconds": float, "converged": bool,
        "iterations": int}`` (``iterations``: the L-BFGS iterations run), and ``"head"``.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    max_iter = check_int("max_iter", max_iter)
    start = time.monotonic()
    f_train, f_test = _features_pair(encoder, train, test, batch_size)
    scaler = StandardScaler().fit(f_train)
    clf = LogisticRegression(C=c, max_iter=max_iter)
    # One BLAS / OpenMP thread: an iteration is a few milliseconds of work, and on a shared
    # 2-core CPU spinning threads made the fit 35x slower (20 iterations on 5,000 x 128
    # features: 10.7 s with 2 threads, 0.30 s with one).
    with threadpool_limits(limits=1), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(scaler.transform(f_train), train.labels)
    converged = True
    for w in caught:  # scikit-learn's "failed to converge" becomes a field; the rest pass on
        if issubclass(w.category, ConvergenceWarning):
            converged = False
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    result = {
        "accuracy": float(np.mean(clf.predict(scaler.transform(f_test)) == test.labels)),
        "train_accuracy": float(np.mean(clf.predict(scaler.transform(f_train)) == train.labels)),
        "seconds": time.monotonic() - start,
        "converged": converged,
        "iterations": int(np.max(clf.n_iter_)),
    }
    if return_head:
        result["head"] = _folded_head(scaler, clf, train.num_classes)
    return result


def _folded_head(scaler, clf, num_classes):
    """``(kernel, bias)`` with ``f @ kernel + bias`` = the classifier's logits on ``f``."""
    weights = clf.coef_ / scaler.scale_  # (C, D); scale_ is 1 for constant features
    bias = clf.intercept_ - weights @ scaler.mean_
    if weights.shape[0] == 1:  # two classes: scikit-learn keeps one row, for class 1
        weights, bias = np.concatenate([0 * weights, weights]), np.array([0.0, bias[0]])
    if weights.shape[0] != num_classes:
        raise ValueError(
            f"the probe saw {weights.shape[0]} of the {num_classes} classes; LP-FT needs them all"
        )
    return weights.T.astype(np.float32), bias.astype(np.float32)


def knn_probe(encoder, train, test, k=20, temperature=0.07, batch_size=512):
    """Weighted k-NN classification on L2-normalised frozen features (cosine similarity).

    Each of the ``k`` nearest training features votes for its class with weight
    ``exp(similarity / temperature)``.

    Args:
        encoder: image → feature model, or ``(train_features, test_features)``.
        train, test: ``ClassificationData``.
        k: neighbours.
        temperature: vote sharpness.

    Returns:
        ``{"accuracy": float, "seconds": float}``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1. Received: k={k}")
    start = time.monotonic()
    f_train, f_test = _features_pair(encoder, train, test, batch_size)
    distances, indices = knn_search(f_test, f_train, k=k, distance="cosine")
    similarity = 1.0 - distances.astype(np.float64)
    weights = np.exp((similarity - similarity[:, :1]) / temperature)
    votes = np.zeros((len(f_test), train.num_classes))
    np.add.at(votes, (np.arange(len(f_test))[:, None], train.labels[indices]), weights)
    return {
        "accuracy": float(np.mean(np.argmax(votes, axis=1) == test.labels)),
        "seconds": time.monotonic() - start,
    }


def _features_pair(encoder, train, test, batch_size):
    if isinstance(encoder, (tuple, list)):
        f_train, f_test = (np.asarray(f, np.float32) for f in encoder)
    else:
        f_train = features(encoder, train.images, batch_size)
        f_test = features(encoder, test.images, batch_size)
    if len(f_train) != len(train) or len(f_test) != len(test):
        raise ValueError(
            f"features and data differ in length: train {len(f_train)} vs {len(train)}, "
            f"test {len(f_test)} vs {len(test)}"
        )
    return f_train, f_test


def _copy_encoder(encoder):
    clone = keras.models.clone_model(encoder)
    clone.set_weights(encoder.get_weights())
    return clone


def fine_tune(
    encoder,
    train,
    test,
    minutes=1.0,
    max_epochs=200,
    batch_size=64,
    learning_rate=1e-3,
    freeze_encoder=False,
    augment=None,
    recalibrate_bn=True,
    seed=0,
    verbose=0,
    head=None,
):
    """Train a copy of ``encoder`` plus a soft-max head on ``train``; accuracy on ``test``.

    The encoder passed in is not modified. Training stops at ``max_epochs`` or when the
    wall-clock budget ``minutes`` runs out (``zoo.training.callbacks.TimeBudget``), so
    every starting point (random init, each pretext, supervised) gets the same time.

    Args:
        encoder: image → feature ``keras.Model`` (its weights are the starting point).
        train, test: ``ClassificationData``.
        minutes: training budget.
        max_epochs: epoch cap (small label fractions finish early).
        batch_size: batch size (capped at the training-set size).
        learning_rate: Adam learning rate (constant).
        freeze_encoder: train the head only (a linear probe by gradient descent).
        augment: ``fn(images float32) -> images`` applied to training batches
            (e.g. ``zoo.data.classification.make_augmentation(flip=False)``), or ``None``.
        recalibrate_bn: after training, re-estimate BatchNorm statistics on the training images
            (``zoo.training.batchnorm.recalibrate_batchnorm``): a few hundred steps leave the
            moving averages (momentum 0.99) half-way to the starting point, which can collapse
            test accuracy.
        seed: head initialisation and shuffling.
        verbose: Keras ``fit`` verbosity.
        head: ``None`` (a fresh head, initialised at random) or ``(kernel, bias)`` to start
            from, e.g. ``linear_probe(..., return_head=True)["head"]``: LP-FT (Kumar et al.
            2022), which fine-tunes from a trained linear probe so the first steps' gradients,
            coming through a random head, do not distort the encoder's features.

    Returns:
        ``{"accuracy", "epochs", "seconds", "train_loss", "train_accuracy"}`` (the last two:
        the last epoch's, as Keras logged them while training).
    """
    import tensorflow as tf

    from zoo.training.callbacks import TimeBudget

    if minutes <= 0:
        raise ValueError(f"minutes must be > 0. Received: minutes={minutes}")
    keras.utils.set_random_seed(seed)
    body = _copy_encoder(encoder)
    body.trainable = not freeze_encoder
    inputs = keras.Input(encoder.input_shape[1:])
    x = keras.layers.Flatten()(body(inputs, training=False if freeze_encoder else None))
    probe_head = keras.layers.Dense(train.num_classes, name="probe_head")
    model = keras.Model(inputs, probe_head(x))
    if head is not None:
        probe_head.set_weights([np.asarray(w, np.float32) for w in head])
    batch_size = int(min(batch_size, len(train)))
    model.compile(
        keras.optimizers.Adam(learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    ds = tf.data.Dataset.from_tensor_slices((train.images.astype(np.float32), train.labels))
    ds = ds.shuffle(len(train), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    if augment is not None:
        ds = ds.map(lambda x, y: (augment(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    start = time.monotonic()
    history = model.fit(
        ds,
        epochs=max_epochs,
        verbose=verbose,
        # the first step (tracing, compilation) is not charged: once it took longer than the
        # whole 30 s budget and left a fine-tune with a single step (accuracy 0.19)
        callbacks=[TimeBudget(minutes, count_first_step=False, verbose=False)],
        shuffle=False,  # shuffled in tf.data
    )
    seconds = time.monotonic() - start
    if recalibrate_bn and not freeze_encoder:
        from zoo.training.batchnorm import recalibrate_batchnorm

        recalibrate_batchnorm(model, train.images, seed=seed)
    logits = compute_embeddings(model, test.images, 512)
    last = {key: values[-1] for key, values in history.history.items() if values}
    return {
        "accuracy": float(np.mean(np.argmax(logits, axis=1) == test.labels)),
        "epochs": len(history.history.get("loss", [])),
        "seconds": seconds,
        # the last epoch's running training figures (training-mode BN): a test accuracy far
        # below train_accuracy points at evaluation (BN statistics), not at training
        "train_loss": float(last.get("loss", float("nan"))),
        "train_accuracy": float(last.get("accuracy", float("nan"))),
    }


def probe_encoder(
    encoder,
    train,
    test,
    fractions=(0.01, 0.1),
    finetune_minutes=0.5,
    seed=0,
    finetune_repeats=1,
    lp_ft=False,
):
    """The whole protocol for one encoder: one row of accuracies.

    Features are computed once: ``linear`` and ``knn`` use all training labels; for each
    fraction ``f`` (class-stratified ``label_fraction(train, f, seed)``, the same subset for
    every encoder) ``linear@<f>%`` probes the frozen features and ``finetune@<f>%`` trains the
    whole network for ``finetune_minutes``.

    With ``finetune_repeats = R > 1`` each fine-tune runs ``R`` times, with the fine-tune seeds
    ``seed, seed + 1, …, seed + R - 1`` (head initialisation and batch order; the label subset
    and the encoder stay the same), each for ``finetune_minutes``. ``finetune@<f>%`` is then
    their mean and ``finetune@<f>%_runs`` lists them in seed order. On 1 % of Fashion-MNIST's
    labels one run's accuracy moves by about ±0.5 points with the seed alone.

    With ``lp_ft`` every fine-tune starts from the ``linear@<f>%`` probe as its head (LP-FT,
    see ``fine_tune``), for every encoder alike.

    Returns:
        ``{"linear", "knn", "linear@1%", "finetune@1%", ...: accuracy}`` (and the
        ``..._runs`` lists when ``finetune_repeats > 1``).
    """
    from zoo.ops.checks import check_int

    check_int("finetune_repeats", finetune_repeats)
    f_train = features(encoder, train.images)
    f_test = features(encoder, test.images)
    row = {
        "linear": linear_probe((f_train, f_test), train, test)["accuracy"],
        "knn": knn_probe((f_train, f_test), train, test)["accuracy"],
    }
    for fraction in fractions:
        keep = label_fraction_indices(train.labels, fraction, seed)
        few = train.take(keep)
        tag = f"{100 * fraction:g}%"
        probe = linear_probe((f_train[keep], f_test), few, test, return_head=lp_ft)
        row[f"linear@{tag}"] = probe["accuracy"]
        runs = [
            fine_tune(
                encoder, few, test, minutes=finetune_minutes, seed=seed + i, head=probe.get("head")
            )["accuracy"]
            for i in range(finetune_repeats)
        ]
        row[f"finetune@{tag}"] = float(np.mean(runs))
        if finetune_repeats > 1:
            row[f"finetune@{tag}_runs"] = runs
    return row
