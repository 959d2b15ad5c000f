"""zoo.data.readers.wav: golden samples through tf.audio.encode_wav, resampling against NumPy,
crop / pad, mono mix-down, and DataErrors naming the file."""

import numpy as np
import pytest
import tensorflow as tf

from zoo.data.errors import DataError
from zoo.data.readers.wav import fit_length, read_wav, resample_audio


def write_wav(path, samples, rate):
    samples = np.asarray(samples, np.float32)
    if samples.ndim == 1:
        samples = samples[:, None]
    path.write_bytes(tf.audio.encode_wav(samples, rate).numpy())
    return path


def test_golden_samples_round_trip(tmp_path):
    # 16-bit PCM: k / 32768 is exact, so the samples come back bit for bit
    golden = np.array([[0, 1], [16384, -16384], [-32768, 32767], [123, -7]], np.float32) / 32768
    path = write_wav(tmp_path / "golden.wav", golden, 22050)
    waveform, rate = read_wav(path)
    assert rate == 22050 and waveform.dtype == np.float32
    np.testing.assert_array_equal(waveform, golden)


def test_mono_mix_crop_and_pad(tmp_path):
    stereo = np.stack([np.full(100, 0.5), np.full(100, -0.25)], axis=1)
    path = write_wav(tmp_path / "stereo.wav", stereo, 8000)
    mono, _ = read_wav(path, channels=1, num_samples=150)
    assert mono.shape == (150, 1)
    np.testing.assert_allclose(mono[:100, 0], 0.125, atol=1 / 32768)
    np.testing.assert_array_equal(mono[100:], 0.0)  # padded with silence
    cropped, _ = read_wav(path, num_samples=10)
    assert cropped.shape == (10, 2)
    np.testing.assert_array_equal(fit_length(np.ones((3, 1)), 5).numpy()[:, 0], [1, 1, 1, 0, 0])


@pytest.mark.parametrize(("rate_in", "rate_out"), [(22050, 8000), (22050, 16000), (8000, 22050)])
def test_resampling_matches_the_band_limited_signal(rate_in, rate_out):
    # a windowed 440 Hz tone is band-limited below both Nyquist frequencies: resampling must
    # give the same tone sampled at the new rate (computed in NumPy)
    n = 4001
    t = np.arange(n) / rate_in
    window = np.hanning(n)
    tone = np.sin(2 * np.pi * 440 * t) * window
    out = resample_audio(tone.astype(np.float32)[:, None], rate_in, rate_out).numpy()
    assert out.shape == (round(n * rate_out / rate_in), 1)
    t_out = np.arange(len(out)) / rate_out
    expected = np.sin(2 * np.pi * 440 * t_out) * np.interp(t_out, t, window)
    np.testing.assert_allclose(out[:, 0], expected, atol=2e-3)
    # and agrees with linear interpolation in NumPy on this smooth signal
    np.testing.assert_allclose(out[:, 0], np.interp(t_out, t, tone), atol=0.05)


def test_downsampling_removes_what_the_new_rate_cannot_hold():
    # 6 kHz is above the 4 kHz Nyquist frequency of 8 kHz: it must vanish, not alias to 2 kHz
    t = np.arange(22050) / 22050
    out = resample_audio(np.sin(2 * np.pi * 6000 * t).astype(np.float32), 22050, 8000).numpy()
    assert out.shape == (8000,)
    assert np.abs(out).max() < 1e-3


def test_read_wav_resamples(tmp_path):
    t = np.arange(2205) / 22050
    path = write_wav(
        tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 300 * t) * np.hanning(2205), 22050
    )
    waveform, rate = read_wav(path, sample_rate=8000, num_samples=1000, channels=1)
    assert rate == 8000 and waveform.shape == (1000, 1)
    t_out = np.arange(800) / 8000
    expected = 0.5 * np.sin(2 * np.pi * 300 * t_out) * np.interp(t_out, t, np.hanning(2205))
    np.testing.assert_allclose(waveform[:800, 0], expected, atol=2e-3)


def test_broken_wav_names_the_file(tmp_path):
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot really a wav")
    with pytest.raises(DataError, match="broken.wav.*cannot decode WAV"):
        read_wav(path)


def test_truncated_wav_names_the_file(tmp_path):
    data = write_wav(tmp_path / "full.wav", np.zeros(1000), 8000).read_bytes()
    path = tmp_path / "truncated.wav"
    path.write_bytes(data[:30])
    with pytest.raises(DataError, match="truncated.wav"):
        read_wav(path)


def test_missing_and_empty_wav(tmp_path):
    with pytest.raises(DataError, match="missing.wav: WAV file not found"):
        read_wav(tmp_path / "missing.wav")
    path = write_wav(tmp_path / "empty.wav", np.zeros((0, 1)), 8000)
    with pytest.raises(DataError, match="empty.wav: WAV file holds no samples"):
        read_wav(path)


def test_channel_mismatch(tmp_path):
    path = write_wav(tmp_path / "mono.wav", np.zeros(10), 8000)
    with pytest.raises(DataError, match="1 channels, expected 2"):
        read_wav(path, channels=2)
