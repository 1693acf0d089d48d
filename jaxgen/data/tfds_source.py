"""The TFDS path (`data_source="tfds"`): random-access `tfds.data_source` over array_record files.

As in TFDS's "TFDS for Jax and PyTorch" guide, this reads with no TensorFlow. Preparing a dataset does need
TensorFlow for some builders (STL-10 among them; Colab has it): then one line says so.
"""
from __future__ import annotations

import numpy as np

from jaxgen.data.dataset import DataNotFoundError, Dataset
from jaxgen.errors import DataError

TFDS_NAMES = {"mnist": "mnist", "cifar10": "cifar10", "stl10": "stl10"}
TFDS_SPLITS = {"unlabeled": "unlabelled"}  # jaxgen's split name -> TFDS's


def load_tfds(name: str, split: str, data_dir=None, allow_download: bool = True) -> Dataset:
    """`split` of `name` through `tfds.data_source` (array_record), as uint8 NHWC images and int labels."""
    if name not in TFDS_NAMES:
        raise DataNotFoundError(f"{name} has no TFDS source; the TFDS datasets here are {', '.join(TFDS_NAMES)}")
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataError("The TFDS source needs tensorflow-datasets: pip install tensorflow-datasets, "
                        "or use the default source") from None
    tfds_name, tfds_split = TFDS_NAMES[name], TFDS_SPLITS.get(split, split)
    try:
        source = tfds.data_source(tfds_name, split=tfds_split, data_dir=data_dir, download=allow_download,
                                  builder_kwargs={"file_format": "array_record"})
        info = tfds.builder(tfds_name, data_dir=data_dir, file_format="array_record").info
    except ImportError as error:  # TFDS imports TensorFlow lazily, when a builder needs it to prepare
        if (error.name or "").split(".")[0] == "tensorflow" or "TensorFlow" in str(error):
            raise DataError(f"TFDS needs TensorFlow to prepare {tfds_name}: pip install tensorflow, "
                            "or use the default source") from None
        raise
    except AssertionError as error:  # TFDS asserts that a dataset is prepared when download=False
        raise DataNotFoundError(f"TFDS has no prepared {tfds_name} ({error})") from None
    examples = [source[i] for i in range(len(source))]
    images = np.stack([np.asarray(e["image"], dtype=np.uint8) for e in examples])
    labels = np.array([int(e.get("label", -1)) for e in examples], dtype=np.int64)
    names = tuple(info.features["label"].names) if "label" in info.features else ()
    return Dataset(images, labels, names, f"tfds:{tfds_name}/{tfds_split}")
