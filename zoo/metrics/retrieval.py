"""Does an embedding work? Retrieval (recall@k, MAP@R), verification (LFW accuracy, ROC AUC,
VAL@FAR) and a 2-D t-SNE plot.

Retrieval is exact nearest-neighbour search in TensorFlow, tiled: a block of queries against a
block of the gallery at a time (one matmul each), keeping a running top-k, so memory is
``query_batch_size × gallery_batch_size`` and never the full ``Q × G`` matrix. Without a separate
gallery, every query searches the rest of the set (leave-one-out; the query itself is excluded).

- ``recall@k``: fraction of queries with at least one same-class item among their k nearest
  neighbours (the metric-learning "Recall@K" of Oh Song et al. 2016, not the classification one).
- ``MAP@R`` (Musgrave et al., "A Metric Learning Reality Check", 2020): with ``R`` the number of
  same-class items in the gallery, ``AP@R = (1/R) Σ_{i<=R} P@i · rel_i`` over the ``R`` nearest
  neighbours, averaged over the queries. Queries without any same-class item are left out of
  both metrics (``num_queries`` says how many counted).

Verification on pairs (``same`` = 1 for a same-class pair; a pair is accepted as "same" when its
distance is ``<= threshold``):

- ``accuracy``: the LFW protocol: 10 folds; for each, the threshold that maximises accuracy on the
  other nine is applied to it; mean and standard deviation over folds.
- ``roc_auc``: area under the ROC curve of ``−distance`` (scikit-learn).
- ``val@far=F``: FaceNet's validation rate at a false-accept rate: the threshold accepts at most
  ``F × (#different pairs)`` different pairs; VAL is the fraction of same pairs accepted. With
  ``n`` different pairs the finest FAR is ``1/n``: VAL@FAR=1e-3 needs well over 1000 of them.

Example:
    >>> emb = compute_embeddings(encoder, test.images)
    >>> retrieval_metrics(emb, test.labels)         # {"recall@1": ..., "map@r": ..., ...}
    >>> i, j, same = sample_verification_pairs(test.labels, num_pairs=20000)
    >>> verification_metrics(pair_distances(emb, i, j), same)
    >>> plot_embeddings(emb, test.labels, "tsne.png", class_names=test.class_names)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "RetrievalMetricsCallback",  # noqa: F822 (built on first use, see __getattr__)
    "compute_embeddings",
    "evaluate_embeddings",
    "evaluate_encoder",
    "knn_search",
    "map_at_r",
    "pair_distances",
    "plot_embeddings",
    "recall_at_k",
    "retrieval_metrics",
    "sample_verification_pairs",
    "val_at_far",
    "verification_accuracy",
    "verification_metrics",
]

_SEARCH_DISTANCES = ("squared_l2", "l2", "cosine")


# === Exact tiled k-NN search ===


def _prepare_search(queries, gallery, distance):
    import tensorflow as tf

    if distance not in _SEARCH_DISTANCES:
        raise ValueError(
            f"distance must be one of {_SEARCH_DISTANCES}. Received: distance={distance!r}"
        )
    q = tf.convert_to_tensor(np.asarray(queries, np.float32))
    g = tf.convert_to_tensor(np.asarray(gallery, np.float32))
    if q.shape.rank != 2 or g.shape.rank != 2 or q.shape[1] != g.shape[1]:
        raise ValueError(
            f"queries and gallery must be (N, D) with the same D. Received {q.shape} and {g.shape}"
        )
    if distance == "cosine":
        q = tf.math.l2_normalize(q, axis=1)
        g = tf.math.l2_normalize(g, axis=1)
    return q, g


def _block_distances(q, g, distance):
    """Distances used for ranking: squared L2 (monotone in L2) or cosine distance."""
    import tensorflow as tf

    from zoo.ops.distances import pairwise_squared_l2

    if distance == "cosine":
        return 1.0 - tf.matmul(q, g, transpose_b=True)
    return pairwise_squared_l2(q, g)


def _search_blocks(queries, gallery, k, distance, leave_one_out, qbs, gbs):
    """Yield ``(q0, distances (b, k), indices (b, k))`` per query block (tiled search)."""
    import tensorflow as tf

    q_all, g_all = _prepare_search(queries, gallery, distance)
    num_q, num_g = int(q_all.shape[0]), int(g_all.shape[0])
    inf = tf.constant(np.inf, tf.float32)
    for q0 in range(0, num_q, qbs):
        q = q_all[q0 : q0 + qbs]
        rows = int(q.shape[0])
        best_d = tf.zeros((rows, 0), tf.float32)
        best_i = tf.zeros((rows, 0), tf.int32)
        for g0 in range(0, num_g, gbs):
            g = g_all[g0 : g0 + gbs]
            d = _block_distances(q, g, distance)
            if leave_one_out and g0 < q0 + rows and q0 < g0 + int(g.shape[0]):
                row_ids = tf.range(q0, q0 + rows)[:, None]
                col_ids = tf.range(g0, g0 + int(g.shape[0]))[None, :]
                d = tf.where(tf.equal(row_ids, col_ids), inf, d)
            kk = min(k, int(g.shape[0]))
            neg, idx = tf.math.top_k(-d, kk)
            cand_d = tf.concat([best_d, -neg], axis=1)
            cand_i = tf.concat([best_i, idx + g0], axis=1)
            keep = min(k, int(cand_d.shape[1]))
            neg, pos = tf.math.top_k(-cand_d, keep)  # ties: earlier (lower index) first
            best_d = -neg
            best_i = tf.gather(cand_i, pos, batch_dims=1)
        if distance == "l2":
            best_d = tf.sqrt(best_d)
        yield q0, best_d.numpy(), best_i.numpy()


def knn_search(
    queries,
    gallery=None,
    k=8,
    distance="squared_l2",
    query_batch_size=1024,
    gallery_batch_size=16384,
):
    """Exact k nearest neighbours of every query in the gallery, tiled (see module docstring).

    Args:
        queries: ``(Q, D)`` embeddings.
        gallery: ``(G, D)`` embeddings, or ``None`` to search ``queries`` leave-one-out (a query
            never finds itself).
        k: neighbours per query (capped at the gallery size).
        distance: ``"squared_l2"``, ``"l2"`` or ``"cosine"``.
        query_batch_size, gallery_batch_size: tile sizes (memory is their product).

    Returns:
        ``(distances (Q, k) float32 ascending, indices (Q, k) int32 into the gallery)``.

    Example:
        >>> d, i = knn_search(test_emb, train_emb, k=5)
    """
    leave_one_out = gallery is None
    gallery = queries if leave_one_out else gallery
    num_g = len(gallery) - (1 if leave_one_out else 0)
    k = int(min(k, num_g))
    if k < 1:
        raise ValueError(f"k must be >= 1 and the gallery non-empty. Received: k={k}")
    out_d, out_i = [], []
    for _, d, i in _search_blocks(
        queries, gallery, k, distance, leave_one_out, query_batch_size, gallery_batch_size
    ):
        out_d.append(d)
        out_i.append(i)
    return np.concatenate(out_d), np.concatenate(out_i)


# === Retrieval metrics ===


def retrieval_metrics(
    embeddings,
    labels,
    gallery_embeddings=None,
    gallery_labels=None,
    ks=(1, 2, 4, 8),
    distance="squared_l2",
    map_at_r=True,
    query_batch_size=512,
    gallery_batch_size=16384,
):
    """Recall@k and MAP@R of ``embeddings`` (queries) against a gallery, in one tiled search.

    Args:
        embeddings: ``(Q, D)`` query embeddings; labels: ``(Q,)``.
        gallery_embeddings, gallery_labels: the gallery; ``None`` = leave-one-out on the queries.
        ks: the k of recall@k.
        distance: ranking distance (``"squared_l2"`` and ``"l2"`` rank alike).
        map_at_r: also compute MAP@R (searches ``R`` = the largest class size neighbours).
        query_batch_size, gallery_batch_size: tile sizes.

    Returns:
        ``{"recall@1": ..., "recall@2": ..., ..., "map@r": ..., "num_queries": int}``.

    Example:
        >>> retrieval_metrics(emb, labels)["recall@1"]
    """
    labels = np.asarray(labels).reshape(-1)
    leave_one_out = gallery_embeddings is None
    g_labels = labels if leave_one_out else np.asarray(gallery_labels).reshape(-1)
    gallery = embeddings if leave_one_out else gallery_embeddings
    if len(labels) != len(embeddings) or len(g_labels) != len(gallery):
        raise ValueError("embeddings and labels must have the same length (queries and gallery)")
    ks = tuple(sorted(set(int(k) for k in ks)))
    classes, counts = np.unique(g_labels, return_counts=True)
    count_of = dict(zip(classes.tolist(), counts.tolist(), strict=True))
    r = np.array([count_of.get(int(c), 0) for c in labels]) - (1 if leave_one_out else 0)
    num_g = len(gallery) - (1 if leave_one_out else 0)
    k = max(ks)
    if map_at_r:
        k = max(k, int(r.max(initial=0)))
    k = min(k, num_g)
    hits = {kk: 0 for kk in ks}
    ap_sum, counted = 0.0, 0
    for q0, _, idx in _search_blocks(
        embeddings, gallery, k, distance, leave_one_out, query_batch_size, gallery_batch_size
    ):
        rows = slice(q0, q0 + len(idx))
        rel = g_labels[idx] == labels[rows, None]  # (b, k)
        valid = r[rows] > 0
        for kk in ks:
            hits[kk] += int(np.any(rel[:, :kk], axis=1)[valid].sum())
        if map_at_r:
            ranks = np.arange(1, rel.shape[1] + 1)
            within_r = ranks[None, :] <= r[rows, None]
            rel_r = rel & within_r
            precision = np.cumsum(rel_r, axis=1) / ranks[None, :]
            ap = np.sum(precision * rel_r, axis=1) / np.maximum(r[rows], 1)
            ap_sum += float(ap[valid].sum())
        counted += int(valid.sum())
    result = {f"recall@{kk}": hits[kk] / max(counted, 1) for kk in ks}
    if map_at_r:
        result["map@r"] = ap_sum / max(counted, 1)
    result["num_queries"] = counted
    return result


def recall_at_k(embeddings, labels, ks=(1, 2, 4, 8), **kwargs):
    """Recall@k only (see ``retrieval_metrics`` for the arguments).

    Returns:
        ``{"recall@1": float, ...}``.
    """
    result = retrieval_metrics(embeddings, labels, ks=ks, map_at_r=False, **kwargs)
    return {key: value for key, value in result.items() if key.startswith("recall@")}


def map_at_r(embeddings, labels, **kwargs):
    """MAP@R (see ``retrieval_metrics`` for the arguments). Returns a float."""
    return retrieval_metrics(embeddings, labels, ks=(1,), map_at_r=True, **kwargs)["map@r"]


# === Verification ===


def sample_verification_pairs(labels, num_pairs=6000, seed=0):
    """Balanced random pairs: half same-class, half different-class (no item with itself).

    Args:
        labels: ``(N,)`` class labels (at least one class with 2+ items, and 2+ classes).
        num_pairs: total pairs (same and different, half each).
        seed: sampling seed.

    Returns:
        ``(i, j, same)``: index arrays and a bool array, shuffled.
    """
    labels = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    by_class = {c: np.flatnonzero(labels == c) for c in classes}
    multi = [c for c in classes if len(by_class[c]) > 1]
    if not multi or len(classes) < 2:
        raise ValueError("verification pairs need a class with 2+ items and at least 2 classes")
    n_same = num_pairs // 2
    n_diff = num_pairs - n_same
    sizes = np.array([len(by_class[c]) for c in multi], float)
    cls = rng.choice(len(multi), n_same, p=sizes / sizes.sum())
    i_same, j_same = np.empty(n_same, int), np.empty(n_same, int)
    for t, c in enumerate(cls):
        a, b = rng.choice(by_class[multi[c]], 2, replace=False)
        i_same[t], j_same[t] = a, b
    i_diff = rng.integers(0, len(labels), n_diff)
    j_diff = rng.integers(0, len(labels), n_diff)
    clash = labels[i_diff] == labels[j_diff]
    while clash.any():
        j_diff[clash] = rng.integers(0, len(labels), int(clash.sum()))
        clash = labels[i_diff] == labels[j_diff]
    i = np.concatenate([i_same, i_diff])
    j = np.concatenate([j_same, j_diff])
    same = np.concatenate([np.ones(n_same, bool), np.zeros(n_diff, bool)])
    order = rng.permutation(len(i))
    return i[order], j[order], same[order]


def pair_distances(embeddings, i, j, distance="l2"):
    """Distances of the pairs ``(embeddings[i], embeddings[j])`` (NumPy, float64)."""
    a = np.asarray(embeddings, np.float64)[np.asarray(i)]
    b = np.asarray(embeddings, np.float64)[np.asarray(j)]
    if distance == "cosine":
        a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        return 1.0 - np.sum(a * b, axis=1)
    d2 = np.sum((a - b) ** 2, axis=1)
    if distance == "squared_l2":
        return d2
    if distance == "l2":
        return np.sqrt(d2)
    raise ValueError(f"distance must be one of {_SEARCH_DISTANCES}. Received: {distance!r}")


def _best_threshold(distances, same):
    """The threshold (accept ``d <= t``) of highest accuracy, midway between sorted values."""
    order = np.argsort(distances, kind="stable")
    d, s = distances[order], same[order]
    n = len(d)
    # accept the first m items (m = 0..n): correct = same among them + different after them
    same_cum = np.concatenate([[0], np.cumsum(s)])
    diff_after = (n - s.sum()) - np.concatenate([[0], np.cumsum(~s)])
    correct = same_cum + diff_after
    # only cut between distinct values
    cut_ok = np.concatenate([[True], d[1:] > d[:-1], [True]])
    correct = np.where(cut_ok, correct, -1)
    m = int(np.argmax(correct))
    if m == 0:
        return float(d[0]) - 1e-6
    if m == n:
        return float(d[-1]) + 1e-6
    return float(0.5 * (d[m - 1] + d[m]))


def verification_accuracy(distances, same, num_folds=10, seed=0):
    """LFW-protocol accuracy: threshold chosen on the other folds, applied to each fold.

    Args:
        distances: ``(P,)`` pair distances; same: ``(P,)`` bool (True = same class).
        num_folds: number of folds (10 in the LFW protocol).
        seed: fold assignment seed.

    Returns:
        ``(mean accuracy, std over folds, mean threshold)``.
    """
    distances = np.asarray(distances, np.float64).reshape(-1)
    same = np.asarray(same, bool).reshape(-1)
    if len(distances) != len(same) or len(same) < num_folds:
        raise ValueError("need as many labels as distances, and at least num_folds pairs")
    folds = np.random.default_rng(seed).permutation(len(same)) % num_folds
    accuracies, thresholds = [], []
    for f in range(num_folds):
        train, test = folds != f, folds == f
        t = _best_threshold(distances[train], same[train])
        accuracies.append(float(np.mean((distances[test] <= t) == same[test])))
        thresholds.append(t)
    return float(np.mean(accuracies)), float(np.std(accuracies)), float(np.mean(thresholds))


def val_at_far(distances, same, far=1e-3):
    """FaceNet's VAL at a target FAR (see module docstring).

    Returns:
        ``(val, actual far, threshold)``; the threshold accepts ``d < threshold``.
    """
    distances = np.asarray(distances, np.float64).reshape(-1)
    same = np.asarray(same, bool).reshape(-1)
    diff = np.sort(distances[~same])
    if len(diff) == 0 or same.sum() == 0:
        raise ValueError("val_at_far needs both same and different pairs")
    allowed = int(math.floor(far * len(diff) + 1e-9))
    threshold = float(diff[allowed]) if allowed < len(diff) else np.inf
    accepted = distances < threshold
    return (
        float(np.mean(accepted[same])),
        float(np.mean(accepted[~same])),
        threshold,
    )


def verification_metrics(distances, same, num_folds=10, far_targets=(1e-3,), seed=0):
    """Accuracy (LFW protocol), ROC AUC and VAL@FAR for pair distances.

    Args:
        distances: ``(P,)`` pair distances (smaller = more similar).
        same: ``(P,)`` bool, True for same-class pairs.
        num_folds: folds of the accuracy protocol.
        far_targets: FAR values for VAL@FAR.
        seed: fold seed.

    Returns:
        ``{"accuracy", "accuracy_std", "threshold", "roc_auc", "val@far=0.001", "far@0.001"
        (the FAR actually reached), "num_pairs"}``.
    """
    from sklearn.metrics import roc_auc_score

    distances = np.asarray(distances, np.float64).reshape(-1)
    same = np.asarray(same, bool).reshape(-1)
    accuracy, std, threshold = verification_accuracy(distances, same, num_folds, seed)
    result = {
        "accuracy": accuracy,
        "accuracy_std": std,
        "threshold": threshold,
        "roc_auc": float(roc_auc_score(same, -distances)),
    }
    for far in far_targets:
        val, actual, _ = val_at_far(distances, same, far)
        result[f"val@far={far:g}"] = val
        result[f"far@{far:g}"] = actual
    result["num_pairs"] = int(len(same))
    return result


# === Convenience ===


def compute_embeddings(model, images, batch_size=512):
    """``model`` applied to ``images`` in batches → float32 NumPy array.

    Args:
        model: a ``keras.Model`` / layer (called with ``training=False``) or any function of a
            float32 batch (e.g. ``lambda x: x.reshape(len(x), -1)`` for raw pixels).
        images: ``(N, ...)`` array.
        batch_size: rows per call.
    """
    import keras

    images = np.asarray(images)
    if images.dtype != np.float32:
        images = images.astype(np.float32)
    is_keras = isinstance(model, (keras.Model, keras.layers.Layer))
    out = []
    for s in range(0, len(images), batch_size):
        batch = images[s : s + batch_size]
        out.append(np.asarray(model(batch, training=False) if is_keras else model(batch)))
    return np.concatenate(out).astype(np.float32)


def evaluate_embeddings(
    embeddings,
    labels,
    gallery_embeddings=None,
    gallery_labels=None,
    ks=(1, 2, 4, 8),
    num_pairs=20000,
    far_targets=(1e-3,),
    distance="squared_l2",
    pair_distance="l2",
    seed=0,
):
    """Retrieval and verification of query embeddings in one dict.

    - ``recall@k``: the queries against the gallery when one is given (e.g. test queries, train
      gallery: the k-NN classification protocol), else leave-one-out among the queries;
    - ``map@r``: leave-one-out among the queries (Musgrave et al.'s protocol);
    - ``verification_*``: ``num_pairs`` balanced pairs sampled from the queries.

    Returns:
        ``{"recall@1", ..., "map@r", "num_queries", "verification_accuracy",
        "verification_roc_auc", "verification_val@far=0.001", ...}``.
    """
    embeddings = np.asarray(embeddings, np.float32)
    labels = np.asarray(labels).reshape(-1)
    result = retrieval_metrics(embeddings, labels, ks=ks, distance=distance, map_at_r=True)
    if gallery_embeddings is not None:
        recall = retrieval_metrics(
            embeddings, labels, gallery_embeddings, gallery_labels, ks, distance, map_at_r=False
        )
        result.update({k: v for k, v in recall.items() if k.startswith("recall@")})
    i, j, same = sample_verification_pairs(labels, num_pairs, seed)
    ver = verification_metrics(
        pair_distances(embeddings, i, j, pair_distance), same, far_targets=far_targets, seed=seed
    )
    result.update({f"verification_{k}": v for k, v in ver.items()})
    return result


def evaluate_encoder(
    encoder,
    images,
    labels,
    gallery_images=None,
    gallery_labels=None,
    batch_size=512,
    **kwargs,
):
    """``evaluate_embeddings`` of ``encoder``'s embeddings of ``images`` (and of the gallery).

    Args:
        encoder: a Keras tower or a function of a float32 batch (see ``compute_embeddings``).
        images, labels: the queries (e.g. the test split).
        gallery_images, gallery_labels: optional gallery (e.g. the train split).
        batch_size: inference batch size.
        **kwargs: ``evaluate_embeddings`` options (``ks``, ``num_pairs``, ``far_targets``...).

    Example:
        >>> evaluate_encoder(encoder, test.images, test.labels, train.images, train.labels)
    """
    emb = compute_embeddings(encoder, images, batch_size)
    gallery = None
    if gallery_images is not None:
        gallery = compute_embeddings(encoder, gallery_images, batch_size)
    return evaluate_embeddings(emb, labels, gallery, gallery_labels, **kwargs)


def plot_embeddings(
    embeddings,
    labels,
    path,
    class_names=None,
    max_points=2000,
    seed=0,
    title=None,
    perplexity=30.0,
):
    """2-D t-SNE of the embeddings, coloured by class, written as a PNG.

    Args:
        embeddings: ``(N, D)``; labels: ``(N,)``.
        path: output ``.png`` file (parents created).
        class_names: legend names by label (default the label values).
        max_points: random subsample size (t-SNE is quadratic).
        seed: subsample and t-SNE seed.
        title: plot title.
        perplexity: t-SNE perplexity (capped below the number of points).

    Returns:
        ``pathlib.Path`` of the PNG.
    """
    from zoo.metrics.plots import pyplot, save_figure

    plt = pyplot()
    from sklearn.manifold import TSNE

    embeddings = np.asarray(embeddings, np.float32)
    labels = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    if len(labels) > max_points:
        keep = rng.choice(len(labels), max_points, replace=False)
        embeddings, labels = embeddings[keep], labels[keep]
    n = len(labels)
    if n < 3:
        raise ValueError(f"plot_embeddings needs at least 3 points. Received: {n}")
    points = TSNE(
        n_components=2,
        perplexity=float(min(perplexity, (n - 1) / 3.0)),
        init="pca",
        random_state=seed,
    ).fit_transform(embeddings)
    fig, ax = plt.subplots(figsize=(7, 6), dpi=100)
    cmap = plt.get_cmap("tab10" if len(np.unique(labels)) <= 10 else "tab20")
    for i, c in enumerate(np.unique(labels)):
        mask = labels == c
        name = class_names[int(c)] if class_names is not None else str(c)
        ax.scatter(points[mask, 0], points[mask, 1], s=4, color=cmap(i % cmap.N), label=name)
    ax.legend(markerscale=3, fontsize=7, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"t-SNE of {n} embeddings")
    fig.tight_layout()
    return save_figure(fig, path)


def _make_callback_class():
    import keras

    class RetrievalMetricsCallback(keras.callbacks.Callback):
        """Write retrieval metrics of held-out data into the epoch logs (``val_recall@1`` ...).

        Use it to pick checkpoints or stop early on unseen classes (zero-shot):
        ``train(..., callbacks=[cb], monitor="val_recall@1", mode="max")``.

        Args:
            encoder: the embedding tower.
            images, labels: held-out data (leave-one-out retrieval among them).
            ks: recall@k values.
            prefix: log key prefix.
            map_at_r: also log ``{prefix}map@r``.
            every: evaluate every ``every`` epochs (the last value is repeated in between).
        """

        def __init__(
            self, encoder, images, labels, ks=(1,), prefix="val_", map_at_r=False, every=1
        ):
            super().__init__()
            self.encoder = encoder
            self.images = np.asarray(images)
            self.labels = np.asarray(labels)
            self.ks = tuple(ks)
            self.prefix = prefix
            self.map_at_r = bool(map_at_r)
            self.every = int(every)
            self.last = {}

        def on_epoch_end(self, epoch, logs=None):
            if logs is None:
                return
            if not self.last or (epoch + 1) % self.every == 0:
                emb = compute_embeddings(self.encoder, self.images)
                result = retrieval_metrics(emb, self.labels, ks=self.ks, map_at_r=self.map_at_r)
                result.pop("num_queries")
                self.last = {f"{self.prefix}{k}": float(v) for k, v in result.items()}
            logs.update(self.last)

    RetrievalMetricsCallback.__module__ = __name__
    return RetrievalMetricsCallback


def __getattr__(name):
    # The Keras callback is built on first use so the metric functions never import Keras.
    if name == "RetrievalMetricsCallback":
        value = _make_callback_class()
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
