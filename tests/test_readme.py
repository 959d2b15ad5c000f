"""The README's Python examples run as written, so they cannot go stale."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
FAMILIES = (
    "Detection",
    "Landmarks",
    "Metric learning",
    "Self-supervised vision",
    "Masked text",
    "Multimodal",
)
# **Title** (optional words):  then a fenced python block
BLOCK = re.compile(r"\*\*([^*]+)\*\*[^\n]*\n\n```python\n(.*?)\n```", re.DOTALL)


def _examples():
    return {title: code for title, code in BLOCK.findall(README.read_text(encoding="utf-8"))}


def test_one_example_per_family_and_a_short_readme():
    assert list(_examples()) == list(FAMILIES)
    assert README.stat().st_size <= 15 * 1024


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_readme_example_runs(family, tmp_path):
    code = _examples()[family]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # every example ends by exporting a SavedModel under ./saved_models/<name>/1/
    exported = list(tmp_path.glob("saved_models/*/1/saved_model.pb"))
    assert len(exported) == 1, sorted(p.name for p in tmp_path.rglob("*"))
