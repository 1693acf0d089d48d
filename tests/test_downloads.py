"""Downloads against a local HTTP server on 127.0.0.1 (tests/local_server.py): never any other address."""
import hashlib
import threading
import time

import numpy as np
import pytest

from jaxgen import data, errors
from jaxgen.data import __main__ as cli
from jaxgen.data import downloads
from tests import synthetic_data
from tests.local_server import refused_url

MNIST = downloads.DATASET_FILES["mnist"]


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    """An empty data folder and user cache, and no mirror, for every test."""
    monkeypatch.setenv("JAXGEN_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user_cache"))
    monkeypatch.delenv("JAXGEN_MIRROR", raising=False)
    monkeypatch.setattr(downloads, "RETRY_WAIT", 0.0)
    return tmp_path / "cache"


def describe_served(monkeypatch, folder, names, url=None):
    """Give the table entries of `names` the checksums of the copies in `folder` (and `url`/<name> as only URL)."""
    for name in names:
        entry = downloads.with_checksums(downloads.REGISTRY[name], (folder / name).read_bytes())
        monkeypatch.setitem(downloads.REGISTRY, name,
                            synthetic_data.serve_as(entry, (f"{url}/{name}",)) if url else entry)


def blob(folder, name="blob.bin", size=300_000):
    content = np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8).tobytes()
    (folder / name).write_bytes(content)
    return content


def test_download_is_checked_cached_and_not_repeated(file_server, empty_cache, monkeypatch):
    content = blob(file_server.folder)
    server = file_server()
    monkeypatch.setenv("JAXGEN_MIRROR", refused_url())  # stands for the data table's files, not for fetch_url
    sha = hashlib.sha256(content).hexdigest()
    path = downloads.fetch_url(f"{server.url}/blob.bin", folder="weights", known_hash=f"sha256:{sha}")
    assert path == empty_cache / "weights" / "blob.bin" and path.read_bytes() == content
    assert downloads.fetch_url(f"{server.url}/blob.bin", folder="weights", known_hash=sha) == path
    assert server.gets("blob.bin") == [None]  # the second call made no request
    assert [p.name for p in path.parent.iterdir()] == ["blob.bin"]  # the lock lives in the user cache


def test_dropped_connection_resumes_with_range(file_server, empty_cache):
    content = blob(file_server.folder)
    server = file_server("drop_halfway")
    path = downloads.fetch_url(f"{server.url}/blob.bin", folder="w",
                               known_hash=f"md5:{hashlib.md5(content).hexdigest()}", progress=False)
    assert path.read_bytes() == content  # byte-identical
    first, resumed = server.gets("blob.bin")
    assert first is None and 0 < int(resumed.removeprefix("bytes=").removesuffix("-")) <= len(content) // 2


def test_partial_file_of_an_earlier_run_is_resumed(file_server, empty_cache):
    content = blob(file_server.folder)
    server = file_server()
    (empty_cache / "w").mkdir(parents=True)
    (empty_cache / "w" / "blob.bin.part").write_bytes(content[:1234])
    path = downloads.fetch_url(f"{server.url}/blob.bin", folder="w", known_hash=hashlib.sha256(content).hexdigest())
    assert path.read_bytes() == content and server.gets("blob.bin") == ["bytes=1234-"]
    assert not (empty_cache / "w" / "blob.bin.part").exists()


def test_wrong_bytes_leave_nothing_in_the_cache(file_server, empty_cache):
    content = blob(file_server.folder)
    server = file_server("wrong_bytes")
    sha = hashlib.sha256(content).hexdigest()
    with pytest.raises(errors.DownloadError) as error:
        downloads.fetch_url(f"{server.url}/blob.bin", folder="w", known_hash=f"sha256:{sha}", progress=False)
    got = hashlib.sha256(bytes(b ^ 0xFF for b in content)).hexdigest()
    message = str(error.value)
    assert f"expected sha256:{sha}" in message and f"got {got}" in message and "\n" not in message
    assert not (empty_cache / "w").exists()  # no file, no partial, no empty folder


def test_offline_fails_fast_with_one_message(empty_cache, monkeypatch):
    refused = refused_url()
    file = downloads.REGISTRY["train-images-idx3-ubyte.gz"]
    urls = (f"{refused}/mnist/{file.name}", f"{refused}/mirror/{file.name}")
    monkeypatch.setitem(downloads.REGISTRY, file.name, synthetic_data.serve_as(file, urls))
    start = time.perf_counter()
    with pytest.raises(data.DataDownloadError) as error:
        data.load("mnist", "train")
    assert time.perf_counter() - start < 5
    message = str(error.value)
    destination = empty_cache / "mnist" / file.name
    for part in (*urls, file.md5, "connection refused", "JAXGEN_MIRROR=", f"put the file at {destination}"):
        assert part in message, part
    assert "\n" not in message and not destination.parent.exists()
    assert isinstance(error.value, errors.DownloadError) and error.value.exit_code == 4
    assert isinstance(error.value, data.DataNotFoundError)  # studies that can do without a dataset catch this


def test_mirror_replaces_every_url(file_server, empty_cache, monkeypatch):
    synthetic_data.write_mnist(file_server.folder)
    server = file_server()
    describe_served(monkeypatch, file_server.folder, MNIST, url=refused_url())  # the table's URLs: all dead
    monkeypatch.setenv("JAXGEN_MIRROR", server.url + "/")
    dataset = data.load("mnist", "test", progress=False)
    assert len(dataset) == synthetic_data.MNIST_SIZES["test"]
    assert sorted(path for path, _ in server.requests) == ["/t10k-images-idx3-ubyte.gz", "/t10k-labels-idx1-ubyte.gz"]


def test_synthetic_archives_download_and_read_back_exactly(file_server, empty_cache, monkeypatch):
    mnist = synthetic_data.write_mnist(file_server.folder)
    cifar = synthetic_data.write_cifar_archive(file_server.folder / "cifar-10-python.tar.gz")
    stl = synthetic_data.write_stl10_archive(file_server.folder / "stl10_binary.tar.gz")
    server = file_server()
    describe_served(monkeypatch, file_server.folder, list(downloads.REGISTRY), url=server.url)
    np.testing.assert_array_equal(data.load("mnist", "train", progress=False).images[..., 0], mnist["train"][0])
    np.testing.assert_array_equal(data.load("cifar10", "test", progress=False).images, cifar["test"][0])
    np.testing.assert_array_equal(data.load("cifar10", "train", progress=False).labels, cifar["train"][1])
    unlabeled = data.load("stl10", "unlabeled", progress=False)
    np.testing.assert_array_equal(unlabeled.images, stl["unlabeled"][0])
    np.testing.assert_array_equal(data.load("stl10", "test", progress=False).labels, stl["test"][1])
    assert (empty_cache / "stl10" / "stl10_binary.tar.gz").exists()
    assert len(server.requests) == 2 + 1 + 1  # MNIST's two train files, then each archive once for all its splits


def test_real_mnist_files_pass_the_official_checksums(real_data_dir, file_server, empty_cache, monkeypatch):
    for name in MNIST:
        (file_server.folder / name).write_bytes((real_data_dir / "mnist" / name).read_bytes())
    server = file_server()
    monkeypatch.setenv("JAXGEN_MIRROR", server.url)
    assert cli.main(["download", "mnist"]) == 0
    for name in MNIST:
        content = (empty_cache / "mnist" / name).read_bytes()
        assert hashlib.md5(content).hexdigest() == downloads.REGISTRY[name].md5  # the authors' md5s, unchanged
        assert hashlib.sha256(content).hexdigest() == downloads.REGISTRY[name].sha256
        assert len(content) == downloads.REGISTRY[name].size
    assert data.load("mnist", "test").images.shape == (10000, 28, 28, 1)
    assert len(server.requests) == 4


def test_two_processes_fetch_once(file_server, empty_cache):
    content = blob(file_server.folder, size=2_000_000)
    server = file_server()
    sha = hashlib.sha256(content).hexdigest()
    start, results = threading.Barrier(2), []

    def fetch():
        start.wait()
        results.append(downloads.fetch_url(f"{server.url}/blob.bin", folder="w", known_hash=sha, progress=False))

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2 and results[0].read_bytes() == content
    assert server.gets("blob.bin") == [None]


def test_cli_downloads_lists_and_fails_in_one_line(file_server, empty_cache, monkeypatch, capsys):
    synthetic_data.write_mnist(file_server.folder)
    server = file_server()
    describe_served(monkeypatch, file_server.folder, MNIST)
    monkeypatch.setenv("JAXGEN_MIRROR", server.url)
    assert cli.main(["download", "mnist"]) == 0
    assert capsys.readouterr().out.count("checksum verified") == 4
    assert cli.main(["--list"]) == 0
    listing = capsys.readouterr().out
    assert f"data folder: {empty_cache}" in listing and "mnist/t10k-labels-idx1-ubyte.gz" in listing
    assert "mnist" in listing.splitlines()[1] and listing.splitlines()[1].endswith("downloaded")
    assert listing.splitlines()[2].endswith("absent") and ".lock" not in listing
    monkeypatch.setenv("JAXGEN_MIRROR", refused_url())
    assert cli.main(["download", "cifar10"]) == errors.DownloadError.exit_code
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "cifar-10-python.tar.gz" in error and "c58f30108f718f92721af3b95e74349a" in error


def test_offline_stops_trying_mirrors_after_the_time_limit(empty_cache, monkeypatch):
    monkeypatch.setattr(downloads, "GIVE_UP_AFTER", 0.0)
    urls = tuple(f"{refused_url()}/{i}/blob.bin" for i in range(3))
    with pytest.raises(errors.DownloadError) as error:
        downloads.download(urls, empty_cache / "blob.bin", None, progress=False)
    assert "blob.bin (connection refused)" in str(error.value)
    assert str(error.value).count("not tried: gave up after 0 s") == 2


def test_read_only_data_folder_is_one_clear_error(empty_cache, monkeypatch):
    def read_only(*args, **kwargs):  # (chmod would not stop root, who runs CI)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(downloads.Path, "mkdir", read_only)
    with pytest.raises(errors.DownloadError, match=r"Permission denied\): set JAXGEN_DATA_DIR to a writable folder"):
        data.load("mnist", "test")


def test_cli_download_stl10_extracts_once(file_server, empty_cache, monkeypatch, capsys):
    written = synthetic_data.write_stl10_archive(file_server.folder / "stl10_binary.tar.gz")
    server = file_server()
    describe_served(monkeypatch, file_server.folder, ["stl10_binary.tar.gz"], url=server.url)
    assert cli.main(["download", "stl10"]) == 0
    assert "stl10_binary/ (extracted" in capsys.readouterr().out
    assert (empty_cache / "stl10" / "stl10_binary" / "unlabeled_X.bin").stat().st_size == 24 * 96 * 96 * 3
    monkeypatch.setattr(downloads, "download", lambda *a, **k: pytest.fail("downloaded again"))
    np.testing.assert_array_equal(data.load("stl10", "train").images, written["train"][0])
