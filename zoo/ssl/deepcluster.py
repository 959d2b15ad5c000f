"""DeepCluster (Caron et al. 2018): pseudo-labels from k-means on the encoder's own features.

Two pieces trained by plain ``fit()``:

- ``DeepCluster`` (a ``keras.Model``): images → encoder → [ReLU MLP of ``hidden_units``, the
  paper's fc6/fc7] → ``Dense(k)`` head. Its non-trainable weight ``pseudo_labels`` holds one
  cluster index per training image; ``fit`` takes ``(images, example_ids)`` pairs and the train
  step looks each id's label up there, so a new clustering is picked up by the next batch without
  rebuilding the dataset (``model.fit(images, np.arange(N))`` works as it is). The encoder and MLP
  train with the ``compile`` optimizer; the head has its own (``head_optimizer``), whose state is
  reset with the head. ``augment_options`` (``simclr_augment`` keyword arguments) augments every
  training batch inside the step.
- ``DeepClusterCallback``: at the start of every ``every``-th epoch it

  1. embeds all training images with the current trunk (inference mode);
  2. PCA-whitens and L2-normalises the features and clusters them into ``k`` groups
     (``zoo.ssl.kmeans``: k-means++, Lloyd, empty clusters re-seeded from the farthest points);
  3. writes the clusters into ``model.pseudo_labels``;
  4. re-initialises the head (weights ~ N(0, 0.01²), bias 0) and its optimizer's state, as the
     paper re-creates the top layer; with ``head_warmup_steps`` the new head is then fitted
     alone on the features just computed (no image passes through the encoder);

  and every epoch it re-draws the order of ``callback.dataset(batch_size)``: ``num_samples``
  images drawn cluster-balanced (``cluster_balanced_indices``, the paper's ``UnifLabelSampler``),
  so one giant cluster cannot take the whole signal.

Epoch logs, besides ``loss`` and ``accuracy`` (on the pseudo-labels): ``nmi_previous`` (NMI of
this clustering against the previous one: how stable the assignments are; NaN for the first),
``nmi`` (against the true classes, when the callback has ``labels``), ``inertia``,
``nonempty_clusters``, ``head_warmup_loss`` (with a warm-up) and ``clustering_seconds``.

Resuming with ``keras.callbacks.BackupAndRestore`` restores the weights, the optimizers and
``pseudo_labels``; a fresh callback clusters again at the first resumed epoch.

Example:
    >>> model = DeepCluster(build_ssl_encoder((28, 28, 1)), k=100, num_examples=len(x_train))
    >>> model.compile(keras.optimizers.SGD(0.05, momentum=0.9))
    >>> clusters = DeepClusterCallback(x_train, labels=y_train)
    >>> model.fit(clusters.dataset(256), epochs=10, callbacks=[clusters])
    >>> model.encoder                                # the trained encoder

Reference:
    Caron, Bojanowski, Joulin, Douze, "Deep Clustering for Unsupervised Learning of Visual
    Features", ECCV 2018.
"""

from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from zoo.metrics.clustering import normalized_mutual_info
from zoo.ops.checks import check_int, encoder_feature_dim
from zoo.ops.random import as_seed
from zoo.ssl.base import EncoderTaskModel
from zoo.ssl.kmeans import cluster_balanced_indices, kmeans, preprocess_features
from zoo.ssl.simclr import AUGMENT_DEFAULTS, simclr_augment

__all__ = ["DeepCluster", "DeepClusterCallback"]


def _as_array(images, name="images"):
    if isinstance(images, tf.data.Dataset):
        batches = [np.asarray(b) for b in images.as_numpy_iterator()]
        if not batches:
            raise ValueError(f"{name}: the dataset is empty")
        images = np.concatenate(batches) if batches[0].ndim == 4 else np.stack(batches)
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(
            f"{name} must be (N, height, width, channels) images. Received shape {images.shape}"
        )
    return images


def _augment_options(options):
    """``None``, or a JSON-friendly copy of ``simclr_augment`` keyword arguments."""
    if options is None:
        return None
    unknown = sorted(set(options) - set(AUGMENT_DEFAULTS))
    if not isinstance(options, dict) or unknown:
        raise ValueError(
            f"augment_options must be None or a dict with keys among {sorted(AUGMENT_DEFAULTS)}. "
            f"Received: augment_options={options!r}"
        )
    return {k: list(v) if isinstance(v, (tuple, list)) else v for k, v in options.items()}


def _cross_entropy(labels, logits):
    """Mean soft-max cross-entropy of float32 logits against the cluster indices."""
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    )


@keras.saving.register_keras_serializable(package="zoo")
class DeepCluster(EncoderTaskModel):
    """Encoder + [MLP] + k-way head trained on k-means pseudo-labels (see the module docstring).

    Every constructor argument is an attribute and is returned by ``get_config`` (the encoder
    serialised inside), so ``.keras`` files round-trip, ``pseudo_labels`` included.

    Args:
        encoder: a built ``keras.Model``: float32 images 0–255 → ``(B, D)`` features.
        k: number of clusters (the paper: 10× the classes works well).
        num_examples: training images: the length of ``pseudo_labels`` (example ids
            ``0 … num_examples − 1``).
        hidden_units: sizes of a ReLU MLP between the encoder and the head (the paper's
            fc6/fc7, 4096 each on AlexNet): trained with the encoder, never reset, and k-means
            runs on its output; ``()`` clusters the encoder's features.
        augment_options: ``None`` (no augmentation) or ``simclr_augment`` keyword arguments
            (``{}``: SimCLR's defaults), applied to every training batch with the seed
            ``fold_in([seed, 2], optimizer.iterations)``.
        seed: base seed of the augmentation.
        name: model name.

    Call:
        ``model(images)`` → ``(B, k)`` float32 logits; ``model.trunk(images)`` → the features
        that k-means clusters; ``model.encoder`` → the encoder.
    """

    def __init__(
        self,
        encoder,
        k,
        num_examples,
        hidden_units=(),
        augment_options=None,
        seed=0,
        name="deepcluster",
        **kwargs,
    ):
        super().__init__(name, **kwargs)
        # === Config ===
        encoder_feature_dim(encoder)
        self.encoder = encoder
        self.k = check_int("k", k, minimum=2)
        self.num_examples = check_int("num_examples", num_examples)
        try:
            self.hidden_units = tuple(check_int("hidden_units", u) for u in hidden_units or ())
        except (TypeError, ValueError):
            raise ValueError(
                f"hidden_units must be positive integers. Received: hidden_units={hidden_units!r}"
            ) from None
        self.augment_options = _augment_options(augment_options)
        self.seed = check_int("seed", seed, minimum=0)
        # === Layers ===
        images = keras.Input(tuple(encoder.input_shape[1:]), name="images")
        features = encoder(images)
        self.mlp = [
            keras.layers.Dense(units, activation="relu", name=f"deepcluster_fc{i + 1}")
            for i, units in enumerate(self.hidden_units)
        ]
        for layer in self.mlp:
            features = layer(features)
        self.trunk = keras.Model(images, features, name="deepcluster_trunk")
        self.head = keras.layers.Dense(self.k, dtype="float32", name="deepcluster_head")
        self.head.build(tuple(features.shape))
        self.pseudo_labels = self.add_weight(
            shape=(self.num_examples,),
            dtype="int32",
            initializer="zeros",
            trainable=False,
            name="pseudo_labels",
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="accuracy")
        self.head_optimizer = None
        self._head_step_fn = None
        self.built = True

    def build(self, input_shape=None):
        self.built = True

    def call(self, images, training=False):
        return tf.cast(self.head(self.trunk(images, training=training)), tf.float32)

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    # === Training ===

    def compile(self, optimizer=None, head_optimizer=None, **kwargs):
        """``optimizer`` (default the paper's ``SGD(0.05, momentum=0.9)``) trains the encoder and
        MLP; ``head_optimizer`` (default a fresh copy of ``optimizer``'s config) the head."""
        if optimizer is None:
            optimizer = keras.optimizers.SGD(learning_rate=0.05, momentum=0.9)
        optimizer = keras.optimizers.get(optimizer)
        if head_optimizer is None:
            head_optimizer = optimizer.__class__.from_config(optimizer.get_config())
        super().compile(optimizer=optimizer, **kwargs)
        self.head_optimizer = keras.optimizers.get(head_optimizer)
        self.optimizer.build(self.trunk.trainable_variables)
        self.head_optimizer.build(self.head.trainable_variables)
        self._head_optimizer_initial = [v.numpy() for v in self.head_optimizer.variables]
        self._head_step_fn = None
        self._optimizers = {"optimizer": optimizer, "head_optimizer": self.head_optimizer}

    def get_compile_config(self):
        if not self.compiled:
            return None
        return keras.saving.serialize_keras_object(self._optimizers)

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))

    def _inputs(self, data, training):
        images, ids, _ = keras.utils.unpack_x_y_sample_weight(data)
        if ids is None:
            raise ValueError("DeepCluster trains on (images, example_ids) pairs; no ids given.")
        ids = tf.cast(tf.reshape(ids, [-1]), tf.int32)
        labels = tf.gather(tf.convert_to_tensor(self.pseudo_labels), ids)
        x = tf.cast(images, tf.float32)
        if training and self.augment_options is not None:
            step = tf.cast(tf.convert_to_tensor(self.optimizer.iterations), tf.int64)
            base = as_seed(tf.constant([self.seed, 2], tf.int64))
            seed = tf.random.experimental.stateless_fold_in(base, step)
            x = simclr_augment(x, seed, **self.augment_options)
        return x, labels

    def _update_metrics(self, loss, labels, logits):
        hits = tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), labels)
        self.loss_tracker.update_state(loss)
        self.accuracy_tracker.update_state(tf.reduce_mean(tf.cast(hits, tf.float32)))
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x, labels = self._inputs(data, training=True)
        replicas = float(tf.distribute.get_strategy().num_replicas_in_sync)
        trunk_vars = self.trunk.trainable_variables
        head_vars = self.head.trainable_variables
        with tf.GradientTape() as tape:
            logits = self(x, training=True)
            loss = _cross_entropy(labels, logits)
            total = loss + tf.add_n([tf.cast(v, tf.float32) for v in self.losses] or [0.0])
            # gradients are summed over replicas: each one contributes 1/replicas of the mean
            scaled = self.optimizer.scale_loss(total / replicas)
        gradients = tape.gradient(scaled, trunk_vars + head_vars)
        unscale = self.optimizer.scale_loss(tf.constant(1.0))  # a LossScaleOptimizer's factor
        self.optimizer.apply_gradients(zip(gradients[: len(trunk_vars)], trunk_vars, strict=True))
        head_gradients = [g / unscale for g in gradients[len(trunk_vars) :]]
        self.head_optimizer.apply_gradients(zip(head_gradients, head_vars, strict=True))
        return self._update_metrics(loss, labels, logits)

    def test_step(self, data):
        x, labels = self._inputs(data, training=False)
        logits = self(x, training=False)
        return self._update_metrics(_cross_entropy(labels, logits), labels, logits)

    # === Head ===

    def reset_head(self, seed):
        """Re-initialise the head (N(0, 0.01²) kernel, zero bias) and its optimizer's state.
        ``seed``: an int or a shape-[2] integer tensor."""
        kernel = self.head.kernel
        kernel.assign(tf.random.stateless_normal(kernel.shape, as_seed(seed), stddev=0.01))
        self.head.bias.assign(tf.zeros_like(self.head.bias))
        if self.head_optimizer is not None:
            for variable, value in zip(
                self.head_optimizer.variables, self._head_optimizer_initial, strict=True
            ):
                variable.assign(value)

    def warm_head(self, features, pseudo_labels, steps, batch_size=256, seed=0):
        """``steps`` steps of ``head_optimizer`` on the head alone, on already computed trunk
        ``features`` and their ``pseudo_labels`` (batches drawn cluster-balanced), so that
        joint training starts from a head that predicts the new labels instead of a random one.
        Returns the last step's loss (NaN without steps)."""
        if self.head_optimizer is None:
            raise ValueError("compile() the model before warm_head().")
        if self._head_step_fn is None:
            self._head_step_fn = tf.function(self._head_step, reduce_retracing=True)
        features = tf.convert_to_tensor(features, tf.float32)
        labels = tf.convert_to_tensor(np.asarray(pseudo_labels, np.int32))
        indices = cluster_balanced_indices(pseudo_labels, steps * batch_size, seed)
        loss = float("nan")
        for step in range(steps):
            batch = indices[step * batch_size : (step + 1) * batch_size]
            loss = self._head_step_fn(tf.gather(features, batch), tf.gather(labels, batch))
        return float(loss)

    def _head_step(self, features, labels):
        variables = self.head.trainable_variables
        with tf.GradientTape() as tape:
            loss = _cross_entropy(labels, tf.cast(self.head(features), tf.float32))
        gradients = tape.gradient(loss, variables)
        self.head_optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return loss

    # === Config ===

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "k": self.k,
            "num_examples": self.num_examples,
            "hidden_units": list(self.hidden_units),
            "augment_options": self.augment_options,
            "seed": self.seed,
        }


class DeepClusterCallback(keras.callbacks.Callback):
    """Re-clusters the training images and re-assigns ``model.pseudo_labels`` (see the module
    docstring); attach it to ``fit`` of a compiled ``DeepCluster``.

    Put it before callbacks that read the epoch logs (``CSVLogger``) or time the gap between
    epochs (``zoo.training.callbacks.TimeBudget``, which then reserves the clustering time).

    Args:
        images: ``(N, H, W, C)`` training images 0–255 (array, or a ``tf.data.Dataset`` of
            images / image batches, materialised), in example-id order; ``N`` must be the
            model's ``num_examples``.
        labels: optional ``(N,)`` true classes, only for the ``nmi`` log.
        every: cluster at epochs ``0, every, 2·every, …`` (and at the first epoch of a run).
        pca_dim, whiten, kmeans_iterations: clustering settings (paper: 256, True, 20).
        head_warmup_steps: head-only steps after each reset (``DeepCluster.warm_head``; 0, the
            paper's way, skips it); ``warmup_batch_size``: their batch size.
        num_samples: images per epoch of ``dataset()`` (default ``N``).
        feature_batch_size: batch size when embedding the images.
        seed: seeds k-means, the head, the warm-up and the sampler (epoch ``e`` uses its own
            stream derived from ``(seed, e)``).
        verbose: 1 prints one line per clustering.

    Attributes:
        assignments: the latest clustering (``(N,)`` int32 NumPy) or None.
        history: per-clustering logs (name → list).
    """

    def __init__(
        self,
        images,
        labels=None,
        every=1,
        pca_dim=256,
        whiten=True,
        kmeans_iterations=20,
        head_warmup_steps=0,
        warmup_batch_size=256,
        num_samples=None,
        feature_batch_size=512,
        seed=0,
        verbose=0,
    ):
        super().__init__()
        self.images = _as_array(images)
        n = len(self.images)
        if labels is not None:
            labels = np.asarray(labels).reshape(-1)
            if labels.shape[0] != n:
                raise ValueError(
                    f"labels must have one entry per image: {labels.shape[0]} labels for {n} images"
                )
        self.labels = labels
        self.every = check_int("every", every)
        self.pca_dim = None if pca_dim is None else check_int("pca_dim", pca_dim)
        self.whiten = bool(whiten)
        self.kmeans_iterations = check_int("kmeans_iterations", kmeans_iterations, minimum=0)
        self.head_warmup_steps = check_int("head_warmup_steps", head_warmup_steps, minimum=0)
        self.warmup_batch_size = check_int("warmup_batch_size", warmup_batch_size)
        self.num_samples = n if num_samples is None else check_int("num_samples", num_samples)
        self.feature_batch_size = check_int("feature_batch_size", feature_batch_size)
        self.seed = check_int("seed", seed, minimum=0)
        self.verbose = verbose
        self.assignments = None
        self.history = {}
        self._logs = {}
        self._order = None

    # --- pieces ---

    def embed(self):
        """``(N, D)`` float32 trunk features of the images (inference mode)."""
        features = self.model.trunk.predict(
            self.images, batch_size=self.feature_batch_size, verbose=0
        )
        return np.asarray(features, np.float32)

    def cluster(self, features, epoch=0):
        """PCA-whiten, normalise and k-means ``features``: a ``KMeansResult``."""
        x = preprocess_features(features, pca_dim=self.pca_dim, whiten=self.whiten)
        return kmeans(x, self.model.k, iterations=self.kmeans_iterations, seed=self.seed + epoch)

    def dataset(self, batch_size):
        """``tf.data`` of ``(images, example_ids)`` batches for ``fit``: ``num_samples //
        batch_size`` full batches per epoch, drawn cluster-balanced from the latest clustering
        and re-drawn at every epoch (uniform before the first)."""
        batch_size = check_int("batch_size", batch_size)
        steps = self.num_samples // batch_size
        if steps < 1:
            raise ValueError(
                f"batch_size={batch_size} is larger than the samples per epoch ({self.num_samples})"
            )
        # a lookup table, not a variable: a strategy scope would mirror a variable onto the
        # accelerators, where tf.data (on the host) cannot read it
        with tf.init_scope(), tf.device("/CPU:0"):
            if self._order is None:
                self._order = tf.lookup.experimental.MutableHashTable(tf.int64, tf.int64, 0)
                self._set_order(np.arange(self.num_samples) % len(self.images))
            images = tf.constant(self.images)
        order = self._order

        def batch(step):
            ids = order.lookup(tf.range(step * batch_size, (step + 1) * batch_size))
            ids = tf.ensure_shape(ids, [batch_size])
            return tf.gather(images, ids), ids

        return tf.data.Dataset.range(steps).map(batch).prefetch(tf.data.AUTOTUNE)

    # --- Keras hooks ---

    def on_train_begin(self, logs=None):
        if getattr(self.model, "num_examples", None) != len(self.images):
            raise ValueError(
                f"DeepClusterCallback has {len(self.images)} images; the model's num_examples is "
                f"{getattr(self.model, 'num_examples', None)}"
            )
        if getattr(self.model, "head_optimizer", None) is None:
            raise ValueError("compile() the DeepCluster model before fit().")

    def on_epoch_begin(self, epoch, logs=None):
        if self.assignments is None or epoch % self.every == 0:
            self._recluster(epoch)
        if self._order is not None:
            self._set_order(
                cluster_balanced_indices(self.assignments, self.num_samples, self.seed + epoch)
            )

    def _set_order(self, ids):
        with tf.device("/CPU:0"):
            self._order.insert(
                tf.range(self.num_samples, dtype=tf.int64), tf.constant(ids, tf.int64)
            )

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(self._logs)

    def _recluster(self, epoch):
        start = time.perf_counter()
        features = self.embed()
        result = self.cluster(features, epoch)
        assignments = result.assignments.numpy()
        previous = self.assignments
        logs = {
            "nmi_previous": float("nan")
            if previous is None
            else normalized_mutual_info(previous, assignments),
            "inertia": result.inertia,
            "nonempty_clusters": int(np.unique(assignments).size),
        }
        if self.labels is not None:
            logs["nmi"] = normalized_mutual_info(self.labels, assignments)
        self.assignments = assignments
        self.model.pseudo_labels.assign(assignments)
        self.model.reset_head(tf.constant([self.seed, 1_000_003 + epoch], tf.int64))
        if self.head_warmup_steps:
            logs["head_warmup_loss"] = self.model.warm_head(
                features,
                assignments,
                self.head_warmup_steps,
                self.warmup_batch_size,
                seed=self.seed + 7919 * (epoch + 1),
            )
        logs["clustering_seconds"] = time.perf_counter() - start
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        self._logs = logs
        if self.verbose:
            print(
                f"DeepCluster epoch {epoch + 1}: "
                + ", ".join(f"{key}={value:.4g}" for key, value in logs.items())
            )
