"""Masked-token recipe: --smoke trains, evaluates against the unigram baseline, fills blanks."""

import json

import pytest
from recipe_runner import RECIPES, run_recipe

from zoo.data.errors import DataError
from zoo.text.metrics import FILL_IN_SENTENCE


def smoke(tmp_path, *extra):
    args = [
        RECIPES / "pretrain_text_mlm.py",
        "--smoke",
        "--output",
        tmp_path / "runs",
        "--name",
        "smoke",
        *extra,
    ]
    return run_recipe(args, tmp_path, timeout=300), tmp_path / "runs" / "smoke"


def check_outputs(run, level):
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["level"] == level
    held_out = metrics["held_out"]
    assert 0.0 <= held_out["masked_accuracy"] <= 1.0
    assert 0.0 < held_out["unigram_accuracy"] <= 1.0
    assert held_out["num_selected"] > 0
    assert metrics["fills"][0]["sentence"] == FILL_IN_SENTENCE
    assert "_" not in metrics["fills"][0]["completion"]
    fills = (run / "fills.txt").read_text(encoding="utf-8")
    assert FILL_IN_SENTENCE in fills
    assert (run / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert (run / "mlm.keras").stat().st_size > 10_000
    assert json.loads((run / "tokenizer.json").read_text(encoding="utf-8"))["level"] == level
    return metrics


@pytest.mark.slow
def test_grammar_word_level_smoke(tmp_path):
    proc, run = smoke(tmp_path, "--no-export")  # the default tokenizer
    metrics = check_outputs(run, "word")
    assert metrics["corpus"] == "grammar" and metrics["masking"] == "tokens"
    assert metrics["num_train"] == 400 and metrics["num_test"] == 100
    assert "held-out masked accuracy" in proc.stdout and "unigram baseline" in proc.stdout
    # At word level a masked word is one token: the word figures are the token figures.
    held_out = metrics["held_out"]
    assert held_out["word_accuracy"] == pytest.approx(held_out["masked_accuracy"])
    assert "export" not in metrics and not (run / "fill_in").exists()


@pytest.mark.slow
def test_grammar_wordpiece_smoke_exports_the_fill_in_model(tmp_path):
    proc, run = smoke(tmp_path, "--tokenizer", "wordpiece")
    metrics = check_outputs(run, "wordpiece")
    assert metrics["tokenizer"] == "wordpiece" and metrics["masking"] == "words"
    held_out = metrics["held_out"]
    assert 0.0 <= held_out["word_accuracy"] <= 1.0 and held_out["num_words"] > 0
    assert held_out["num_known_words"] <= held_out["num_words"]
    export = metrics["export"]
    assert export["verified_without_zoo"] and export["imported"] == ["tensorflow_text"]
    assert (run / "fill_in" / "saved_model.pb").exists()
    # Top 5 per blank of the example, read back from the SavedModel run without zoo.
    assert len(export["top_k"]) == 2 and all(1 <= len(fills) <= 5 for fills in export["top_k"])
    assert all("pren" in fill[1:-1] for fill in export["top_k"][1])
    assert "held-out masked word accuracy" in proc.stdout and "checked without zoo" in proc.stdout


def test_flags_and_bad_data_file(tmp_path, load_script):
    recipe = load_script("recipes/pretrain_text_mlm.py")
    args = recipe.parse_args(["--smoke", "--data", "a.txt", "b.txt", "--level", "char"])
    assert args.data == ["a.txt", "b.txt"] and args.level == "char"
    assert args.tokenizer == "word" and args.max_tokens is None and args.top_k == 5
    assert recipe.parse_args(["--tokenizer", "wordpiece"]).tokenizer == "wordpiece"
    with pytest.raises(ValueError, match="--level char needs --tokenizer word"):
        recipe.main(
            ["--smoke", "--tokenizer", "wordpiece", "--level", "char", "--output", str(tmp_path)]
        )
    assert (args.epochs, args.steps_per_epoch, args.num_train, args.jit_compile) == (
        1,
        3,
        400,
        False,
    )
    data = tmp_path / "latin1.txt"
    data.write_bytes("ação\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.txt: line 1: not UTF-8"):
        recipe.main(["--smoke", "--output", str(tmp_path / "runs"), "--data", str(data)])
