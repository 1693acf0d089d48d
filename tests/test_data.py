import gzip
import os
import pickle
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import data, errors
from jaxgen.data import downloads, stl10
from tests import synthetic_data


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def user_cache(tmp_path, monkeypatch):
    """An empty user cache (where verified files are remembered) for every test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user_cache"))


def accept(monkeypatch, folder):
    """Put the checksums of the official-named files under `folder` in the download table (for this test)."""
    for name, entry in synthetic_data.registry_for(folder).items():
        monkeypatch.setitem(downloads.REGISTRY, name, entry)


def test_mnist_idx_files_read_back_exactly(tmp_path, monkeypatch):
    written = synthetic_data.write_mnist(tmp_path / "mnist")
    accept(monkeypatch, tmp_path)
    for split in ("train", "test"):
        dataset = data.load("mnist", split, tmp_path, allow_download=False)
        assert dataset.images.shape == (synthetic_data.MNIST_SIZES[split], 28, 28, 1)
        assert dataset.images.dtype == np.uint8
        np.testing.assert_array_equal(dataset.images[..., 0], written[split][0])
        np.testing.assert_array_equal(dataset.labels, written[split][1])


def test_file_cut_short_in_the_data_folder_is_one_clear_error(tmp_path):
    """Tried as a new user would: a train-images .gz cut to 1,000 bytes (the official table applies)."""
    folder = tmp_path / "mnist"
    synthetic_data.write_mnist(folder)
    cut = folder / "train-images-idx3-ubyte.gz"
    cut.write_bytes(cut.read_bytes()[:1000])
    with pytest.raises(errors.DataError) as error:
        data.load("mnist", "train", tmp_path, allow_download=False)
    message = str(error.value)
    assert "\n" not in message and str(cut) in message and "1,000 bytes" in message and "9,912,422" in message
    assert isinstance(error.value, data.CorruptFileError)


def test_damaged_gzip_with_matching_checksum_names_the_file(tmp_path, monkeypatch):
    """Even where the table agrees (a table overridden, say), an unreadable file is a DataError, not EOFError."""
    folder = tmp_path / "mnist"
    synthetic_data.write_mnist(folder)
    cut = folder / "t10k-images-idx3-ubyte.gz"
    cut.write_bytes(cut.read_bytes()[:1000])
    accept(monkeypatch, tmp_path)
    with pytest.raises(data.CorruptFileError, match="t10k-images-idx3-ubyte.gz cannot be read"):
        data.load("mnist", "test", tmp_path, allow_download=False)


def test_truncated_idx_payload_is_reported(tmp_path, monkeypatch, rng):
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(synthetic_data.idx_bytes(np.zeros(3, np.uint8)))
    header = struct.pack(">BBBB3I", 0, 0, 8, 3, 5, 28, 28)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + b"\0" * 100))
    accept(monkeypatch, tmp_path)
    with pytest.raises(data.CorruptFileError, match="truncated"):
        data.load("mnist", "test", tmp_path, allow_download=False)


def test_placed_files_are_hashed_once(tmp_path, monkeypatch):
    synthetic_data.write_mnist(tmp_path / "mnist")
    accept(monkeypatch, tmp_path)
    data.load("mnist", "test", tmp_path, allow_download=False)
    calls = []
    monkeypatch.setattr(downloads.pooch, "file_hash", lambda *a, **k: calls.append(a) or "")
    data.load("mnist", "test", tmp_path, allow_download=False)
    assert calls == []  # size and modification time unchanged: no second hashing
    labels = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    os.utime(labels, ns=(0, 0))  # touched: checked again (and now fails with the stubbed hash)
    with pytest.raises(data.CorruptFileError, match="t10k-labels"):
        data.load("mnist", "test", tmp_path, allow_download=False)


def test_cifar10_archive_read_back_exactly(tmp_path, monkeypatch):
    written = synthetic_data.write_cifar_archive(tmp_path / "cifar10" / "cifar-10-python.tar.gz")
    accept(monkeypatch, tmp_path)
    for split in ("train", "test"):
        dataset = data.load("cifar10", split, tmp_path, allow_download=False)
        np.testing.assert_array_equal(dataset.images, written[split][0])
        np.testing.assert_array_equal(dataset.labels, written[split][1])
        assert dataset.class_names == data.CIFAR10_CLASSES
    assert len(written["train"][0]) == 5 * synthetic_data.CIFAR_BATCH["train"]


def test_cifar10_extracted_pickle_batches(tmp_path, rng):
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    chw = rng.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": chw.reshape(4, -1), b"labels": [9, 0, 2, 7]}, f)
    dataset = data.load("cifar10", "test", tmp_path, allow_download=False)
    np.testing.assert_array_equal(dataset.images, chw.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(dataset.labels, [9, 0, 2, 7])
    assert dataset.class_names[9] == "truck"


def test_cifar_batches_cannot_run_code(tmp_path):
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo unpickled",))

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Payload(), b"labels": []}))
    with pytest.raises(data.CorruptFileError, match="not part of a CIFAR batch"):
        data.load("cifar10", "test", tmp_path, allow_download=False)


def test_cifar10_npz(tmp_path, rng):
    (tmp_path / "cifar10").mkdir()
    x = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "cifar10" / "cifar10.npz", x_train=x, y_train=np.arange(6), x_test=x[:2],
             y_test=np.array([1, 2]), class_names=np.array(data.CIFAR10_CLASSES))
    train = data.load("cifar10", "train", tmp_path, allow_download=False)
    test = data.load("cifar10", "test", tmp_path, allow_download=False)
    np.testing.assert_array_equal(train.images, x)
    assert test.labels.tolist() == [1, 2] and test.class_names == data.CIFAR10_CLASSES


def test_stl10_archive_is_extracted_once_and_memory_mapped(tmp_path, monkeypatch):
    written = synthetic_data.write_stl10_archive(tmp_path / "stl10" / "stl10_binary.tar.gz")
    accept(monkeypatch, tmp_path)
    for split in ("train", "test", "unlabeled"):
        dataset = data.load("stl10", split, tmp_path, allow_download=False, progress=False)
        assert isinstance(dataset.images.base, np.memmap) or isinstance(dataset.images, np.memmap)
        np.testing.assert_array_equal(dataset.images, written[split][0])
        expected_labels = written[split][1] if written[split][1] is not None else -1
        np.testing.assert_array_equal(dataset.labels, expected_labels)
    assert (tmp_path / "stl10" / "stl10_binary" / "unlabeled_X.bin").exists()
    monkeypatch.setattr(stl10.tarfile, "open", lambda *a, **k: pytest.fail("extracted a second time"))
    data.load("stl10", "train", tmp_path, allow_download=False)
    assert len(data.load("stl10", "unlabelled", tmp_path, allow_download=False)) == 24  # TFDS's spelling


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


def test_stl10_npz_unlabeled_split_never_returns_test_images(tmp_path, rng):
    folder = tmp_path / "stl10"
    folder.mkdir()
    test = rng.integers(0, 256, (3, 96, 96, 3), dtype=np.uint8)
    np.savez(folder / "stl10.npz", x_train=test[:1], y_train=[1], x_test=test, y_test=[0, 1, 2])
    with pytest.raises(data.DataNotFoundError):  # an npz without x_unlabeled has no unlabeled split
        data.load("stl10", "unlabeled", tmp_path, allow_download=False)
    unlabeled = rng.integers(0, 256, (4, 96, 96, 3), dtype=np.uint8)
    (folder / "stl10_binary").mkdir()
    unlabeled.transpose(0, 3, 2, 1).tofile(folder / "stl10_binary" / "unlabeled_X.bin")
    dataset = data.load("stl10", "unlabeled", tmp_path, allow_download=False)
    np.testing.assert_array_equal(dataset.images, unlabeled)
    test_images = {image.tobytes() for image in data.load("stl10", "test", tmp_path, allow_download=False).images}
    assert not test_images & {image.tobytes() for image in dataset.images}


def test_datasaurus_ships_with_the_package(monkeypatch):
    monkeypatch.delenv("JAXGEN_DATA_DIR", raising=False)
    dino = data.load_datasaurus("dino")
    assert dino.shape == (142, 2) and dino.dtype == np.float32
    np.testing.assert_allclose(dino.mean(0), [54.26, 47.83], atol=0.01)  # the paper's shared statistics
    np.testing.assert_allclose(dino.std(0, ddof=1), [16.77, 26.94], atol=0.01)
    np.testing.assert_allclose(data.load_datasaurus("star").mean(0), [54.26, 47.83], atol=0.01)
    with pytest.raises(errors.ConfigError, match="bullseye"):
        data.load_datasaurus("diplodocus")


def test_datasaurus_tsv_in_the_data_folder_is_read_instead(tmp_path):
    (tmp_path / "datasaurus").mkdir()
    (tmp_path / "datasaurus" / "DatasaurusDozen.tsv").write_text(
        "dataset\tx\ty\ndino\t1.5\t2\naway\t0\t0\ndino\t3\t4.25\n")
    np.testing.assert_array_equal(data.load_datasaurus("dino", tmp_path), [[1.5, 2.0], [3.0, 4.25]])


def test_missing_data_error_speaks_to_a_user(tmp_path):
    with pytest.raises(data.DataNotFoundError) as error:
        data.load("mnist", "train", tmp_path, allow_download=False)
    message = str(error.value)
    assert str(tmp_path) in message and "t10k}-{images-idx3" in message and "JAXGEN_DATA_DIR" in message
    assert "python -m jaxgen.data download mnist" in message
    assert "shared" not in message and "looked for nothing" not in message
    assert isinstance(error.value, errors.DataError) and isinstance(error.value, FileNotFoundError)
    with pytest.raises(data.DataNotFoundError, match="2.6 GB"):
        data.load("stl10_first37", "test", tmp_path)


def test_unknown_names_are_config_errors(tmp_path):
    with pytest.raises(errors.ConfigError, match="mnist, cifar10"):
        data.load("imagenet", "train", tmp_path)
    with pytest.raises(errors.ConfigError, match="unlabeled"):
        data.load("mnist", "unlabeled", tmp_path)
    with pytest.raises(errors.ConfigError, match="files, tfds"):
        data.load("mnist", "train", tmp_path, data_source="hub")


@pytest.mark.parametrize("name, split, image_shape", [("mnist", "train", (28, 28, 1)),
                                                      ("stl10", "unlabelled", (96, 96, 3))])
def test_tfds_source_reads_array_record_with_mock_data(name, split, image_shape):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=7):
        dataset = data.load(name, split, data_source="tfds")
    assert dataset.images.shape == (7, *image_shape) and dataset.images.dtype == np.uint8
    assert dataset.source == f"tfds:{name}/{'unlabelled' if name == 'stl10' else split}"
    assert len(dataset.class_names) == 10 and 0 <= dataset.labels.min() <= dataset.labels.max() <= 9


def test_tfds_without_tensorflow_says_what_to_install(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")

    def needs_tensorflow(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow")

    monkeypatch.setattr(tfds, "data_source", needs_tensorflow)
    with pytest.raises(errors.DataError, match="pip install tensorflow, or use the default source"):
        data.load("stl10", "train", data_source="tfds")


def test_real_mnist_matches_the_published_counts(real_data_dir):
    test = data.load("mnist", "test", real_data_dir, allow_download=False)
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
