"""zoo.ssl: self-supervised vision (labels computed from the images themselves).

- ``model``: ``build_ssl_encoder`` and the pretext heads; ``loss``: the pretext losses.
- ``pretext``: batched, stateless pretext labels (rotation, jigsaw, colorization, inpainting,
  denoising), in tf.data or inside the model.
- ``simclr`` + ``contrastive`` (NT-Xent), ``vae``, ``deepcluster``: the other methods.
- ``pretrain``: ``pretrain_encoder``, every method behind one call.
"""

from zoo.ssl.contrastive import (
    NTXentLoss,
    nt_xent_loss,
)
from zoo.ssl.deepcluster import (
    DeepCluster,
    DeepClusterCallback,
)
from zoo.ssl.gan import (
    GAN,
    GANSampleGrid,
    build_gan,
    class_coverage,
)
from zoo.ssl.kmeans import (
    kmeans,
)
from zoo.ssl.loss import (
    ColorizationQuantizedLoss,
    ColorizationRegressionLoss,
    MaskedReconstructionLoss,
    colorization_class_weights,
    colorization_quantized_loss,
    colorization_regression_loss,
    masked_reconstruction_loss,
    pretext_loss,
)
from zoo.ssl.model import (
    SSL_BACKBONES,
    build_pretext_model,
    build_ssl_encoder,
    encoder_feature_map,
)
from zoo.ssl.pretext import (
    PRETEXT_TASKS,
    TASKS,
    OnDevicePretext,
    PretextLayer,
    ab_bins,
    as_seed,
    batch_seed,
    colorization,
    denoising,
    images_of,
    inpainting,
    inpainting_masks,
    jigsaw,
    jigsaw_crop,
    jigsaw_min_distance,
    jigsaw_permutations,
    make_pretext_dataset,
    pretext_options,
    pretext_transform,
    quantize_ab,
    rotate_images,
    rotation,
    shuffle_tiles,
    split_pretext_transform,
)
from zoo.ssl.pretrain import (
    SSL_METHODS,
    PretrainResult,
    pretrain_encoder,
)
from zoo.ssl.simclr import (
    SimCLR,
    build_simclr,
    simclr_augment,
)
from zoo.ssl.vae import (
    VAE,
    build_vae,
)

__all__ = [
    "ab_bins",
    "as_seed",
    "batch_seed",
    "build_gan",
    "build_pretext_model",
    "build_simclr",
    "build_ssl_encoder",
    "build_vae",
    "colorization",
    "colorization_class_weights",
    "colorization_quantized_loss",
    "colorization_regression_loss",
    "ColorizationQuantizedLoss",
    "ColorizationRegressionLoss",
    "DeepCluster",
    "DeepClusterCallback",
    "denoising",
    "encoder_feature_map",
    "images_of",
    "inpainting",
    "inpainting_masks",
    "jigsaw",
    "jigsaw_crop",
    "jigsaw_min_distance",
    "jigsaw_permutations",
    "kmeans",
    "make_pretext_dataset",
    "masked_reconstruction_loss",
    "MaskedReconstructionLoss",
    "nt_xent_loss",
    "NTXentLoss",
    "OnDevicePretext",
    "pretext_loss",
    "pretext_options",
    "PRETEXT_TASKS",
    "pretext_transform",
    "PretextLayer",
    "pretrain_encoder",
    "PretrainResult",
    "quantize_ab",
    "rotate_images",
    "rotation",
    "shuffle_tiles",
    "SimCLR",
    "simclr_augment",
    "split_pretext_transform",
    "SSL_BACKBONES",
    "SSL_METHODS",
    "TASKS",
    "VAE",
    "GAN",
    "GANSampleGrid",
    "class_coverage",
]
