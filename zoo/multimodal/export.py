"""Export of the multimodal towers with raw inputs: caption strings and waveforms.

``export_text_tower`` and ``export_audio_tower`` write a TF Serving SavedModel
(``root/name/<version>/``, the layout of ``zoo.export.export_saved_model``, with its
``manifest.json``) whose ``serving_default`` takes what a client has, not what the tower takes:

- **text**: input ``captions``, tf.string ``[batch]``; outputs ``outputs`` float32
  ``[batch, D]`` (the L2-normalised embedding) and ``token_ids`` int32 ``[batch, max_length]``
  (what the tower saw: 0 = padding, 1 = unknown word). The caption tokenizer
  (``zoo.multimodal.CaptionTokenizer``, the text family's word-level ``TextTokenizer``: Unicode
  lowercase, punctuation replaced by spaces, split on whitespace, truncated / padded to
  ``max_length``) runs inside the graph: it is the tokenizer's own ``TextVectorization`` layer,
  so the ids equal the Python tokenizer's. A SavedModel needs TensorFlow only to load.
- **audio**: input ``waveforms``, float32 ``[batch, config.num_samples, channels]`` (the layout
  of ``zoo.multimodal.audio.synthesize_audio``); output ``outputs`` float32 ``[batch, D]``.
  ``zoo.multimodal.audio.log_mel_spectrogram(waveforms, config)`` runs inside the graph before
  the tower, for the ``AudioConfig`` given (the tower's input must be that function's output
  shape).

Both are checked with ``zoo.export.verify_export``: the SavedModel runs in a fresh Python that
does not import zoo, fed the raw strings / waveforms, against the Keras pipeline (tokenizer or
``log_mel_spectrogram``, then the tower) within ``DEFAULT_TOLERANCES["saved_model"]`` (1e-4 x
max(1, max |output|); the token ids must be equal).

``model_fp32.tflite`` beside the SavedModel (builtin ops only, run with ai-edge-litert, checked
within 1e-4 the same way):

- **audio: waveforms in.** The short-time Fourier transform converts to builtin ops
  (``RFFT2D``, ``COMPLEX_ABS``, plus ``PADV2``, ``GATHER``, ``MUL``, ... for the framing and the
  Hann window; the mel matrix is a constant), so the file takes the same ``waveforms`` as the
  SavedModel. Should a config ever need an op that is not a builtin, the file falls back to
  spectrograms in and the manifest says so (``preprocessing.tflite``).
- **text: token ids in** (``tokens``, int32 ``[batch, max_length]``; tokenize outside, with
  ``CaptionTokenizer`` or the vocabulary in the manifest). The string graph does not convert
  with builtin ops: ``StringLower``, ``StaticRegexReplace`` (punctuation), ``StringSplitV2`` and
  ``RaggedTensorToTensor`` are TensorFlow (Select TF / Flex) ops, which the LiteRT interpreter
  of ai-edge-litert cannot run (it has no Flex delegate). The converter's list of blocking ops
  is stored in the manifest (``preprocessing.tflite.blocked_by``).

Example:
    >>> saved, report = export_text_tower(text_tower, CaptionTokenizer(), "saved_models",
    ...                                   "image_text_text_tower", captions[:8])
    >>> saved, report = export_audio_tower(audio_tower, "saved_models",
    ...                                    "image_audio_audio_tower", waveforms[:8])
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from zoo.export import (
    ExportMismatchError,
    export_saved_model,
    export_tflite,
    model_input_specs,
    next_version,
    verify_export,
)
from zoo.multimodal.audio import DEFAULT_AUDIO, AudioConfig, log_mel_spectrogram
from zoo.multimodal.captions import CaptionTokenizer
from zoo.text.tokenizer import WORD_LEVEL, TextTokenizer

__all__ = [
    "AUDIO_INPUT",
    "TEXT_INPUT",
    "TOKEN_IDS_OUTPUT",
    "CaptionTokenization",
    "LogMelSpectrogram",
    "build_audio_serving_model",
    "build_text_serving_model",
    "export_audio_tower",
    "export_text_tower",
]

TEXT_INPUT = "captions"
AUDIO_INPUT = "waveforms"
EMBEDDING_OUTPUT = "outputs"  # the name every single-output zoo export gives its output
TOKEN_IDS_OUTPUT = "token_ids"
TFLITE_FILE = "model_fp32.tflite"
_TOKENIZERS = {"CaptionTokenizer": CaptionTokenizer, "TextTokenizer": TextTokenizer}


# === Layers ===


@keras.saving.register_keras_serializable(package="zoo")
class CaptionTokenization(keras.layers.Layer):
    """Raw strings → token ids with a word-level ``TextTokenizer``, as a layer of the graph.

    Calls the tokenizer itself (its ``TextVectorization`` layer, tracked here so that an export
    holds the vocabulary table), so the ids are the tokenizer's.

    Args:
        tokenizer: an adapted word-level ``zoo.text.TextTokenizer`` (e.g. ``CaptionTokenizer``).

    Call:
        ``layer(strings)``: tf.string ``(B,)`` → int32 ``(B, tokenizer.sequence_length)``.

    Example:
        >>> CaptionTokenization(CaptionTokenizer())(tf.constant(["a red circle"]))  # (1, 16)
    """

    def __init__(self, tokenizer, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(tokenizer, TextTokenizer) or tokenizer.level != WORD_LEVEL:
            raise ValueError(
                "CaptionTokenization needs a word-level TextTokenizer. Received: "
                f"tokenizer={tokenizer!r}"
            )
        tokenizer(tf.constant([""]))  # raises when it has no vocabulary
        self.tokenizer = tokenizer
        # The tokenizer's own TextVectorization layer: tracked, so its lookup table is saved.
        self.vectorizer = tokenizer._layer
        self.sequence_length = int(tokenizer.sequence_length)

    def call(self, inputs):
        return self.tokenizer(inputs)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((inputs.shape[0], self.sequence_length), dtype="int32")

    def get_config(self):
        config = super().get_config()
        config.update(
            tokenizer={
                "class": type(self.tokenizer).__name__,
                "config": self.tokenizer.get_config(),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        kind = config["tokenizer"]["class"]
        if kind not in _TOKENIZERS:
            raise ValueError(f"unknown tokenizer class {kind!r}; known: {sorted(_TOKENIZERS)}")
        config["tokenizer"] = _TOKENIZERS[kind].from_config(config["tokenizer"]["config"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="zoo")
class LogMelSpectrogram(keras.layers.Layer):
    """``zoo.multimodal.audio.log_mel_spectrogram(waveforms, config)`` as a layer of the graph.

    Args:
        config: ``AudioConfig`` (default ``DEFAULT_AUDIO``).

    Call:
        ``layer(waveforms)``: float32 ``(B, samples, channels)`` → what ``log_mel_spectrogram``
        returns (``(B, frames, mel bins, channels)``).
    """

    def __init__(self, config=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        config = DEFAULT_AUDIO if config is None else config
        if isinstance(config, dict):
            config = AudioConfig(**config)
        if not isinstance(config, AudioConfig):
            raise TypeError(f"config must be an AudioConfig. Received: config={config!r}")
        self.config = config

    def call(self, waveforms):
        spectrograms = log_mel_spectrogram(waveforms, self.config)
        shape = spectrograms.shape
        if shape.rank is not None and all(d is not None for d in shape[1:]):
            # pins the static shape: the TFLite converter loses some dims of the framed STFT
            # (e.g. mono 16 kHz: (?, ?, mels, ?)) and a conv of unknown channels is no builtin
            spectrograms = tf.reshape(spectrograms, [-1, *shape[1:]])
        return spectrograms

    def get_config(self):
        config = super().get_config()
        config.update(config=dict(self.config._asdict()))
        return config


# === Serving models ===


def _check_tower(tower):
    if not isinstance(tower, keras.Model) or len(tower.inputs) != 1:
        raise ValueError(f"tower must be a single-input keras.Model. Received: tower={tower!r}")
    return tower.inputs[0]


def build_text_serving_model(tower, tokenizer, name=None):
    """Strings in: ``CaptionTokenization`` then the text tower, as one Keras model.

    Args:
        tower: the text tower (``build_clip(...).get_layer("tower_b")``): int32 ids
            ``(B, max_length)`` → unit-norm ``(B, D)``.
        tokenizer: the word-level tokenizer it was trained with (``CaptionTokenizer``); its
            ``sequence_length`` must be the tower's ``max_length``.
        name: model name (default ``"<tower>_strings"``).

    Returns:
        A functional ``keras.Model``: input ``"captions"`` tf.string ``(B,)`` → ``{"outputs":
        (B, D) embedding, "token_ids": int32 (B, max_length)}``.
    """
    spec = _check_tower(tower)
    if tuple(spec.shape[1:]) != (tokenizer.sequence_length,):
        raise ValueError(
            f"the tower takes ids of shape {tuple(spec.shape[1:])}, the tokenizer gives "
            f"({tokenizer.sequence_length},). Received: tokenizer={tokenizer!r}"
        )
    captions = keras.Input((), dtype="string", name=TEXT_INPUT)
    ids = CaptionTokenization(tokenizer, name="tokenize")(captions)
    outputs = {EMBEDDING_OUTPUT: tower(ids), TOKEN_IDS_OUTPUT: ids}
    return keras.Model(captions, outputs, name=name or f"{tower.name}_strings")


def build_audio_serving_model(tower, config=None, name=None):
    """Waveforms in: ``LogMelSpectrogram(config)`` then the audio tower, as one Keras model.

    Args:
        tower: the audio tower: log-mel ``(B, frames, mel bins, channels)`` → ``(B, D)``.
        config: the ``AudioConfig`` of the training spectrograms (default ``DEFAULT_AUDIO``);
            the input takes ``config.num_samples`` samples of the tower's channel count.
        name: model name (default ``"<tower>_waveforms"``).

    Returns:
        A functional ``keras.Model``: input ``"waveforms"`` float32
        ``(B, config.num_samples, channels)`` → ``(B, D)``.

    Raises:
        ValueError: ``log_mel_spectrogram`` of such waveforms does not have the tower's
            input shape.
    """
    spec = _check_tower(tower)
    config = DEFAULT_AUDIO if config is None else config
    channels = int(spec.shape[-1])
    waveforms = keras.Input((config.num_samples, channels), name=AUDIO_INPUT)
    spectrograms = LogMelSpectrogram(config, name="log_mel")(waveforms)
    if tuple(spectrograms.shape[1:]) != tuple(spec.shape[1:]):
        raise ValueError(
            f"log_mel_spectrogram of ({config.num_samples} samples, {channels} channels) gives "
            f"{tuple(spectrograms.shape[1:])}, the tower takes {tuple(spec.shape[1:])}. "
            f"Received: config={config!r}"
        )
    return keras.Model(waveforms, tower(spectrograms), name=name or f"{tower.name}_waveforms")


# === Export ===


def _blocking_ops(error):
    """The TensorFlow ops a failed builtin-only conversion names (``[]`` if none is named)."""
    text = str(error)
    listed = re.search(r"TF Select ops: ([^\n]+)", text)
    if listed:
        return sorted({op.strip() for op in listed.group(1).split(",") if op.strip()})
    return sorted(set(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", text)))


@contextlib.contextmanager
def _stderr_to(file):
    """Sends file descriptor 2 (where the converter's C++ code prints) to ``file``."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        os.dup2(file.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _try_tflite(model, path):
    """``export_tflite(model, path)`` (builtins only) → ``(path, None)``, or ``(None, ops)``
    with the blocking TensorFlow ops when the converter refuses (its expected error lines are
    kept off the console; they are in the exception it raises)."""
    with tempfile.TemporaryFile() as log:
        try:
            with _stderr_to(log):
                return export_tflite(model, path), None
        except ExportMismatchError:
            raise
        except Exception as error:  # the converter raises ConverterError (and others)
            ops = _blocking_ops(error)
            if not ops:
                raise
            return None, ops


def _export(
    serving,
    fallback,
    raw_sample,
    fallback_sample,
    root,
    name,
    *,
    version,
    preprocessing,
    metrics,
    config,
    tolerances,
    verbose,
):
    """SavedModel of ``serving`` + ``model_fp32.tflite`` of ``serving`` (or of ``fallback``
    where ``serving`` needs non-builtin ops), both verified; see the module docstring."""
    version = next_version(root, name) if version is None else version
    raw_name = model_input_specs(serving)[0][0]
    with tempfile.TemporaryDirectory(prefix="zoo-multimodal-") as tmp:
        converted, blocked = _try_tflite(serving, Path(tmp) / TFLITE_FILE)
        tflite_model, tflite_sample = (serving, raw_sample)
        if converted is None:
            converted = export_tflite(fallback, Path(tmp) / TFLITE_FILE)
            tflite_model, tflite_sample = (fallback, fallback_sample)
        input_name = model_input_specs(tflite_model)[0][0]
        tflite_info = {"file": TFLITE_FILE, "input": input_name}
        if blocked:
            tflite_info["blocked_by"] = blocked
            tflite_info["why"] = (
                f"the {raw_name} graph needs TensorFlow (Select TF) ops "
                f"{', '.join(blocked)}, which the builtin-only LiteRT runtime cannot run"
            )
        saved = export_saved_model(
            serving,
            root,
            name,
            version=version,
            image_input=False,
            preprocessing={**preprocessing, "tflite": tflite_info},
            metrics=metrics,
            config=config,
        )
        tflite = Path(shutil.move(str(converted), saved / TFLITE_FILE))
    saved_report = verify_export(serving, raw_sample, saved_model_dir=saved, tolerances=tolerances)
    tflite_report = verify_export(
        tflite_model, tflite_sample, tflite_paths=[tflite], tolerances=tolerances
    )
    report = {
        "ok": True,
        "failures": [],
        "saved_model": saved_report["saved_model"],
        "tflite": tflite_report["tflite"],
        "tflite_input": input_name,
        "tflite_blocked_by": blocked,
    }
    if verbose:
        print(
            f"exported {saved} ({raw_name} in; + {TFLITE_FILE}, {input_name} in); "
            "verify_export passed"
        )
    return saved, report


def export_text_tower(
    tower,
    tokenizer,
    root,
    name,
    captions,
    *,
    version=None,
    preprocessing=None,
    metrics=None,
    config=None,
    tolerances=None,
    verbose=True,
):
    """SavedModel (caption strings in) + ``model_fp32.tflite`` (token ids in), verified.

    Args:
        tower: the text tower (int32 ids → unit-norm embedding).
        tokenizer: the ``CaptionTokenizer`` (word-level ``TextTokenizer``) it was trained with.
        root, name: TF Serving model root and model name (files go to ``root/name/<version>/``).
        captions: a few strings for the parity check (include unknown words and captions longer
            than ``max_length`` to check the tokenization too).
        version: TF Serving version; ``None`` takes the next free one.
        preprocessing, metrics, config: extra ``manifest.json`` fields (``preprocessing`` is
            merged over the tokenizer's description: rule, vocabulary, ``max_length``).
        tolerances: ``verify_export`` tolerances.
        verbose: print where the files went.

    Returns:
        ``(saved_model_dir, report)``: ``report`` holds the ``saved_model`` and ``tflite``
        entries of ``verify_export`` and ``tflite_input`` / ``tflite_blocked_by``.

    Raises:
        ExportMismatchError: an artifact disagrees with the Keras pipeline.
    """
    serving = build_text_serving_model(tower, tokenizer)
    captions = [str(c) for c in captions]
    description = {
        "input": "raw caption strings, tokenized inside the graph",
        "tokenizer": (
            "zoo.text.TextTokenizer, word level: Unicode lowercase, punctuation replaced by "
            "spaces, split on whitespace, truncated / padded to max_length; 0 = padding, "
            "1 = unknown"
        ),
        "vocabulary": list(tokenizer.vocabulary),
        "max_length": int(tokenizer.sequence_length),
    }
    return _export(
        serving,
        tower,
        np.asarray(captions, dtype=object),
        np.asarray(tokenizer(captions)),
        root,
        name,
        version=version,
        preprocessing={**description, **(preprocessing or {})},
        metrics=metrics,
        config=config,
        tolerances=tolerances,
        verbose=verbose,
    )


def export_audio_tower(
    tower,
    root,
    name,
    waveforms,
    audio_config=None,
    *,
    version=None,
    preprocessing=None,
    metrics=None,
    config=None,
    tolerances=None,
    verbose=True,
):
    """SavedModel + ``model_fp32.tflite`` of the audio tower with waveforms in, verified.

    Args:
        tower: the audio tower (log-mel spectrogram → unit-norm embedding).
        root, name: TF Serving model root and model name (files go to ``root/name/<version>/``).
        waveforms: float32 ``(B, audio_config.num_samples, channels)`` for the parity check
            (e.g. ``zoo.multimodal.audio.synthesize_audio`` of a few scenes).
        audio_config: the ``AudioConfig`` of the training spectrograms (default
            ``DEFAULT_AUDIO``).
        version: TF Serving version; ``None`` takes the next free one.
        preprocessing, metrics, config: extra ``manifest.json`` fields (``preprocessing`` is
            merged over the audio settings).
        tolerances: ``verify_export`` tolerances.
        verbose: print where the files went.

    Returns:
        ``(saved_model_dir, report)`` as ``export_text_tower``.

    Raises:
        ExportMismatchError: an artifact disagrees with the Keras pipeline.
    """
    audio_config = DEFAULT_AUDIO if audio_config is None else audio_config
    serving = build_audio_serving_model(tower, audio_config)
    waveforms = np.asarray(waveforms, np.float32)
    description = {
        "input": "float32 waveforms (batch, num_samples, channels) at sample_rate",
        "spectrogram": "zoo.multimodal.audio.log_mel_spectrogram, inside the graph",
        "audio_config": dict(audio_config._asdict()),
    }
    return _export(
        serving,
        tower,
        waveforms,
        np.asarray(log_mel_spectrogram(waveforms, audio_config)),
        root,
        name,
        version=version,
        preprocessing={**description, **(preprocessing or {})},
        metrics=metrics,
        config=config,
        tolerances=tolerances,
        verbose=verbose,
    )
