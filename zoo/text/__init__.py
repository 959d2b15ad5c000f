"""zoo.text: masked-token ("fill in the blanks") self-supervision on text.

- ``data``: corpora (a Portuguese grammar, fortunes-br, text files), the tokenizer, masking.
- ``model``: a small Transformer encoder and its token head; ``loss``: ``MaskedTokenLoss``.
- ``metrics``: masked accuracy against the unigram baseline, fill-ins of blanked sentences.
"""

from zoo.text.data import (
    TextTokenizer,
    grammar_corpus,
    load_fortunes_br,
    load_text_splits,
    make_mlm_dataset,
    mask_spans,
    mask_tokens,
    read_text_files,
)
from zoo.text.loss import (
    MaskedTokenLoss,
    masked_token_loss,
)
from zoo.text.metrics import (
    evaluate_mlm,
    fill_in,
    masked_accuracy,
)
from zoo.text.model import (
    build_mlm_model,
    build_text_encoder,
)

__all__ = [
    "build_mlm_model",
    "build_text_encoder",
    "evaluate_mlm",
    "fill_in",
    "grammar_corpus",
    "load_fortunes_br",
    "load_text_splits",
    "make_mlm_dataset",
    "mask_spans",
    "mask_tokens",
    "masked_accuracy",
    "masked_token_loss",
    "MaskedTokenLoss",
    "read_text_files",
    "TextTokenizer",
]
