"""zoo.multimodal: CLIP-style contrastive towers for image, text and audio.

- ``scenes``: synthetic scenes of coloured shapes and their images; ``captions``: their
  captions and ``CaptionTokenizer`` (the text family's tokenizer); ``audio``: their sounds as
  log-mel features; ``data``: the three renderings paired, in memory and as ``tf.data``.
- ``model``: the towers and ``build_clip``; ``loss``: symmetric InfoNCE (``CLIPLoss``).
- ``metrics``: cross-modal recall@k and the similarity-matrix plot.
- ``speech``: captions spoken by espeak-ng (cached WAVs); ``folder``: folders of (image, WAV,
  caption) triples (``pairs.csv``) read into ``MultimodalData``, and the spoken scenes written
  as one.
- ``export``: the text tower with caption strings in and the audio tower with waveforms in
  (tokenizer / log-mel inside the graph), as SavedModel + ``.tflite``, verified.
"""

from zoo.multimodal.captions import CaptionTokenizer
from zoo.multimodal.data import (
    make_multimodal_data,
    multimodal_dataset,
)
from zoo.multimodal.export import (
    export_audio_tower,
    export_text_tower,
)
from zoo.multimodal.folder import (
    load_multimodal_folder,
    read_multimodal_folder,
    write_speech_folder,
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
from zoo.multimodal.speech import synthesize_speech

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
    "export_audio_tower",
    "export_text_tower",
    "load_multimodal_folder",
    "make_multimodal_data",
    "multimodal_dataset",
    "read_multimodal_folder",
    "similarity_matrix_plot",
    "synthesize_speech",
    "write_speech_folder",
    "zero_shot_classify",
]
