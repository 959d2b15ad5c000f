"""zoo.multimodal.export: text tower with strings in, audio tower with waveforms in, verified
in a process without zoo, and their .tflite files run with LiteRT."""

import json

import numpy as np
import pytest
import tensorflow as tf

from zoo.export import read_manifest, run_saved_model_subprocess, run_tflite
from zoo.multimodal.audio import DEFAULT_AUDIO, AudioConfig, log_mel_spectrogram, synthesize_audio
from zoo.multimodal.captions import CaptionTokenizer, scene_captions
from zoo.multimodal.export import (
    CaptionTokenization,
    LogMelSpectrogram,
    build_audio_serving_model,
    build_text_serving_model,
    export_audio_tower,
    export_text_tower,
)
from zoo.multimodal.model import build_audio_encoder, build_caption_encoder, build_clip
from zoo.multimodal.scenes import sample_scenes
from zoo.text.tokenizer import TextTokenizer

TOLERANCE = 1e-4  # DEFAULT_TOLERANCES["saved_model"] and ["float32"]: 1e-4 x max(1, max |ref|)
UNKNOWN_AND_LONG = [
    "A Zebra-striped CIRCLE, on the left!",  # unknown words, case, punctuation
    "the blue square " * 8,  # 24 words: truncated to 16
    "",  # all padding
    "  a   photo\tof a\ncross  ",  # odd whitespace
    "Ünïcode ROT on the right",  # unicode lowercasing, unknown words
]


def sample_captions():
    return scene_captions(sample_scenes(6, seed=3), seed=3) + UNKNOWN_AND_LONG


def python_ids(tokenizer, texts):
    """The tokenizer's ids built in Python from its words: vocabulary index, unknown = 1,
    truncated / padded to ``sequence_length``."""
    length = tokenizer.sequence_length
    rows = []
    for words in tokenizer.split(texts):
        ids = [tokenizer.token_id(w) for w in words][:length]
        rows.append(ids + [tokenizer.pad_id] * (length - len(ids)))
    return np.array(rows, np.int32)


@pytest.fixture(scope="module")
def towers():
    tokenizer = CaptionTokenizer()
    clip = build_clip(
        build_audio_encoder((32, 32, 2), embedding_dim=8, width=4),
        build_caption_encoder(
            tokenizer.vocabulary_size, tokenizer.max_length, embedding_dim=8, width=4
        ),
        projection_dim=8,
    )
    return clip.get_layer("tower_a"), clip.get_layer("tower_b"), tokenizer


def waveforms(num=4, config=None):
    attributes = sample_scenes(num, seed=1)
    seeds = np.stack([np.full(num, 5), np.arange(num)], axis=1)
    return np.asarray(synthesize_audio(attributes, seeds, config))


# === Text: strings in ===


def test_graph_tokenization_equals_python_tokenizer(towers):
    _, _, tokenizer = towers
    captions = sample_captions()
    expected = python_ids(tokenizer, captions)
    assert (expected == 1).any() and (expected[:, -1] != 0).any()  # unknown words, truncation
    layer = CaptionTokenization(tokenizer)
    graph = tf.function(layer, input_signature=[tf.TensorSpec([None], tf.string)])
    np.testing.assert_array_equal(graph(tf.constant(captions)).numpy(), expected)
    np.testing.assert_array_equal(np.asarray(tokenizer(captions)), expected)


def test_text_serving_model_matches_tower(towers):
    _, text_tower, tokenizer = towers
    model = build_text_serving_model(text_tower, tokenizer)
    captions = sample_captions()
    out = model(np.asarray(captions, dtype=object))
    np.testing.assert_array_equal(np.asarray(out["token_ids"]), python_ids(tokenizer, captions))
    np.testing.assert_allclose(
        np.asarray(out["outputs"]), np.asarray(text_tower(tokenizer(captions))), atol=1e-6
    )


def test_text_serving_model_checks_the_tokenizer(towers):
    _, text_tower, _ = towers
    with pytest.raises(ValueError, match="tokenizer gives"):
        build_text_serving_model(text_tower, CaptionTokenizer(8))
    with pytest.raises(ValueError, match="word-level"):
        CaptionTokenization(TextTokenizer("char", 16, vocabulary=list("abc")))
    with pytest.raises(ValueError, match="adapt"):
        CaptionTokenization(TextTokenizer("word", 16))


def test_caption_tokenization_config_round_trip(towers):
    _, _, tokenizer = towers
    layer = CaptionTokenization(tokenizer, name="tokenize")
    clone = CaptionTokenization.from_config(json.loads(json.dumps(layer.get_config())))
    captions = tf.constant(sample_captions())
    np.testing.assert_array_equal(clone(captions).numpy(), layer(captions).numpy())


@pytest.mark.slow
def test_export_text_tower_takes_strings(towers, tmp_path):
    _, text_tower, tokenizer = towers
    captions = sample_captions()
    # the verification batch leaves out "": an untrained tower embeds it as zeros, which the
    # id-in .tflite normalises to NaN (the SavedModel gives zeros; checked below)
    nonempty = [c for c in captions if c]
    saved, report = export_text_tower(
        text_tower, tokenizer, tmp_path, "text_tower", nonempty, verbose=False
    )
    assert saved == tmp_path / "text_tower" / "1"
    manifest = read_manifest(saved)
    signature = manifest["signatures"]["serving_default"]
    assert signature["inputs"] == {"captions": {"dtype": "string", "shape": [None]}}
    assert signature["outputs"]["outputs"] == {"dtype": "float32", "shape": [None, 8]}
    assert signature["outputs"]["token_ids"] == {"dtype": "int32", "shape": [None, 16]}
    assert manifest["preprocessing"]["vocabulary"] == list(tokenizer.vocabulary)
    # verify_export ran the SavedModel without zoo on the raw strings
    entry = report["saved_model"]
    assert entry["subprocess"]["zoo_in_sys_modules"] is False
    assert entry["outputs"]["token_ids"]["max_abs"] == 0.0
    assert entry["outputs"]["outputs"]["max_abs"] <= TOLERANCE

    # and again here: ids equal the Python tokenizer's, embeddings the Keras tower's
    outputs, meta = run_saved_model_subprocess(saved, {"captions": captions})
    assert meta["zoo_in_sys_modules"] is False
    np.testing.assert_array_equal(outputs["token_ids"], python_ids(tokenizer, captions))
    expected = np.asarray(text_tower(tokenizer(captions)))
    np.testing.assert_allclose(outputs["outputs"], expected, atol=TOLERANCE)

    # the string graph needs Select TF ops, so the .tflite takes token ids
    tflite = manifest["preprocessing"]["tflite"]
    assert tflite["input"] == "tokens" and "StringSplitV2" in tflite["blocked_by"]
    assert report["tflite_blocked_by"] == tflite["blocked_by"]
    got = run_tflite(saved / "model_fp32.tflite", python_ids(tokenizer, nonempty))
    expected = np.asarray(text_tower(tokenizer(nonempty)))
    np.testing.assert_allclose(got["outputs"], expected, atol=TOLERANCE)


# === Audio: waveforms in ===


def test_audio_serving_model_calls_log_mel_spectrogram(towers):
    audio_tower, _, _ = towers
    model = build_audio_serving_model(audio_tower)
    assert tuple(model.input_shape) == (None, DEFAULT_AUDIO.num_samples, 2)
    w = waveforms()
    expected = np.asarray(audio_tower(log_mel_spectrogram(w, DEFAULT_AUDIO)))
    np.testing.assert_allclose(np.asarray(model(w)), expected, atol=1e-6)


def test_audio_serving_model_rejects_a_config_of_another_shape(towers):
    audio_tower, _, _ = towers
    with pytest.raises(ValueError, match="the tower takes"):
        build_audio_serving_model(audio_tower, AudioConfig(num_mel_bins=16))


@pytest.mark.slow
def test_mono_config_waveforms_in_tflite(tmp_path):
    """Another AudioConfig (mono, 16 kHz, other frames and mel bins) goes through the same
    function, and its waveform graph converts with builtin ops."""
    from zoo.export import export_tflite

    config = AudioConfig(
        sample_rate=16000,
        duration=0.25,
        frame_length=400,
        frame_step=160,
        num_mel_bins=24,
        lower_hz=60.0,
        upper_hz=7600.0,
        normalize=True,  # the per-utterance standardisation converts with builtin ops too
    )
    spectrogram_shape = tuple(
        log_mel_spectrogram(np.zeros((1, config.num_samples, 1)), config).shape[1:]
    )
    # SpecAugment is identity at inference: the exported graph holds none of its random ops
    tower = build_audio_encoder(spectrogram_shape, embedding_dim=8, width=4, augment=True)
    model = build_audio_serving_model(tower, config)
    w = waveforms(3, config)[..., :1]
    expected = np.asarray(tower(log_mel_spectrogram(w, config), training=False))
    np.testing.assert_allclose(np.asarray(model(w, training=False)), expected, atol=1e-6)
    path = export_tflite(model, tmp_path / "mono.tflite")
    got = run_tflite(path, {"waveforms": w})
    np.testing.assert_allclose(
        got["outputs"], expected, atol=TOLERANCE * max(1, np.abs(expected).max())
    )


def test_log_mel_layer_config_round_trip():
    layer = LogMelSpectrogram(AudioConfig(num_mel_bins=16), name="log_mel")
    clone = LogMelSpectrogram.from_config(json.loads(json.dumps(layer.get_config())))
    assert clone.config == layer.config


@pytest.mark.slow
def test_export_audio_tower_takes_waveforms(towers, tmp_path):
    audio_tower, _, _ = towers
    w = waveforms()
    saved, report = export_audio_tower(audio_tower, tmp_path, "audio_tower", w, verbose=False)
    manifest = read_manifest(saved)
    signature = manifest["signatures"]["serving_default"]
    assert signature["inputs"] == {
        "waveforms": {"dtype": "float32", "shape": [None, DEFAULT_AUDIO.num_samples, 2]}
    }
    assert manifest["preprocessing"]["audio_config"]["sample_rate"] == DEFAULT_AUDIO.sample_rate
    assert report["saved_model"]["subprocess"]["zoo_in_sys_modules"] is False
    expected = np.asarray(audio_tower(log_mel_spectrogram(w, DEFAULT_AUDIO), training=False))
    outputs, meta = run_saved_model_subprocess(saved, {"waveforms": w})
    assert meta["zoo_in_sys_modules"] is False
    np.testing.assert_allclose(outputs["outputs"], expected, atol=TOLERANCE)
    # the .tflite takes waveforms too: the STFT is RFFT2D + COMPLEX_ABS, builtin ops
    assert manifest["preprocessing"]["tflite"] == {
        "file": "model_fp32.tflite",
        "input": "waveforms",
    }
    assert report["tflite_input"] == "waveforms" and report["tflite_blocked_by"] is None
    got = run_tflite(saved / "model_fp32.tflite", {"waveforms": w})
    np.testing.assert_allclose(got["outputs"], expected, atol=TOLERANCE)
