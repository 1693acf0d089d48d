import gzip
import pickle
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import data


def _write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_mnist_idx_files(tmp_path, rng):
    folder = tmp_path / "mnist"
    folder.mkdir()
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], np.uint8)
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels)
    dataset = data.load("mnist", "test", tmp_path, allow_download=False)
    assert dataset.images.shape == (5, 28, 28, 1) and dataset.images.dtype == np.uint8
    np.testing.assert_array_equal(dataset.images[..., 0], images)
    np.testing.assert_array_equal(dataset.labels, labels)


def test_truncated_idx_file_is_reported(tmp_path, rng):
    folder = tmp_path / "mnist"
    folder.mkdir()
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    header = struct.pack(">BBBB3I", 0, 0, 8, 3, 5, 28, 28)
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(header + b"\0" * 100)
    with pytest.raises(ValueError, match="truncated"):
        data.load("mnist", "test", tmp_path, allow_download=False)


def test_cifar10_python_pickle_batches(tmp_path, rng):
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    chw = rng.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": chw.reshape(4, -1), b"labels": [9, 0, 2, 7]}, f)
    dataset = data.load("cifar10", "test", tmp_path, allow_download=False)
    np.testing.assert_array_equal(dataset.images, chw.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(dataset.labels, [9, 0, 2, 7])
    assert dataset.class_names[9] == "truck"


def test_cifar10_npz(tmp_path, rng):
    (tmp_path / "cifar10").mkdir()
    x = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "cifar10" / "cifar10.npz", x_train=x, y_train=np.arange(6), x_test=x[:2],
             y_test=np.array([1, 2]), class_names=np.array(data.CIFAR10_CLASSES))
    train = data.load("cifar10", "train", tmp_path, allow_download=False)
    test = data.load("cifar10", "test", tmp_path, allow_download=False)
    np.testing.assert_array_equal(train.images, x)
    assert test.labels.tolist() == [1, 2] and test.class_names == data.CIFAR10_CLASSES


def test_stl10_binary_is_column_major(tmp_path, rng):
    folder = tmp_path / "stl10" / "stl10_binary"
    folder.mkdir(parents=True)
    hwc = rng.integers(0, 256, (2, 96, 96, 3), dtype=np.uint8)
    # The official records are 3x96x96 in column-major order: channel, then column, then row.
    hwc.transpose(0, 3, 2, 1).tofile(folder / "test_X.bin")
    np.array([1, 10], np.uint8).tofile(folder / "test_y.bin")
    dataset = data.load("stl10", "test", tmp_path, allow_download=False)
    np.testing.assert_array_equal(dataset.images, hwc)
    assert dataset.labels.tolist() == [0, 9]  # stored 1..10, returned 0..9


def test_datasaurus_tsv(tmp_path):
    (tmp_path / "datasaurus").mkdir()
    (tmp_path / "datasaurus" / "DatasaurusDozen.tsv").write_text(
        "dataset\tx\ty\ndino\t1.5\t2\naway\t0\t0\ndino\t3\t4.25\n")
    np.testing.assert_array_equal(data.load_datasaurus("dino", tmp_path), [[1.5, 2.0], [3.0, 4.25]])


def test_missing_data_error_lists_the_expected_files(tmp_path):
    with pytest.raises(data.DataNotFoundError, match=r"t10k\}-\{images-idx3") as error:
        data.load("mnist", "train", tmp_path, allow_download=False)
    assert str(tmp_path) in str(error.value) and "JAXGEN_DATA_DIR" in str(error.value)


@pytest.mark.parametrize("name, split, image_shape", [("mnist", "train", (28, 28, 1)), ("stl10", "test", (96, 96, 3))])
def test_tfds_fallback_with_mock_data(monkeypatch, name, split, image_shape):
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    with tfds.testing.mock_data(num_examples=7):
        dataset = data.load(name, split)
    assert dataset.images.shape == (7, *image_shape) and dataset.images.dtype == np.uint8
    assert dataset.source == f"tfds:{name}" and len(dataset.class_names) == 10
    assert dataset.labels.min() >= 0 and dataset.labels.max() <= 9


def test_real_mnist_when_available():
    try:
        test = data.load("mnist", "test", allow_download=False)
    except data.DataNotFoundError:
        pytest.skip("the shared MNIST files are not beside this checkout")
    assert test.images.shape == (10000, 28, 28, 1)
    assert np.bincount(test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_batches_are_seeded_and_cover_the_epoch():
    first = data.batch_indices(10, 3, seed=1, epoch=0)
    assert [len(b) for b in first] == [3, 3, 3]
    assert [b.tolist() for b in first] == [b.tolist() for b in data.batch_indices(10, 3, seed=1, epoch=0)]
    assert first[0].tolist() != data.batch_indices(10, 3, seed=1, epoch=1)[0].tolist()
    everything = np.concatenate(data.batch_indices(10, 3, seed=1, epoch=0, drop_remainder=False))
    assert sorted(everything.tolist()) == list(range(10))


def test_gaussian_noise_statistics_and_clipping():
    images = jnp.full((4, 64, 64, 1), 0.5)
    noisy = data.add_gaussian_noise(jax.random.key(0), images, 0.1, clip=False)
    assert abs(float(jnp.std(noisy - images)) - 0.1) < 0.003 and abs(float(jnp.mean(noisy - images))) < 0.003
    clipped = data.add_gaussian_noise(jax.random.key(0), images, 2.0)
    assert float(clipped.min()) == 0.0 and float(clipped.max()) == 1.0


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
def test_patch_mask_hits_the_ratio_in_whole_patches(ratio):
    mask = data.patch_mask(jax.random.key(3), 5, 16, 16, 4, ratio)
    assert mask.shape == (5, 16, 16, 1)
    patches = mask[..., 0].reshape(5, 4, 4, 4, 4).transpose(0, 1, 3, 2, 4).reshape(5, 16, 16)
    per_patch = patches.mean(-1)
    assert set(np.unique(per_patch).tolist()) <= {0.0, 1.0}  # a patch is masked whole or not at all
    np.testing.assert_allclose((per_patch == 0).mean(-1), ratio)


def test_subset_is_seeded_and_not_a_prefix():
    labels = np.repeat(np.arange(10), 100)  # sorted by class, like cifar10.npz
    dataset = data.Dataset(np.zeros((1000, 2, 2, 1), np.uint8), labels, (), "sorted")
    picked = data.subset(dataset, 100, seed=3)
    assert len(picked) == 100 and len(set(picked.labels.tolist())) == 10
    np.testing.assert_array_equal(picked.labels, data.subset(dataset, 100, seed=3).labels)
    assert data.subset(dataset, None) is dataset
