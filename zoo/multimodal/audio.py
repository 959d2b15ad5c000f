"""Sounds of scenes: a stereo waveform per scene and its log-mel spectrogram, in TensorFlow ops.

A 0.5 s stereo waveform (8 kHz) is synthesised with one tone per shape: the fundamental
frequency encodes the *shape* (``SHAPE_FREQUENCIES``, a 1.5x ladder so no harmonic of one shape
falls on another's fundamental), the harmonics (timbre) the *colour* (``COLOUR_HARMONICS``,
always quieter than the fundamental, so the loudest frequency is still the shape's), the
amplitude and envelope length the *size*, the stereo pan the *position*; plus random detuning,
onset, gain and white noise. ``log_mel_spectrogram`` turns it into a
``(32 frames, 32 mel bins, 2 channels)`` log-mel image with ``tf.signal``. The random numbers
are ``tf.random.stateless_*`` draws seeded by ``(seed, split, index)``, so a scene sounds the
same in any batch.

Example:
    >>> attributes = sample_scenes(8, seed=0)
    >>> spectrograms = scene_audio(attributes, np.arange(8), seed=0)   # (8, 32, 32, 2)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from zoo.multimodal.scenes import split_index

__all__ = [
    "COLOUR_HARMONICS",
    "DEFAULT_AUDIO",
    "SHAPE_FREQUENCIES",
    "SPEECH_AUDIO",
    "AudioConfig",
    "log_mel_spectrogram",
    "scene_audio",
    "synthesize_audio",
]

SHAPE_FREQUENCIES = (160.0, 240.0, 360.0, 540.0, 810.0)  # Hz, a 1.5x ladder
# Extra harmonics (multiples of the fundamental) by colour, each at half the fundamental's level.
COLOUR_HARMONICS = ((), (2,), (3,), (2, 3), (2, 3, 4))
_PAN = ((1.0, 0.2), (0.7, 0.7), (0.2, 1.0))  # (left gain, right gain) by position
_AMPLITUDE = (0.35, 0.9)  # by size
_DURATION = (0.3, 0.85)  # fraction of the clip the tone lasts, by size
_NORMALIZE_EPSILON = 1e-3  # variance floor of AudioConfig.normalize (a silent mel bin stays 0)


class AudioConfig(NamedTuple):
    """Waveform and spectrogram settings (the defaults give ``(32, 32, 2)`` log-mel images).

    ``channels`` is the channel count of the waveforms (2 for the stereo tones, 1 for speech);
    ``log_mel_spectrogram`` keeps whatever channels it is given, one log-mel image each.
    ``normalize`` standardises each utterance's log-mel: every mel bin of every channel to zero
    mean and unit variance over time (so loudness and a voice's spectral tilt drop out).
    """

    sample_rate: int = 8000
    duration: float = 0.5
    frame_length: int = 256
    frame_step: int = 128
    num_mel_bins: int = 32
    lower_hz: float = 80.0
    upper_hz: float = 3800.0
    noise: float = 0.03
    channels: int = 2
    normalize: bool = False

    @property
    def num_samples(self):
        return int(round(self.sample_rate * self.duration))

    @property
    def num_frames(self):
        return -(-self.num_samples // self.frame_step)  # pad_end=True

    @property
    def spectrogram_shape(self):
        """``(frames, mel bins, channels)`` of ``log_mel_spectrogram`` (the audio tower input)."""
        return (self.num_frames, self.num_mel_bins, self.channels)


DEFAULT_AUDIO = AudioConfig()  # 8 kHz, 0.5 s -> (32 frames, 32 mel bins, 2 channels)
# Spoken captions (zoo.multimodal.speech): mono 8 kHz, 4 s -> (125 frames, 40 mel bins, 1)
SPEECH_AUDIO = AudioConfig(
    sample_rate=8000,
    duration=4.0,
    frame_length=512,
    frame_step=256,
    num_mel_bins=40,
    lower_hz=60.0,
    upper_hz=3900.0,
    noise=0.0,
    channels=1,
)


def _audio_seeds(seed, split, indices):
    indices = tf.cast(tf.reshape(indices, [-1]), tf.int64)
    base = tf.constant(int(seed) * 16 + split_index(split), tf.int64)
    return tf.stack([tf.fill(tf.shape(indices), base), indices], axis=1)


def synthesize_audio(attributes, seeds, config=None):
    """Stereo waveforms of a batch of scenes, in TensorFlow ops (usable inside ``tf.data``).

    Per object: a tone at ``SHAPE_FREQUENCIES[shape]`` (detuned by up to ±2 %) plus the
    ``COLOUR_HARMONICS[colour]`` at half its level, amplitude ``_AMPLITUDE[size]`` (±15 %) over
    a Hann-shaped envelope lasting ``_DURATION[size]`` of the clip from a random onset, panned
    by position; then white noise of standard deviation ``config.noise``.

    Args:
        attributes: int ``(B, max_objects, 4)``; rows of -1 are silent.
        seeds: int ``(B, 2)`` stateless seeds (one per scene).
        config: ``AudioConfig``.

    Returns:
        float32 ``(B, config.num_samples, 2)``.
    """
    config = DEFAULT_AUDIO if config is None else config
    attributes = tf.cast(tf.convert_to_tensor(attributes), tf.int32)
    seeds = tf.cast(tf.convert_to_tensor(seeds), tf.int64)
    objects = attributes.shape[1]
    n = config.num_samples
    t = tf.range(n, dtype=tf.float32) / float(config.sample_rate)  # (n,)
    # one stream per scene (so a scene sounds the same in any batch): (2 base, index) for the
    # jitter, (2 base + 1, index) for the noise
    jitter_seeds = seeds * tf.constant([2, 1], tf.int64)
    jitter = tf.vectorized_map(
        lambda s: tf.random.stateless_uniform([objects, 4], s), jitter_seeds
    )  # (B, O, 4) in [0, 1)
    shape, colour, size, position = (tf.maximum(attributes[..., k], 0) for k in range(4))
    present = tf.cast(attributes[..., 0] >= 0, tf.float32)
    f0 = tf.gather(tf.constant(SHAPE_FREQUENCIES, tf.float32), shape)
    f0 *= 1.0 + 0.04 * (jitter[..., 0] - 0.5)
    harmonics = np.zeros((len(COLOUR_HARMONICS), 4), np.float32)  # weights of multiples 1..4
    harmonics[:, 0] = 1.0
    for c, multiples in enumerate(COLOUR_HARMONICS):
        for m in multiples:
            harmonics[c, m - 1] = 0.5
    weights = tf.gather(tf.constant(harmonics), colour)  # (B, O, 4)
    multiples = tf.constant([1.0, 2.0, 3.0, 4.0])
    # cycles reduced to [0, 1) before the sine: sin of large arguments differs between the
    # vectorised and scalar kernels, and the audio must not depend on the batch it is in
    cycles = tf.math.floormod(f0[..., None, None] * multiples[:, None] * t, 1.0)  # (B, O, 4, n)
    tone = tf.reduce_sum(weights[..., None] * tf.sin(2.0 * np.pi * cycles), axis=2)  # (B, O, n)
    amplitude = tf.gather(tf.constant(_AMPLITUDE), size) * (1.0 + 0.3 * (jitter[..., 1] - 0.5))
    length = tf.gather(tf.constant(_DURATION), size) * config.duration
    onset = jitter[..., 2] * (config.duration - length) * 0.5
    pos = (t - onset[..., None]) / length[..., None]  # (B, O, n), envelope where 0 <= pos <= 1
    inside = tf.cast((pos >= 0.0) & (pos <= 1.0), tf.float32)
    envelope = inside * tf.sqrt(tf.maximum(tf.sin(np.pi * tf.clip_by_value(pos, 0.0, 1.0)), 0.0))
    mono = tone * envelope * (amplitude * present)[..., None]  # (B, O, n)
    pan = tf.gather(tf.constant(_PAN, tf.float32), position)  # (B, O, 2)
    stereo = tf.einsum("bon,boc->bnc", mono, pan)
    noise = tf.vectorized_map(
        lambda s: tf.random.stateless_normal([n, 2], s),
        jitter_seeds + tf.constant([1, 0], tf.int64),
    )
    return stereo + config.noise * noise


def log_mel_spectrogram(waveforms, config=None):
    """Log-mel spectrogram of each channel with ``tf.signal``.

    Args:
        waveforms: float32 ``(B, num_samples, channels)``, any channel count (stereo tones,
            mono speech: ``(B, num_samples, 1)``).
        config: ``AudioConfig`` (sample rate, frame length / step, mel bins and range).

    Returns:
        float32 ``(B, frames, num_mel_bins, channels)``: ``log(mel magnitude + 1e-2)``; with
        ``config.normalize``, each mel bin then standardised over the frames of its utterance,
        ``(x - mean) / sqrt(variance + 1e-3)``.
    """
    config = DEFAULT_AUDIO if config is None else config
    waveforms = tf.convert_to_tensor(waveforms, tf.float32)
    signals = tf.transpose(waveforms, [0, 2, 1])  # (B, C, n)
    stft = tf.signal.stft(
        signals,
        config.frame_length,
        config.frame_step,
        pad_end=True,
        window_fn=tf.signal.hann_window,
    )
    magnitude = tf.abs(stft)  # (B, C, T, F)
    mel = tf.signal.linear_to_mel_weight_matrix(
        config.num_mel_bins,
        magnitude.shape[-1],
        config.sample_rate,
        config.lower_hz,
        config.upper_hz,
    )
    spec = tf.math.log(tf.tensordot(magnitude, mel, 1) + 1e-2)  # (B, C, T, M)
    if config.normalize:  # per utterance, channel and mel bin, over time (builtin TFLite ops)
        mean = tf.reduce_mean(spec, axis=2, keepdims=True)
        centred = spec - mean
        variance = tf.reduce_mean(tf.square(centred), axis=2, keepdims=True)
        spec = centred * tf.math.rsqrt(variance + _NORMALIZE_EPSILON)
    return tf.transpose(spec, [0, 2, 3, 1])


def scene_audio(attributes, indices, seed=0, split="train", config=None):
    """Log-mel spectrograms of scenes ``indices`` (see ``synthesize_audio``).

    Returns:
        float32 ``(B, frames, num_mel_bins, 2)`` tensor.
    """
    seeds = _audio_seeds(seed, split, indices)
    attributes = tf.cast(tf.convert_to_tensor(attributes), tf.int32)
    return _scene_audio_graph(attributes, seeds, DEFAULT_AUDIO if config is None else config)


@tf.function(reduce_retracing=True)
def _scene_audio_graph(attributes, seeds, config):
    return log_mel_spectrogram(synthesize_audio(attributes, seeds, config), config)
