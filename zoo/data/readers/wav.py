"""WAV files as float32 waveforms: ``read_wav`` (``tf.audio.decode_wav``), ``resample_audio``
(band-limited, by FFT) and ``fit_length`` (pad with silence or crop).

``read_wav`` reads 16-bit PCM WAV (what ``tf.audio.decode_wav`` decodes), scales it to [-1, 1),
and optionally mixes it down to mono, resamples it and pads / crops it to a fixed number of
samples. A missing, empty or undecodable file raises a ``DataError`` naming the file.

Example:
    >>> waveform, rate = read_wav("speech.wav", sample_rate=8000, num_samples=24000, channels=1)
    >>> waveform.shape, rate                                            # doctest: +SKIP
    ((24000, 1), 8000)
"""

from __future__ import annotations

import math
import os

import numpy as np
import tensorflow as tf

from zoo.data.errors import DataError

__all__ = ["fit_length", "read_wav", "resample_audio"]


def resample_audio(waveform, rate_in, rate_out):
    """Resamples ``(samples, channels)`` audio from ``rate_in`` to ``rate_out`` Hz by FFT.

    The spectrum of each channel is cut (downsampling: no aliasing, everything above the new
    Nyquist frequency is dropped) or zero-padded (upsampling), as ``scipy.signal.resample``;
    the output has ``round(samples * rate_out / rate_in)`` samples. The signal is treated as
    periodic, so a clip that does not start and end near silence rings a little at its ends.

    Args:
        waveform: float ``(samples, channels)`` (or ``(samples,)``).
        rate_in, rate_out: sample rates in Hz (> 0).

    Returns:
        float32 tensor ``(new_samples, channels)`` (or ``(new_samples,)``).
    """
    rate_in, rate_out = int(rate_in), int(rate_out)
    if rate_in <= 0 or rate_out <= 0:
        raise ValueError(
            f"sample rates must be > 0. Received: rate_in={rate_in}, rate_out={rate_out}"
        )
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    if rate_in == rate_out:
        return waveform
    squeeze = waveform.shape.rank == 1
    signals = waveform[:, None] if squeeze else waveform
    n = signals.shape[0]
    if n:  # zero-pad to a length whose FFTs are fast and that maps to a whole output length
        step = rate_in // math.gcd(rate_in, rate_out)
        padded = step * _smooth_at_least(-(-n // step))
        signals = tf.pad(signals, [[0, padded - n], [0, 0]])
    rates = tf.constant(rate_in, tf.float64), tf.constant(rate_out, tf.float64)
    out = _resample(signals, *rates)
    if n:
        out = out[: max(int(round(n * rate_out / rate_in)), 1)]
    return out[:, 0] if squeeze else out


def _smooth_at_least(n):
    """The smallest 2-3-5-smooth number >= n (fast FFT lengths)."""
    best = 1 << max(int(n) - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p235 = p35
            while p235 < n:
                p235 *= 2
            best = min(best, p235)
            p35 *= 3
        p5 *= 5
    return best


@tf.function(
    input_signature=[
        tf.TensorSpec([None, None], tf.float32),
        tf.TensorSpec([], tf.float64),
        tf.TensorSpec([], tf.float64),
    ]
)
def _resample(waveform, rate_in, rate_out):
    signals = tf.transpose(waveform)  # (C, n)
    n = tf.shape(signals)[1]
    m = tf.maximum(tf.cast(tf.round(tf.cast(n, tf.float64) * rate_out / rate_in), tf.int32), 1)
    spectrum = tf.signal.rfft(signals, fft_length=[tf.maximum(n, 1)])  # (C, n // 2 + 1)
    keep = tf.minimum(n // 2 + 1, m // 2 + 1)
    spectrum = spectrum[:, :keep]
    # the Nyquist bin of the shorter length (as scipy.signal.resample): downsampling folds the
    # +-m/2 pair into it (x2), upsampling splits the old one over +-n/2 (x0.5)
    factor = tf.where(m < n, 2.0, 0.5)
    factor = tf.where(tf.minimum(n, m) % 2 == 0, factor, 1.0)
    weights = tf.concat([tf.ones([keep - 1]), [factor]], axis=0)
    spectrum = spectrum * tf.cast(weights, tf.complex64)
    spectrum = tf.pad(spectrum, [[0, 0], [0, m // 2 + 1 - keep]])
    out = (
        tf.signal.irfft(spectrum, fft_length=[m])
        * tf.cast(m, tf.float32)
        / tf.cast(tf.maximum(n, 1), tf.float32)
    )
    out = tf.where(n > 0, out, tf.zeros_like(out))
    return tf.transpose(out)


def fit_length(waveform, num_samples):
    """Crops ``(samples, channels)`` audio to ``num_samples`` or pads it with trailing zeros."""
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    waveform = waveform[:num_samples]
    missing = num_samples - tf.shape(waveform)[0]
    pad = [[0, missing]] + [[0, 0]] * (waveform.shape.rank - 1)
    return tf.pad(waveform, pad)


def read_wav(path, sample_rate=None, num_samples=None, channels=None, field=None):
    """Reads a 16-bit PCM WAV file as float32 samples in [-1, 1).

    Args:
        path: WAV file.
        sample_rate: resample to this rate in Hz (``None``: keep the file's).
        num_samples: crop or pad with silence to this many samples (after resampling).
        channels: ``1`` mixes all channels down to mono (their mean); ``None`` keeps the file's;
            another count must match the file's.
        field: where the path came from (e.g. ``"pairs.csv: line 3: audio"``), for errors.

    Returns:
        ``(waveform, rate)``: float32 NumPy ``(samples, channels)`` and its sample rate.

    Raises:
        DataError: the file is missing, unreadable, not a PCM WAV that ``tf.audio.decode_wav``
            decodes, holds no samples, or has a channel count other than ``channels``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError("WAV file not found", file=path, field=field)
    try:
        contents = tf.io.read_file(path)
        audio, rate = tf.audio.decode_wav(contents)
    except (tf.errors.OpError, ValueError) as error:
        message = getattr(error, "message", str(error)).strip().splitlines()[0]
        raise DataError(
            f"cannot decode WAV ({message}); expected 16-bit PCM WAV", file=path, field=field
        ) from None
    rate = int(rate.numpy())
    if int(audio.shape[0]) == 0:
        raise DataError("WAV file holds no samples", file=path, field=field)
    if rate <= 0:
        raise DataError(f"WAV sample rate must be > 0 (got {rate})", file=path, field=field)
    if channels == 1 and int(audio.shape[1]) > 1:
        audio = tf.reduce_mean(audio, axis=1, keepdims=True)
    elif channels is not None and int(audio.shape[1]) != int(channels):
        raise DataError(
            f"WAV has {int(audio.shape[1])} channels, expected {int(channels)}",
            file=path,
            field=field,
        )
    if sample_rate is not None and int(sample_rate) != rate:
        audio, rate = resample_audio(audio, rate, sample_rate), int(sample_rate)
    audio = np.asarray(audio, np.float32)
    if num_samples is not None:
        audio = np.pad(
            audio[: int(num_samples)], [[0, max(int(num_samples) - len(audio), 0)], [0, 0]]
        )
    return audio, rate
