"""zoo.multimodal: CLIP-style contrastive towers for image, text and audio.

- ``scenes``: synthetic scenes of coloured shapes and their images; ``captions``: their
  captions and ``CaptionTokenizer`` (the text family's tokenizer); ``audio``: their sounds as
  log-mel features; ``data``: the three renderings paired, in memory and as ``tf.data``.
- ``model``: the towers and ``build_clip``; ``loss``: symmetric InfoNCE (``CLIPLoss``).
- ``metrics``: cross-modal recall@k and the similarity-matrix plot.
"""

from zoo.multimodal.captions import CaptionTokenizer
from zoo.multimodal.data import (
    make_multimodal_data,
    multimodal_dataset,
)
from zoo.multimodal.loss import (
    CLIPLoss,
    clip_loss,
)
from zoo.multimodal.metrics import (
    cross_modal_recall_at_k,
    similarity_matrix_plot,
)
from zoo.multimodal.model import (
    CLIPLogits,
    build_audio_encoder,
    build_caption_encoder,
    build_clip,
    build_image_encoder,
    zero_shot_classify,
)

__all__ = [
    "build_audio_encoder",
    "build_caption_encoder",
    "build_clip",
    "build_image_encoder",
    "CaptionTokenizer",
    "clip_loss",
    "CLIPLogits",
    "CLIPLoss",
    "cross_modal_recall_at_k",
    "make_multimodal_data",
    "multimodal_dataset",
    "similarity_matrix_plot",
    "zero_shot_classify",
]
