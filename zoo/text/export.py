"""Export of a masked-token model as a strings-in, strings-out fill-in SavedModel.

``export_fill_in_model(model, tokenizer, path, top_k=5)`` writes a SavedModel whose
``serving_default`` signature is ``zoo.text.BlankFiller``: raw sentences with blanks in, the
top-k fills per blank out, with the tokenizer, the candidate words and the model inside the
graph (written with ``keras.export.ExportArchive``).

Signature ``serving_default``:

- input ``sentences``: tf.string ``(B,)``, e.g. ``"Deixa o menino ___ bola e __pren_____"``
  (``___``: a whole unknown word; ``__pren_____``: a word with the visible letters given, each
  run of ``_`` one or more letters);
- outputs ``fills`` tf.string ``(B, M, top_k)``, ``scores`` float32 ``(B, M, top_k)``
  (log-probabilities, ``-inf`` for an empty fill), ``num_blanks`` int32 ``(B,)``,
  ``sentences`` tf.string ``(B,)`` (best fills put in). ``M`` is the most blanks in one
  sentence of the batch (at least 1). Empty sentences and sentences without blanks give
  ``num_blanks`` 0 and empty fills, not an error.

Loading: a WordPiece export runs TensorFlow Text's ``FastWordpieceTokenizeWithOffsets`` op, so
the loading process must ``import tensorflow_text`` (which registers it) before
``tf.saved_model.load``; a word-level export needs TensorFlow only. ``manifest.json`` next to
``saved_model.pb`` says which (``requires``).

TFLite: no runnable ``.tflite``. The WordPiece graph does not convert: TensorFlow Text's
``FastWordpieceTokenizeWithOffsets`` is neither a TFLite builtin nor a Select TF (Flex) op
("neither a custom op nor a flex op"); ``convert_fill_in_tflite`` raises with the converter's
message. The string and ragged-tensor ops of both levels (``StringSplitV2``,
``StaticRegexReplace``, ``RegexFullMatch``, ``StringLower``, ``StringJoin``,
``UnsortedSegmentJoin``, ``RaggedGather``, ``RaggedTensorToTensor``) are not builtins either,
so the word-level graph converts only as Select TF ops, which need the Flex delegate at run
time (the LiteRT interpreter installed with the zoo has none: "Node FlexStringSplitV2 failed to
prepare"). The model itself (ids -> logits) converts with ``zoo.export.export_tflite``; on a
device, tokenize and pick the fills outside it.

Example:
    >>> path = export_fill_in_model(mlm, tokenizer, "exports/fill_in", top_k=5)
    >>> outputs = run_fill_in_subprocess(path, ["Deixa o menino ___ bola e __pren_____"])
    >>> outputs["fills"][0][1][:3]           # e.g. ['aprender', 'aprende', 'prender']
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from zoo.export.verify import run_script_subprocess
from zoo.text.fill import BlankFiller
from zoo.training.run_dir import json_safe

__all__ = [
    "FILL_IN_FORMAT",
    "convert_fill_in_tflite",
    "export_fill_in_model",
    "run_fill_in_subprocess",
    "verify_fill_in_export",
]

FILL_IN_FORMAT = "zoo.text.fill_in/1"
SIGNATURE = "serving_default"
INPUT_NAME = "sentences"
MANIFEST = "manifest.json"
OUTPUT_NAMES = ("fills", "scores", "num_blanks", "sentences")


def _requires(tokenizer):
    return ["tensorflow_text"] if tokenizer.level == "wordpiece" else []


def export_fill_in_model(
    model,
    tokenizer,
    path,
    top_k=5,
    *,
    max_pieces=4,
    max_candidates=None,
    overwrite=False,
    metrics=None,
):
    """Writes the fill-in SavedModel (signature in the module docstring) to ``path``.

    Args:
        model: ids ``(B, L)`` -> logits ``(B, L, V)`` (``build_mlm_model``), trained.
        tokenizer: Its ``WordPieceTokenizer`` or word-level ``TextTokenizer``.
        path: Output directory (written to a hidden sibling first, then renamed).
        top_k: Fills per blank.
        max_pieces: Longest candidate word in pieces (WordPiece).
        max_candidates: At most this many candidate words (most frequent first).
        overwrite: Replace an existing ``path``; otherwise that raises.
        metrics: Optional JSON-able dict stored in the manifest.

    Returns:
        ``pathlib.Path`` of the SavedModel directory (holding ``manifest.json``).

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ValueError: a character-level tokenizer (no words to propose).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it.")
    filler = BlankFiller(
        model, tokenizer, top_k=top_k, max_pieces=max_pieces, max_candidates=max_candidates
    )
    archive = keras.export.ExportArchive()
    archive.track(model)
    if filler._word_lookup is not None:
        archive.track(filler._word_lookup)
    archive.add_endpoint(
        SIGNATURE,
        filler.__call__,
        input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_NAME)],
    )
    manifest = {
        "format": FILL_IN_FORMAT,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "requires": _requires(tokenizer),
        "signature": {
            "name": SIGNATURE,
            "inputs": {INPUT_NAME: {"dtype": "string", "shape": [None]}},
            "outputs": {
                "fills": {"dtype": "string", "shape": [None, None, top_k]},
                "scores": {"dtype": "float32", "shape": [None, None, top_k]},
                "num_blanks": {"dtype": "int32", "shape": [None]},
                "sentences": {"dtype": "string", "shape": [None]},
            },
            "blank": filler.blank,
        },
        "tokenizer": {
            "level": tokenizer.level,
            "vocab_size": tokenizer.vocab_size,
            "sequence_length": tokenizer.sequence_length,
        },
        "top_k": top_k,
        "max_pieces": filler.max_pieces,
        "num_candidates": filler.num_candidates,
        "max_candidates": max_candidates,
        "model": {"name": model.name, "parameters": int(model.count_params())},
        "metrics": metrics,
        "tflite": "not convertible: string and ragged TensorFlow ops and TensorFlow Text's "
        "FastWordpieceTokenizeWithOffsets are not TFLite builtins",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name}-", dir=path.parent))
    try:
        archive.write_out(str(staging / "model"), verbose=False)
        with open(staging / "model" / MANIFEST, "w", encoding="utf-8") as f:
            json.dump(json_safe(manifest), f, indent=2, ensure_ascii=False, allow_nan=False)
            f.write("\n")
        if path.exists():
            shutil.rmtree(path)
        os.replace(staging / "model", path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


_SUBPROCESS_SCRIPT = r"""
import json, sys
import tensorflow as tf

model_dir, in_path, out_path = sys.argv[1:4]
with open(f"{model_dir}/manifest.json", encoding="utf-8") as f:
    manifest = json.load(f)
for module in manifest["requires"]:  # registers the ops the graph runs (tensorflow_text)
    __import__(module)
assert "zoo" not in sys.modules, "the fill-in SavedModel check must not import zoo"
with open(in_path, encoding="utf-8") as f:
    sentences = json.load(f)
serve = tf.saved_model.load(model_dir).signatures["serving_default"]
out = serve(sentences=tf.constant(sentences, tf.string))
result = {
    "fills": [[[w.decode("utf-8") for w in b] for b in row] for row in out["fills"].numpy()],
    "scores": [[[None if s == float("-inf") else float(s) for s in b] for b in row]
               for row in out["scores"].numpy()],
    "num_blanks": out["num_blanks"].numpy().tolist(),
    "sentences": [s.decode("utf-8") for s in out["sentences"].numpy()],
    "zoo_in_sys_modules": "zoo" in sys.modules,
    "imported": manifest["requires"],
}
with open(out_path, "w", encoding="utf-8") as f:
    json.dump(result, f, ensure_ascii=False)
"""


def _to_arrays(result):
    fills = np.array(result["fills"], dtype=object)
    scores = np.array(
        [
            [[-np.inf if s is None else s for s in blank] for blank in row]
            for row in result["scores"]
        ],
        dtype=np.float32,
    )
    return {
        "fills": fills,
        "scores": scores,
        "num_blanks": np.array(result["num_blanks"], np.int32),
        "sentences": np.array(result["sentences"], dtype=object),
    }


def run_fill_in_subprocess(path, sentences, timeout=600):
    """Runs the exported signature in a fresh Python that imports TensorFlow (and the modules
    of the manifest's ``requires``: ``tensorflow_text`` for WordPiece) but never zoo.

    Args:
        path: The directory ``export_fill_in_model`` wrote.
        sentences: List of strings.
        timeout: Seconds before the subprocess is killed.

    Returns:
        dict of NumPy arrays: ``fills`` (str, ``(B, M, top_k)``), ``scores`` (float32, -inf
        for empty fills), ``num_blanks``, ``sentences`` (str ``(B,)``), plus ``imported``
        (the modules the subprocess imported besides TensorFlow).
    """
    with tempfile.TemporaryDirectory(prefix="zoo-fill-in-") as tmp:
        tmp = Path(tmp)
        (tmp / "in.json").write_text(json.dumps(list(sentences), ensure_ascii=False), "utf-8")
        run_script_subprocess(
            _SUBPROCESS_SCRIPT,
            [str(Path(path).resolve()), str(tmp / "in.json"), str(tmp / "out.json")],
            cwd=tmp,
            timeout=timeout,
            what=f"{path}: the fill-in SavedModel subprocess",
        )
        result = json.loads((tmp / "out.json").read_text("utf-8"))
    arrays = _to_arrays(result)
    arrays["imported"] = result["imported"]
    return arrays


def _in_process(filler, sentences):
    out = filler(tf.constant(list(sentences), tf.string))
    decode = np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])
    return {
        "fills": decode(out["fills"].numpy()),
        "scores": out["scores"].numpy(),
        "num_blanks": out["num_blanks"].numpy(),
        "sentences": decode(out["sentences"].numpy()),
    }


def verify_fill_in_export(model, tokenizer, path, sentences, tolerance=1e-4):
    """Compares the exported fill-in SavedModel, run without zoo (``run_fill_in_subprocess``),
    with the same ``BlankFiller`` in this process.

    The fills, the number of blanks and the completed sentences must be equal; the finite
    scores within ``tolerance * max(1, max |score|)`` and the ``-inf`` ones at the same places.
    (``zoo.export.verify_export`` compares numeric signatures; this signature is strings.)

    Args:
        model, tokenizer: What was exported.
        path: The export directory.
        sentences: List of strings with blanks.
        tolerance: Relative limit on the score differences.

    Returns:
        dict: ``ok``, ``failures`` (list of messages), ``max_score_diff``, ``in_process`` and
        ``saved_model`` (the two results), ``imported``.
    """
    with open(Path(path) / MANIFEST, encoding="utf-8") as f:
        manifest = json.load(f)
    filler = BlankFiller(
        model,
        tokenizer,
        top_k=manifest["top_k"],
        max_pieces=manifest["max_pieces"],
        max_candidates=manifest["max_candidates"],
    )
    reference = _in_process(filler, sentences)
    exported = run_fill_in_subprocess(path, sentences)
    failures = []
    for name in ("fills", "num_blanks", "sentences"):
        if reference[name].shape != exported[name].shape or not np.array_equal(
            reference[name], exported[name]
        ):
            failures.append(
                f"{name} differ: in process {reference[name].tolist()!r}, "
                f"SavedModel {exported[name].tolist()!r}"
            )
    ref, got = reference["scores"], exported["scores"]
    diff = float("nan")
    if ref.shape != got.shape or not np.array_equal(np.isinf(ref), np.isinf(got)):
        failures.append("scores differ in shape or in where they are -inf")
    else:
        finite = np.isfinite(ref)
        diff = float(np.abs(ref[finite] - got[finite]).max(initial=0.0))
        limit = tolerance * max(1.0, float(np.abs(ref[finite]).max(initial=0.0)))
        if diff > limit:
            failures.append(f"scores differ by {diff:.3g} > {limit:.3g}")
    return {
        "ok": not failures,
        "failures": failures,
        "max_score_diff": diff,
        "in_process": reference,
        "saved_model": exported,
        "imported": exported["imported"],
    }


def convert_fill_in_tflite(path, tflite_path):
    """Tries to convert the fill-in SavedModel to ``.tflite`` (builtin ops plus Select TF ops).

    A WordPiece export does not convert (``FastWordpieceTokenizeWithOffsets``, see the module
    docstring): the converter's error is raised as ``ValueError`` naming the op. A word-level
    export converts, but only runs with the Flex delegate (its string ops are Select TF ops).

    Returns:
        The ``.tflite`` path when the conversion succeeds.
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(str(path), [SIGNATURE])
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS,
        tf.lite.OpsSet.SELECT_TF_OPS,
    ]
    try:
        flatbuffer = converter.convert()
    except Exception as error:  # the converter raises ConverterError and others
        raise ValueError(f"the fill-in SavedModel does not convert to TFLite: {error}") from None
    tflite_path = Path(tflite_path)
    tflite_path.parent.mkdir(parents=True, exist_ok=True)
    tflite_path.write_bytes(flatbuffer)
    return tflite_path
