"""Spoken captions: scene captions read aloud by espeak-ng in several voices, speeds and pitches.

``synthesize_speech`` runs the ``espeak-ng`` program (formant synthesis, offline, about 10 ms a
caption) once per distinct ``(text, voice, speed, pitch)`` and keeps each result as a WAV file
named by a hash of the four, so a caption said again in the same way, in this run or a later
one, is read from the cache instead of synthesised. espeak-ng writes 16-bit mono WAV at
22,050 Hz; ``zoo.data.readers.read_wav`` brings it to the rate of a ``SPEECH_AUDIO`` config.

A *voice* is an espeak-ng voice name with an optional variant, ``"en-us"`` or
``"en-gb-scotland+m4"`` (``espeak-ng --voices=en`` lists the English accents,
``espeak-ng --voices=variant`` the variants). ``TRAIN_VOICES`` and ``TEST_VOICES`` share neither
an accent nor a variant, so a model trained on the first is evaluated on voices it never heard.

Example:
    >>> paths, stats = synthesize_speech(["a red circle on the left"], ["en-us+f2"], [175], [50],
    ...                                  "/tmp/speech")                  # doctest: +SKIP
    >>> stats["synthesized"], stats["cached"]                            # doctest: +SKIP
    (1, 0)
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import resource
import shutil
import subprocess
import time
from pathlib import Path

from zoo.data.errors import DataError

__all__ = [
    "ESPEAK",
    "SPEECH_PITCHES",
    "SPEECH_SPEEDS",
    "TEST_VOICES",
    "TRAIN_VOICES",
    "find_espeak",
    "speech_file_name",
    "synthesize_speech",
]

ESPEAK = "espeak-ng"
# English accents x variants; the two lists share neither (unseen voices at evaluation).
TRAIN_VOICES = (
    "en-us",
    "en-us+f2",
    "en-gb+m3",
    "en-gb+f4",
    "en-gb-x-rp+m2",
    "en-029+f1",
    "en-us-nyc+m6",
    "en-gb-x-gbcwmd+f3",
)
TEST_VOICES = ("en-gb-scotland+m4", "en-gb-x-gbclan+f5", "en-gb-x-gbclan+m7")
SPEECH_SPEEDS = (160, 175, 190, 205)  # words per minute (espeak-ng -s; its default is 175)
SPEECH_PITCHES = (35, 50, 65)  # 0-99 (espeak-ng -p; its default is 50)


def find_espeak():
    """The path of the ``espeak-ng`` program.

    Raises:
        DataError: espeak-ng is not on the ``PATH`` (one line, saying how to install it).
    """
    path = shutil.which(ESPEAK)
    if path is None:
        raise DataError(
            "espeak-ng not found on the PATH: spoken captions need it (sudo apt-get install "
            "espeak-ng), or pass a folder of recorded (image, audio, text) triples instead",
            field="program",
            value=ESPEAK,
        )
    return path


def speech_file_name(text, voice, speed, pitch):
    """The cache file name of one utterance: a hash of ``(text, voice, speed, pitch)``."""
    key = f"{text}\x1f{voice}\x1f{int(speed)}\x1f{int(pitch)}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:20] + ".wav"


def _speak(espeak, text, voice, speed, pitch, path):
    partial = f"{path}.{os.getpid()}.partial"
    command = [espeak, "-v", voice, "-s", str(int(speed)), "-p", str(int(pitch))]
    proc = subprocess.run(
        [*command, "--stdin", "-w", partial], input=text, capture_output=True, text=True
    )
    if proc.returncode != 0 or not os.path.isfile(partial) or os.path.getsize(partial) <= 44:
        if os.path.exists(partial):
            os.remove(partial)
        reason = (proc.stderr or proc.stdout or "no audio written").strip().splitlines()[0]
        raise DataError(
            f"espeak-ng failed ({reason})", field=f"voice {voice!r}, text {text!r}", value=voice
        )
    os.replace(partial, path)  # atomic: a half-written file never looks cached


def synthesize_speech(texts, voices, speeds, pitches, folder, workers=2):
    """Speaks ``texts[i]`` with ``voices[i]``, ``speeds[i]``, ``pitches[i]`` into WAV files.

    Each distinct ``(text, voice, speed, pitch)`` is synthesised once, into
    ``folder/speech_file_name(...)``; files already there are reused (the cache).

    Args:
        texts: strings to say.
        voices: espeak-ng voice per text (``"en-us"``, ``"en-gb+f4"``...).
        speeds: words per minute per text (espeak-ng ``-s``, 80-450).
        pitches: pitch per text (espeak-ng ``-p``, 0-99).
        folder: cache folder (created).
        workers: espeak-ng processes at a time.

    Returns:
        ``(paths, stats)``: one ``Path`` per text and ``{"requested", "synthesized", "cached",
        "seconds", "seconds_per_file", "cpu_seconds"}`` (wall-clock time of the synthesis, and
        the CPU time of the espeak-ng processes).

    Raises:
        DataError: espeak-ng is missing, or fails on a voice or text.
    """
    texts, voices, speeds, pitches = (list(x) for x in (texts, voices, speeds, pitches))
    if not len(texts) == len(voices) == len(speeds) == len(pitches):
        raise ValueError(
            "texts, voices, speeds and pitches must have one entry per utterance. Received "
            f"lengths {len(texts)}, {len(voices)}, {len(speeds)}, {len(pitches)}"
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths, todo = [], {}
    for text, voice, speed, pitch in zip(texts, voices, speeds, pitches, strict=True):
        path = folder / speech_file_name(text, voice, speed, pitch)
        paths.append(path)
        if not path.is_file() and path not in todo:
            todo[path] = (text, voice, int(speed), int(pitch))
    start = time.monotonic()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if todo:
        espeak = find_espeak()
        with concurrent.futures.ThreadPoolExecutor(max(1, int(workers))) as pool:
            jobs = [pool.submit(_speak, espeak, *item, path) for path, item in todo.items()]
            for job in jobs:
                job.result()
    seconds = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    stats = {
        "requested": len(texts),
        "synthesized": len(todo),
        "cached": len(texts) - len(todo),
        "seconds": round(seconds, 3),
        "seconds_per_file": round(seconds / len(todo), 5) if todo else 0.0,
        "cpu_seconds": round(cpu, 3),
    }
    return paths, stats
