"""The quiet console: TensorFlow's native start-up notes are dropped, everything else passes."""

import os
import subprocess
import sys

import pytest

from zoo import _console

# Lines as TensorFlow 2.21 prints them on a CPU machine.
NOTES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796616933.498213    1509 port.cc:153] oneDNN custom operations are on. You may "
    "see slightly different numerical results due to floating-point round-off errors.",
    "I0000 00:00:1796616933.499020    1509 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
    "E0000 00:00:1796617099.863483    8162 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
    "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "E0000 00:00:1796617109.327891    8162 util.cc:131] oneDNN supports DT_INT64 only on "
    "platforms with AVX-512. Falling back to the default Eigen-based implementation if present.",
    "fully_quantize: 0, inference_type: 6, input_inference_type: FLOAT32, "
    "output_inference_type: FLOAT32",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
]
KEPT = [
    "error: data.json: images[0].file_name = 'a.png': image file not found",
    "UserWarning: something a user should see",
    "Epoch 1/3",
    "E0000 00:00:1 some_op.cc:12] Out of memory while trying to allocate 1 GiB",
]


@pytest.mark.parametrize("line", NOTES)
def test_start_up_notes_are_noise(line):
    assert _console.is_noise(line)


@pytest.mark.parametrize("line", KEPT)
def test_other_lines_are_kept(line):
    assert not _console.is_noise(line)


def _run(code, **env):
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


def test_importing_zoo_then_keras_prints_no_start_up_notes():
    """The hook catches TensorFlow imported through keras, keeps TF's real loader and spec, and
    lets a line the program writes itself through."""
    code = (
        "import os, sys\n"
        "import zoo, keras\n"
        "import tensorflow as tf\n"
        "assert type(tf.__loader__).__name__ == 'SourceFileLoader', tf.__loader__\n"
        "assert tf.__spec__.loader is tf.__loader__\n"
        "keras.ops.add(1.0, 2.0)\n"
        "os.write(2, b'a line of the program\\n')\n"
    )
    result = _run(code, ZOO_TF_LOGS="")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert "a line of the program" in lines
    assert not [line for line in lines if _console.is_noise(line)], result.stderr


def test_filtered_stderr_passes_other_lines_live_and_restores_stderr():
    code = (
        "import os, sys\n"
        "from zoo import _console\n"
        "with _console.filtered_stderr():\n"
        f"    os.write(2, {(NOTES[4] + chr(10)).encode()!r})\n"
        "    print('kept', file=sys.stderr)\n"
        "    os.write(2, b'no newline at the end')\n"
        f"os.write(2, {(chr(10) + NOTES[4] + chr(10)).encode()!r})\n"
    )
    result = _run(code)
    assert result.returncode == 0
    lines = result.stderr.splitlines()
    # Inside the block the note is dropped; after it descriptor 2 is the real stderr again.
    assert lines == ["kept", "no newline at the end", NOTES[4]]
