"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, arXiv:1708.07747), offline: the Debian package's IDX files.

The Debian package `dataset-fashion-mnist` (Expat/MIT, Zalando SE 2017) installs the four gzip'd IDX files under
`/usr/share/datasets/fashion-mnist/`. They are read with MNIST's validated IDX reader (`mnist.read_idx`, the same
magic/type/size checks) and split like MNIST: train = the first 50k of the 60k training images, val = the last 10k,
test = the 10k test images. `$MLREADS_FASHION` (a folder with the same four files) overrides the location.

Fashion-MNIST stands in for CIFAR-10 (not available offline) in the AlexNet and ResNet experiments: 28x28 grey
images of ten clothing classes, harder than MNIST (kNN on pixels is about 85%, against 97% on MNIST).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from mlreads.core.data.mnist import load_idx_splits

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
INSTALL = "apt-get install -y dataset-fashion-mnist"
N_VAL = 10_000  # the last 10k of the 60k training images, as for MNIST
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def find_source() -> Path | None:
    """The folder holding the four Fashion-MNIST IDX files, or None when they are not installed."""
    from mlreads.core.data import mnist

    env = os.environ.get("MLREADS_FASHION")
    for folder in ([Path(env).expanduser()] if env else []) + [DEBIAN_DIR]:
        if folder.is_dir() and mnist._idx_paths(folder) is not None:
            return folder
    return None


@functools.lru_cache(maxsize=1)
def _load(folder: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    data = load_idx_splits(folder, n_val=N_VAL)
    for split, (x, y) in data.items():
        if x.shape[1] != 784 or y.min() < 0 or y.max() > 9:
            raise ValueError(f"{folder}: Fashion-MNIST split {split} has bad shapes or labels")
    return data


def load_fashion() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fashion-MNIST as {"train", "val", "test"} -> (x uint8 (n, 784), y int64 (n,)), 50k / 10k / 10k.

    Raises DataMissing with the install command when the files are not there.
    """
    from mlreads.core.data import missing_message
    from mlreads.core.errors import DataMissing

    folder = find_source()
    if folder is None:
        raise DataMissing(missing_message("fashion"))
    return _load(str(folder))
