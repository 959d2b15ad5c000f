"""zoo.text: masked-token ("fill in the blanks") self-supervision on text.

- ``grammar``: Portuguese sentences from a probabilistic grammar (words in ``grammar_pt.json``).
- ``corpora``: text files, fortunes-br, sentence and word splitting, train / held-out splits.
- ``tokenizer``: ``TextTokenizer``, word or character level, runs inside ``tf.data``.
- ``masking``: BERT token masking, span masking, the masked-language-model dataset.
- ``model``: a small Transformer encoder and its token head; ``loss``: ``MaskedTokenLoss``.
- ``metrics``: masked accuracy against the unigram baseline, fill-ins of blanked sentences.
"""

from zoo.text.corpora import (
    TEXT_CORPORA,
    chunk_words,
    load_fortunes_br,
    load_text_splits,
    read_text_files,
    split_sentences,
)
from zoo.text.grammar import grammar_corpus
from zoo.text.loss import (
    MaskedTokenLoss,
    masked_token_loss,
)
from zoo.text.masking import (
    make_mlm_dataset,
    mask_spans,
    mask_tokens,
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
from zoo.text.tokenizer import (
    LEVELS,
    RESERVED_TOKENS,
    TextTokenizer,
    words_per_text,
)

__all__ = [
    "build_mlm_model",
    "build_text_encoder",
    "chunk_words",
    "evaluate_mlm",
    "fill_in",
    "grammar_corpus",
    "LEVELS",
    "load_fortunes_br",
    "load_text_splits",
    "make_mlm_dataset",
    "mask_spans",
    "mask_tokens",
    "masked_accuracy",
    "masked_token_loss",
    "MaskedTokenLoss",
    "read_text_files",
    "RESERVED_TOKENS",
    "split_sentences",
    "TEXT_CORPORA",
    "TextTokenizer",
    "words_per_text",
]
