"""Datasets that install offline: Fashion-MNIST, calibration photos, text for perplexity, a user's files."""

from pvq.data._catalog import DatasetInfo, list_datasets
from pvq.data._fashion_mnist import DEFAULT_FASHION_MNIST_ROOT, FASHION_MNIST_CLASSES, fashion_mnist, read_idx
from pvq.data._images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    image_folder,
    imagenet_normalize,
    imagenet_preprocess,
    load_image,
    sample_photo_crops,
    sample_photos,
)
from pvq.data._modality import check_data_modality
from pvq.data._text import perplexity_text, split_text, text_file

__all__ = [
    "DEFAULT_FASHION_MNIST_ROOT",
    "DatasetInfo",
    "FASHION_MNIST_CLASSES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "check_data_modality",
    "fashion_mnist",
    "image_folder",
    "imagenet_normalize",
    "imagenet_preprocess",
    "list_datasets",
    "load_image",
    "perplexity_text",
    "read_idx",
    "sample_photo_crops",
    "sample_photos",
    "split_text",
    "text_file",
]
