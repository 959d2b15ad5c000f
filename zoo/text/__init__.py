"""zoo.text: masked-token ("fill in the blanks") self-supervision on text.

- ``grammar``: Portuguese sentences from a probabilistic grammar (words in ``grammar_pt.json``).
- ``corpora``: text files, fortunes-br, sentence and word splitting, train / held-out splits.
- ``tokenizer``: ``TextTokenizer``, word or character level, runs inside ``tf.data``.
- ``wordpiece``: ``WordPieceTokenizer``, sub-words learnt from the training text (TensorFlow
  Text), also inside ``tf.data`` and exported graphs; ``make_tokenizer``, ``load_tokenizer``.
- ``masking``: BERT token masking, whole-word masking, span masking, the MLM dataset.
- ``model``: a small Transformer encoder and its token head; ``loss``: ``MaskedTokenLoss``.
- ``metrics``: masked token and word accuracy against the unigram baseline, fill-ins.
- ``fill``: ``BlankFiller``, fill-ins as one graph (sentences in, top-k words out);
  ``export``: ``export_fill_in_model``, the strings-in, strings-out SavedModel, and its check.
"""

from zoo.text.corpora import (
    TEXT_CORPORA,
    chunk_words,
    load_fortunes_br,
    load_text_splits,
    read_text_files,
    split_sentences,
)
from zoo.text.export import (
    convert_fill_in_tflite,
    export_fill_in_model,
    run_fill_in_subprocess,
    verify_fill_in_export,
)
from zoo.text.fill import BlankFiller
from zoo.text.grammar import grammar_corpus
from zoo.text.loss import (
    MaskedTokenLoss,
    masked_token_loss,
)
from zoo.text.masking import (
    make_mlm_dataset,
    mask_spans,
    mask_tokens,
    mask_words,
)
from zoo.text.metrics import (
    evaluate_mlm,
    fill_in,
    known_word_ids,
    masked_accuracy,
    unigram_word,
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
from zoo.text.wordpiece import (
    TOKENIZER_LEVELS,
    WordPieceTokenizer,
    learn_wordpiece_vocabulary,
    load_tokenizer,
    make_tokenizer,
)

__all__ = [
    "BlankFiller",
    "build_mlm_model",
    "build_text_encoder",
    "chunk_words",
    "convert_fill_in_tflite",
    "evaluate_mlm",
    "export_fill_in_model",
    "fill_in",
    "grammar_corpus",
    "known_word_ids",
    "learn_wordpiece_vocabulary",
    "LEVELS",
    "load_fortunes_br",
    "load_text_splits",
    "load_tokenizer",
    "make_mlm_dataset",
    "make_tokenizer",
    "mask_spans",
    "mask_tokens",
    "mask_words",
    "masked_accuracy",
    "masked_token_loss",
    "MaskedTokenLoss",
    "read_text_files",
    "RESERVED_TOKENS",
    "run_fill_in_subprocess",
    "split_sentences",
    "TEXT_CORPORA",
    "TextTokenizer",
    "TOKENIZER_LEVELS",
    "unigram_word",
    "verify_fill_in_export",
    "WordPieceTokenizer",
    "words_per_text",
]
