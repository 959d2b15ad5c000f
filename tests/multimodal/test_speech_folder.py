"""zoo.multimodal speech and folders of (image, audio, text) triples: espeak-ng synthesis and its
cache, the folder round trip, mono log-mel, the time-max audio tower, and DataErrors naming the
file and the field."""

import csv
import shutil

import numpy as np
import pytest
import tensorflow as tf

from zoo.data.errors import DataError
from zoo.data.readers.wav import read_wav
from zoo.multimodal import speech
from zoo.multimodal.audio import SPEECH_AUDIO, AudioConfig, log_mel_spectrogram
from zoo.multimodal.captions import scene_captions
from zoo.multimodal.folder import (
    load_multimodal_folder,
    read_multimodal_folder,
    write_speech_folder,
)
from zoo.multimodal.model import build_audio_encoder
from zoo.multimodal.scenes import render_scene, sample_scenes, scene_keys

HAS_ESPEAK = shutil.which(speech.ESPEAK) is not None
needs_espeak = pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng is not installed")
TINY_AUDIO = AudioConfig(
    sample_rate=8000, duration=0.25, frame_length=128, frame_step=64, num_mel_bins=16, channels=1
)


def make_folder(root, rows=6, split=True):
    """A folder of tiny triples written without espeak-ng (tones as WAVs); returns pairs.csv."""
    (root / "images").mkdir(parents=True)
    (root / "audio").mkdir()
    lines = []
    for i in range(rows):
        image = np.full((20, 20, 3), 10 * i, np.uint8)
        tf.io.write_file(str(root / "images" / f"{i}.png"), tf.io.encode_png(image))
        t = np.arange(2205) / 22050
        tone = (0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t)).astype(np.float32)[:, None]
        (root / "audio" / f"{i}.wav").write_bytes(tf.audio.encode_wav(tone, 22050).numpy())
        row = {"image": f"images/{i}.png", "audio": f"audio/{i}.wav", "text": f"a red circle {i}"}
        row["label"] = i % 3
        if split:
            row["split"] = "test" if i >= rows - 2 else "train"
        lines.append(row)
    path = root / "pairs.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, list(lines[0]))
        writer.writeheader()
        writer.writerows(lines)
    return path


def edit_row(path, index, **changes):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    rows[index].update(changes)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


# === Speech ===


@needs_espeak
def test_espeak_synthesis_and_cache(tmp_path):
    texts = ["a red circle on the left", "a red circle on the left", "a big blue square"]
    args = (texts, ["en-us", "en-us", "en-gb+f4"], [175, 175, 190], [50, 50, 35])
    paths, stats = speech.synthesize_speech(*args, tmp_path)
    assert paths[0] == paths[1] != paths[2]
    assert stats["synthesized"] == 2 and stats["cached"] == 1 and stats["seconds"] > 0
    waveform, rate = read_wav(paths[0])
    assert rate == 22050 and waveform.shape[1] == 1  # what espeak-ng writes
    assert 0.5 < len(waveform) / rate < 4.0 and np.abs(waveform).max() > 0.05
    again, stats = speech.synthesize_speech(*args, tmp_path)
    assert again == paths and stats["synthesized"] == 0 and stats["cached"] == 3


def test_missing_espeak_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(speech.shutil, "which", lambda name: None)
    with pytest.raises(DataError, match="espeak-ng not found on the PATH") as error:
        speech.synthesize_speech(["a red circle"], ["en-us"], [175], [50], tmp_path)
    assert "\n" not in str(error.value)


def test_voice_lists_are_disjoint():
    def parts(voices, k):
        return {v.split("+")[k] if "+" in v or k == 0 else "" for v in voices}

    assert not set(speech.TRAIN_VOICES) & set(speech.TEST_VOICES)
    assert not parts(speech.TRAIN_VOICES, 0) & parts(speech.TEST_VOICES, 0)  # accents
    assert not parts(speech.TRAIN_VOICES, 1) & parts(speech.TEST_VOICES, 1)  # variants


# === Log-mel of mono speech and the time-max tower ===


def test_mono_log_mel_matches_the_config():
    waveforms = tf.random.stateless_normal((2, SPEECH_AUDIO.num_samples, 1), (0, 0)) * 0.1
    spec = log_mel_spectrogram(waveforms, SPEECH_AUDIO)
    assert tuple(spec.shape) == (2, *SPEECH_AUDIO.spectrogram_shape) == (2, 125, 40, 1)
    # the one channel of a stereo pair gives the same image as the mono signal
    stereo = log_mel_spectrogram(tf.concat([waveforms, waveforms * 0], -1), SPEECH_AUDIO)
    np.testing.assert_allclose(stereo[..., :1], spec, atol=1e-5)


def test_time_max_audio_encoder():
    encoder = build_audio_encoder((40, 16, 1), embedding_dim=8, width=4, pooling="time_max")
    assert encoder.output_shape == (None, 8)
    assert encoder(np.zeros((2, 40, 16, 1), np.float32)).shape == (2, 8)
    with pytest.raises(ValueError, match="pooling must be one of"):
        build_audio_encoder((40, 16, 1), pooling="mean")


# === Folder round trip ===


@needs_espeak
def test_speech_folder_round_trip(tmp_path):
    manifest = write_speech_folder(
        tmp_path / "scenes", num_train=3, num_test=2, seed=5, renditions=2, workers=2
    )
    assert manifest["rows"] == {"train": 6, "test": 2}
    assert manifest["synthesis"]["requested"] == 8
    train, test = load_multimodal_folder(tmp_path / "scenes", audio_config=TINY_AUDIO)
    attributes = sample_scenes(3, seed=5, split="train")
    np.testing.assert_array_equal(train.attributes, np.repeat(attributes, 2, axis=0))
    np.testing.assert_array_equal(train.keys, np.repeat(scene_keys(attributes), 2))
    np.testing.assert_array_equal(train.shape_labels, np.repeat(attributes[:, 0, 0], 2))
    assert train.captions == [c for c in scene_captions(attributes, 5) for _ in range(2)]
    np.testing.assert_array_equal(train.images[0], render_scene(attributes[0], 0, 5, "train"))
    assert train.spectrograms.shape == (6, *TINY_AUDIO.spectrogram_shape)
    assert train.tokens.shape == (6, 16) and test.spectrograms.shape[0] == 2
    with open(tmp_path / "scenes" / "pairs.csv") as f:
        rows = list(csv.DictReader(f))
    voices = {r["split"]: set() for r in rows}
    for r in rows:
        voices[r["split"]].add(r["voice"])
    assert voices["train"] <= set(speech.TRAIN_VOICES)
    assert voices["test"] <= set(speech.TEST_VOICES)
    again = write_speech_folder(
        tmp_path / "scenes", num_train=3, num_test=2, seed=5, renditions=2, workers=2
    )
    assert again["synthesis"]["synthesized"] == 0  # every WAV from the cache


def test_hand_made_folder_reads_and_splits(tmp_path):
    make_folder(tmp_path / "f")
    train, test = load_multimodal_folder(tmp_path / "f", audio_config=TINY_AUDIO, image_size=16)
    assert len(train.keys) == 4 and len(test.keys) == 2
    assert train.images.shape == (4, 16, 16, 3)  # resized
    assert train.spectrograms.shape == (4, *TINY_AUDIO.spectrogram_shape)
    np.testing.assert_array_equal(train.shape_labels, [0, 1, 2, 0])
    np.testing.assert_array_equal(train.keys, train.shape_labels)  # key defaults to the label
    assert test.captions == ["a red circle 4", "a red circle 5"]
    make_folder(tmp_path / "g", split=False)
    train, test = load_multimodal_folder(
        tmp_path / "g", num_test=2, modalities=("text",), audio_config=TINY_AUDIO
    )
    assert len(train.keys) == 4 and len(test.keys) == 2 and train.spectrograms is None


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"text": ""}, r"pairs.csv: line 3: text = '': missing caption"),
        ({"audio": "audio/nope.wav"}, r"nope.wav: .*line 3: audio.*WAV file not found"),
        ({"image": "images/nope.png"}, r"nope.png: line 3: image: image file not found"),
        ({"label": "cat"}, r"pairs.csv: line 3: label = 'cat': not an integer"),
    ],
)
def test_bad_rows_name_the_file_and_field(tmp_path, change, match):
    path = make_folder(tmp_path / "f")
    edit_row(path, 1, **change)
    with pytest.raises(DataError, match=match):
        read_multimodal_folder(tmp_path / "f", audio_config=TINY_AUDIO)


def test_broken_wav_and_image_name_the_file(tmp_path):
    make_folder(tmp_path / "f")
    (tmp_path / "f" / "audio" / "2.wav").write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(DataError, match=r"2.wav: .*line 4: audio.*cannot decode WAV"):
        read_multimodal_folder(tmp_path / "f", audio_config=TINY_AUDIO)
    (tmp_path / "f" / "images" / "1.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"1.png: line 3: image: cannot decode image"):
        read_multimodal_folder(tmp_path / "f", modalities=("image",))


def test_missing_pairs_file_and_column(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="pairs.csv: pairs.csv not found"):
        read_multimodal_folder(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "pairs.csv").write_text("image,text\na.png,a red circle\n")
    with pytest.raises(DataError, match="line 1 = 'image,text': missing column.*audio"):
        read_multimodal_folder(tmp_path / "bad")
