"""zoo.multimodal scenes, captions, audio and data: determinism, and captions / images / sounds that follow the scene."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.multimodal.audio import (
    COLOUR_HARMONICS,
    DEFAULT_AUDIO,
    SHAPE_FREQUENCIES,
    AudioConfig,
    log_mel_spectrogram,
    scene_audio,
    synthesize_audio,
)
from zoo.multimodal.captions import (
    CaptionTokenizer,
    caption_max_length,
    caption_vocabulary,
    scene_captions,
)
from zoo.multimodal.data import make_multimodal_data, multimodal_dataset
from zoo.multimodal.scenes import (
    COLOURS,
    POSITIONS,
    SHAPES,
    SIZES,
    render_scene,
    sample_scenes,
    scene_keys,
)
from zoo.text.tokenizer import TextTokenizer

SIZE_WORDS = {0: {"small", "tiny", "little"}, 1: {"large", "big", "huge"}}
WHERE_WORDS = {0: "left", 1: {"middle", "center", "centre"}, 2: "right"}


@pytest.fixture(scope="module")
def data():
    return make_multimodal_data(64, seed=3, split="test")


def test_same_seed_same_data_any_start(data):
    again = make_multimodal_data(64, seed=3, split="test")
    for field in ("attributes", "images", "tokens", "spectrograms", "keys"):
        np.testing.assert_array_equal(getattr(data, field), getattr(again, field), err_msg=field)
    assert data.captions == again.captions
    # scene i depends only on (seed, split, i): a window starting at 10 reproduces it
    window = make_multimodal_data(5, seed=3, split="test", start=10)
    np.testing.assert_array_equal(window.images, data.images[10:15])
    diff = np.abs(window.spectrograms - data.spectrograms[10:15])  # round-off only
    assert diff.mean() < 1e-3 and diff.max() < 5e-2, (diff.mean(), diff.max())
    assert window.captions == data.captions[10:15]


def test_seed_and_split_change_the_data(data):
    other_seed = make_multimodal_data(64, seed=4, split="test", modalities=("image",))
    other_split = make_multimodal_data(64, seed=3, split="train", modalities=("image",))
    assert not np.array_equal(data.images, other_seed.images)
    assert not np.array_equal(data.images, other_split.images)
    assert not np.array_equal(data.attributes, other_split.attributes)


def test_shapes_and_dtypes(data):
    config = AudioConfig()
    assert data.images.shape == (64, 32, 32, 3) and data.images.dtype == np.uint8
    assert data.tokens.shape == (64, 16) and data.tokens.dtype == np.int32
    assert data.spectrograms.shape == (64, config.num_frames, config.num_mel_bins, 2)
    assert np.isfinite(data.spectrograms).all()
    assert data.attributes.shape == (64, 1, 4)
    np.testing.assert_array_equal(data.shape_labels, data.attributes[:, 0, 0])


@pytest.mark.parametrize("max_objects", [1, 2, 3])
def test_scenes_valid_attribute_ranges_and_distinct_positions(max_objects):
    attrs = sample_scenes(200, seed=1, max_objects=max_objects)
    present = attrs[..., 0] >= 0
    assert present[:, 0].all()  # at least one object
    assert present.sum(1).max() == max_objects
    for k, n in enumerate((len(SHAPES), len(COLOURS), len(SIZES), len(POSITIONS))):
        values = attrs[..., k][present]
        assert values.min() == 0 and values.max() == n - 1
    for scene, mask in zip(attrs, present, strict=True):
        positions = scene[mask, 3]
        assert len(set(positions)) == len(positions)


def test_bad_arguments_echo_the_value():
    with pytest.raises(ValueError, match="max_objects=4"):
        sample_scenes(2, max_objects=4)
    with pytest.raises(ValueError, match="split='holdout'"):
        sample_scenes(2, split="holdout")
    with pytest.raises(ValueError, match="image-video"):
        multimodal_dataset(make_multimodal_data(2, modalities=()), "image-video")


def test_scene_keys_ignore_object_order_and_separate_scenes():
    a = np.array([[[0, 1, 0, 0], [2, 3, 1, 2]]])
    b = a[:, ::-1]
    c = np.array([[[0, 1, 0, 0], [-1, -1, -1, -1]]])
    keys = scene_keys(np.concatenate([a, b, c]))
    assert keys[0] == keys[1] != keys[2]
    single = sample_scenes(3000, seed=0)
    assert len(np.unique(scene_keys(single))) == len(SHAPES) * len(COLOURS) * 2 * 3


def test_captions_name_every_attribute():
    attrs = sample_scenes(300, seed=2)
    for (shape, colour, size, position), caption in zip(
        attrs[:, 0], scene_captions(attrs, seed=2), strict=True
    ):
        words = set(caption.split())
        assert SHAPES[shape] in words and COLOURS[colour] in words, caption
        assert not (set(SHAPES) - {SHAPES[shape]}) & words, caption
        assert not (set(COLOURS) - {COLOURS[colour]}) & words, caption
        assert words & SIZE_WORDS[size] and not words & SIZE_WORDS[1 - size], caption
        where = WHERE_WORDS[position]
        assert (where in words) if isinstance(where, str) else (words & where), caption


def test_captions_vary_for_one_scene():
    attrs = np.tile(np.array([[[0, 0, 0, 0]]], np.int32), (40, 1, 1))
    assert len(set(scene_captions(attrs, seed=0))) >= 10  # templates and synonyms


def test_multi_object_captions_mention_each_object_and_fit_the_tokenizer():
    attrs = sample_scenes(100, seed=5, max_objects=3)
    captions = scene_captions(attrs, seed=5)
    tok = CaptionTokenizer(caption_max_length(3))
    ids = tok(captions).numpy()
    for scene, caption, row in zip(attrs, captions, ids, strict=True):
        n = int((scene[:, 0] >= 0).sum())
        assert caption.count(" and ") >= n - 1
        for shape in scene[scene[:, 0] >= 0, 0]:
            assert SHAPES[shape] in caption
        assert tok.decode(row) == caption  # nothing truncated or unknown
        assert 1 not in row


def test_tokenizer_round_trip_padding_and_unknown_words():
    tok = CaptionTokenizer(max_length=6)
    assert tok.vocabulary[:2] == ["[PAD]", "[UNK]"]
    assert tok.vocabulary_size == len(caption_vocabulary()) + 2
    ids = tok(["A Red circle", "a zebra"]).numpy()
    assert ids.shape == (2, 6) and ids.dtype == np.int32
    assert tok.decode(ids[0]) == "a red circle" and list(ids[0, 3:]) == [0, 0, 0]
    assert ids[1, 1] == 1  # unknown
    long = tok("a " * 10).numpy()
    assert long.shape == (6,) and (long > 0).all()  # truncated
    # it runs inside tf.data
    ds = tf.data.Dataset.from_tensor_slices(["a red circle", "a blue square"]).batch(2).map(tok)
    np.testing.assert_array_equal(next(iter(ds)).numpy(), tok(["a red circle", "a blue square"]))


def test_caption_tokenizer_is_the_text_tokenizer_with_pinned_ids(tmp_path):
    tok = CaptionTokenizer()
    assert isinstance(tok, TextTokenizer) and not tok.mask_token
    assert tok.vocabulary[2:] == list(caption_vocabulary()) and tok.special_ids == (0, 1)
    assert (tok.max_length, tok.vocabulary_size) == (16, 45)
    # The text towers are trained and exported on these ids: they must not move.
    np.testing.assert_array_equal(tok("a photo of a circle")[:6], [2, 27, 24, 2, 11, 0])
    np.testing.assert_array_equal(tok("A red circle.")[:4], [2, 29, 11, 0])  # punctuation dropped
    loaded = CaptionTokenizer.load(tok.save(tmp_path / "captions.json"))
    assert loaded.get_config() == tok.get_config()


def _mono_spectrum(attrs, seeds):
    wave = synthesize_audio(attrs, seeds).numpy().sum(-1)
    return np.abs(np.fft.rfft(wave, axis=1)), np.fft.rfftfreq(wave.shape[1], 1 / 8000)


def test_dominant_audio_frequency_is_the_shape():
    attrs = sample_scenes(60, seed=7)
    seeds = np.stack([np.full(60, 7), np.arange(60)], 1)
    spectrum, freqs = _mono_spectrum(attrs, seeds)
    peak = freqs[np.argmax(spectrum, axis=1)]
    nearest = np.argmin(np.abs(peak[:, None] - np.array(SHAPE_FREQUENCIES)[None]), axis=1)
    np.testing.assert_array_equal(nearest, attrs[:, 0, 0])
    # the same holds on the log-mel spectrogram the models see: its loudest mel bin (in the
    # loudest frame: a short tone leaves most frames to the noise)
    spec = scene_audio(attrs, np.arange(60), seed=7).numpy()
    loudest = np.argmax(spec.max(axis=1).mean(axis=-1), axis=1)
    for shape in range(len(SHAPES)):
        bins = loudest[attrs[:, 0, 0] == shape]
        assert len(set(bins)) <= 2, (shape, bins)  # one bin (or a neighbour when detuned)
    order = [np.median(loudest[attrs[:, 0, 0] == s]) for s in range(len(SHAPES))]
    assert order == sorted(order) and len(set(order)) == len(SHAPES)


@given(st.integers(0, len(SHAPES) - 1), st.integers(0, len(COLOURS) - 1), st.integers(0, 10**6))
@settings(max_examples=25, deadline=None)
def test_audio_harmonics_follow_the_colour(shape, colour, seed):
    attrs = np.array([[[shape, colour, 1, 1]]], np.int32)
    spectrum, freqs = _mono_spectrum(attrs, np.array([[seed, 0]]))
    f0 = freqs[np.argmax(spectrum[0])]
    level = {m: spectrum[0][np.abs(freqs - m * f0) < 15].max() for m in (2, 3, 4)}
    for m, value in level.items():
        expected = m in COLOUR_HARMONICS[colour]
        assert (value > 0.2 * spectrum[0].max()) == expected, (shape, colour, m)


def test_audio_size_is_loudness_and_position_is_the_stereo_pan():
    n = 30
    attrs = np.zeros((n, 1, 4), np.int32)
    attrs[:, 0, 2] = np.arange(n) % 2  # size
    attrs[:, 0, 3] = np.arange(n) % 3  # position
    wave = synthesize_audio(attrs, np.stack([np.zeros(n), np.arange(n)], 1)).numpy()
    energy = (wave**2).sum(1)  # (n, 2) left / right
    total = energy.sum(1)
    assert total[attrs[:, 0, 2] == 1].min() > 2 * total[attrs[:, 0, 2] == 0].max()
    balance = (energy[:, 0] - energy[:, 1]) / total
    assert (balance[attrs[:, 0, 3] == 0] > 0.5).all()  # left
    assert (np.abs(balance[attrs[:, 0, 3] == 1]) < 0.1).all()  # center
    assert (balance[attrs[:, 0, 3] == 2] < -0.5).all()  # right


def test_images_show_the_colour_at_the_position():
    attrs = np.array([[[c % 5, c, c % 2, p]] for c in range(5) for p in range(3)], np.int32)
    for i, scene in enumerate(attrs):
        image = render_scene(scene, index=i, seed=0).astype(float)
        _, colour, _, position = scene[0]
        target = np.array(
            [[225, 40, 40], [40, 200, 60], [50, 90, 235], [235, 220, 45], [175, 60, 210]]
        )[colour]
        close = np.abs(image - target).sum(-1) < 120
        assert close.sum() > 20, scene
        xs = np.nonzero(close)[1].mean() / image.shape[1]
        assert [0.1 < xs < 0.4, 0.35 < xs < 0.65, 0.6 < xs < 0.9][position], (scene, xs)


def test_dataset_pairs_and_on_the_fly_audio_match_the_arrays(data):
    ds = multimodal_dataset(data, "image-audio", batch_size=8, shuffle=False, repeat=False)
    inputs, targets = next(iter(ds))
    np.testing.assert_array_equal(inputs["input_a"].numpy(), data.images[:8].astype(np.float32))
    np.testing.assert_allclose(inputs["input_b"].numpy(), data.spectrograms[:8], atol=1e-5)
    assert targets["logits"].shape == (8,)
    no_audio = data._replace(spectrograms=None)  # synthesised inside the pipeline
    ds = multimodal_dataset(no_audio, "audio-text", batch_size=8, shuffle=False, repeat=False)
    inputs, _ = next(iter(ds))
    # equal up to float round-off (graph kernels differ by batch size; log amplifies it in the
    # quietest bins)
    diff = np.abs(inputs["input_a"].numpy() - data.spectrograms[:8])
    assert diff.mean() < 1e-3 and diff.max() < 5e-2, (diff.mean(), diff.max())
    np.testing.assert_array_equal(inputs["input_b"].numpy(), data.tokens[:8])
    assert inputs["input_b"].dtype == tf.int32


def test_partial_captions_name_the_shape_and_a_subset_of_the_rest():
    attrs = sample_scenes(400, seed=9)
    full = scene_captions(attrs, seed=9)
    partial = scene_captions(attrs, seed=9, partial=0.5)
    changed = [i for i, (f, p) in enumerate(zip(full, partial, strict=True)) if f != p]
    assert 120 < len(changed) < 280  # about half
    assert any(
        p.split() == ["a", "photo", "of", "a", SHAPES[attrs[i, 0, 0]]]
        for i, p in ((i, partial[i]) for i in changed)
    )
    tok = CaptionTokenizer()
    for i in changed:
        words = set(partial[i].split())
        shape, colour, _, _ = attrs[i, 0]
        assert SHAPES[shape] in words and not (set(SHAPES) - {SHAPES[shape]}) & words
        assert not (set(COLOURS) - {COLOURS[colour]}) & words
        assert 1 not in tok(partial[i]).numpy()


def test_normalized_log_mel_matches_a_numpy_reference():
    """``AudioConfig(normalize=True)``: each mel bin of each channel standardised over time."""
    config = DEFAULT_AUDIO._replace(normalize=True)
    attributes = sample_scenes(3, seed=2)
    seeds = np.stack([np.full(3, 7), np.arange(3)], axis=1)
    waves = synthesize_audio(attributes, seeds, config)
    raw = log_mel_spectrogram(waves, config._replace(normalize=False)).numpy()
    mean = raw.mean(axis=1, keepdims=True)
    expected = (raw - mean) / np.sqrt(raw.var(axis=1, keepdims=True) + 1e-3)
    got = log_mel_spectrogram(waves, config).numpy()
    assert got.shape == raw.shape == (3, *config.spectrogram_shape)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_allclose(got.mean(axis=1), 0.0, atol=1e-4)
    # loudness mostly drops out (exactly but for the 1e-2 floor of the log): 4x louder moves
    # the raw log-mel by up to log 4 and the normalised one far less
    raw_shift = np.abs(log_mel_spectrogram(4.0 * waves, config._replace(normalize=False)) - raw)
    shift = np.abs(log_mel_spectrogram(4.0 * waves, config).numpy() - got)
    assert shift.mean() < 0.2 * raw_shift.mean()
    silent = log_mel_spectrogram(np.zeros((1, config.num_samples, 2), np.float32), config)
    np.testing.assert_allclose(silent.numpy(), 0.0, atol=1e-4)  # silence stays finite, at 0
