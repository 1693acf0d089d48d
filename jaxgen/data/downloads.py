"""The official data files, their checksums, and a cache that fetches them once.

Built on pooch (temp file, hash check, then rename). Added here only what pooch lacks and a user of the
2.6 GB STL-10 archive needs:
- resume: an interrupted download continues from its `.part` file with an HTTP Range request;
- a lock, so two processes never fetch the same file at once (the second waits, then finds it);
- short timeouts and at most `RETRIES` retries, so an offline machine fails in seconds with one message;
- files a user placed in the data folder are checked against the table once; their size and modification
  time are then remembered, so a 2.6 GB archive is not hashed on every run.

Environment: `JAXGEN_DATA_DIR` (the data folder and cache; default: the user cache folder, see `cache_dir`),
`JAXGEN_MIRROR=<base URL>` (fetch every file from `<base URL>/<official file name>` instead).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pooch

from jaxgen.errors import DataError, DownloadError

DATA_DIR_ENV = "JAXGEN_DATA_DIR"
MIRROR_ENV = "JAXGEN_MIRROR"
CONNECT_TIMEOUT = 5.0  # seconds to open a connection: an offline machine fails fast
READ_TIMEOUT = 60.0  # seconds a server may stay silent mid-transfer
RETRIES = 2  # further tries of a transfer that broke off (each resumes where the last stopped)
RETRY_WAIT = 1.0
GIVE_UP_AFTER = 20.0  # seconds of failed attempts after which further mirrors are not tried (DNS has no timeout)
CHUNK_BYTES = 1 << 16  # small: the bytes of a chunk cut short by a dropped connection are lost


class CorruptFileError(DataError, ValueError):
    """A data file that is not the official one: wrong size or checksum, or unreadable."""


@dataclass(frozen=True)
class RemoteFile:
    """One official distribution file: where it lives, how big it is, and its authors' checksums."""

    dataset: str  # the folder under the data folder that holds it
    name: str  # the official file name, also its name on a JAXGEN_MIRROR
    urls: tuple[str, ...]  # the official URL first, then mirrors
    size: int
    md5: str  # as published by the authors
    sha256: str | None = None  # checked instead of md5 where known

    @property
    def known_hash(self) -> str:
        return f"sha256:{self.sha256}" if self.sha256 else f"md5:{self.md5}"

    def describe_hash(self) -> str:
        return f"md5 {self.md5}" + (f", sha256 {self.sha256}" if self.sha256 else "")


_MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/",
               "https://storage.googleapis.com/cvdf-datasets/mnist/")


def _mnist(name: str, size: int, md5: str, sha256: str) -> RemoteFile:
    return RemoteFile("mnist", name, tuple(base + name for base in _MNIST_URLS), size, md5, sha256)


# One row per file. MNIST md5s as torchvision lists them; sha256s as TFDS and Keras list them.
REGISTRY: dict[str, RemoteFile] = {file.name: file for file in (
    _mnist("train-images-idx3-ubyte.gz", 9_912_422, "f68b3c2dcbeaaa9fbdd348bbdeb94873",
           "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    _mnist("train-labels-idx1-ubyte.gz", 28_881, "d53e105ee54ea40749a09fcbcd1e9432",
           "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    _mnist("t10k-images-idx3-ubyte.gz", 1_648_877, "9fb629c4189551a2d022fa330f9573f3",
           "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    _mnist("t10k-labels-idx1-ubyte.gz", 4_542, "ec29112dd5afa0611ce80d1b7f02629c",
           "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    RemoteFile("cifar10", "cifar-10-python.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
               170_498_071, "c58f30108f718f92721af3b95e74349a",
               "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"),
    RemoteFile("stl10", "stl10_binary.tar.gz", ("http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",),
               2_640_397_119, "91f7769df0f17e558f3565bffb0c7dfb",
               "f31fd99273a1acb8609c8db427cebb1de3f71de77758cdc0e22956e1289b9866"),
)}
DATASET_FILES: dict[str, tuple[str, ...]] = {
    "mnist": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    "cifar10": ("cifar-10-python.tar.gz",),
    "stl10": ("stl10_binary.tar.gz",),
}


# ------------------------------------------------------------------------------------------- folders
def cache_dir() -> Path:
    """Where downloads go: `$JAXGEN_DATA_DIR` when set, else the user cache folder (~/.cache/jaxgen on Linux)."""
    chosen = os.environ.get(DATA_DIR_ENV)
    return Path(chosen).expanduser() if chosen else Path(pooch.os_cache("jaxgen"))


def data_folder(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder a dataset is read from and downloaded into: `data_dir` when given, else `cache_dir()`."""
    return Path(data_dir).expanduser() if data_dir else cache_dir()


def file_urls(file: RemoteFile) -> tuple[str, ...]:
    """The URLs to try for `file`: `$JAXGEN_MIRROR/<name>` alone when the mirror is set, else the table's."""
    mirror = os.environ.get(MIRROR_ENV)
    return (f"{mirror.rstrip('/')}/{file.name}",) if mirror else file.urls


# ----------------------------------------------------------------------------------- verified files
def _record_path() -> Path:
    # In the user cache, not beside the files: a data folder may be read-only.
    return Path(pooch.os_cache("jaxgen")) / ".verified.json"


def _read_record() -> dict:
    try:
        return json.loads(_record_path().read_text())
    except (OSError, ValueError):
        return {}


def _stamp(path: Path, known_hash: str) -> dict:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "hash": known_hash}


def is_verified(path: Path, known_hash: str) -> bool:
    """Whether `path` was checked against `known_hash` and has not changed since (same size and mtime)."""
    return _read_record().get(str(Path(path).resolve())) == _stamp(path, known_hash)


def remember_verified(path: Path, known_hash: str) -> None:
    record = {key: value for key, value in _read_record().items() if os.path.exists(key)}  # forget deleted files
    record[str(Path(path).resolve())] = _stamp(path, known_hash)
    target = _record_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(record, indent=1))
        os.replace(temporary, target)
    except OSError:
        pass  # an unwritable cache only costs a second check next time


def check_file(path: Path, known_hash: str, size: int | None = None, what: str | None = None) -> Path:
    """`path` if it has `size` bytes and `known_hash`, checked once (then remembered); else CorruptFileError."""
    path = Path(path)
    if is_verified(path, known_hash):
        return path
    what = what or f"the official {path.name}"
    actual_size = path.stat().st_size
    fix = "Delete it to download it again, or replace it with the official file."
    if size is not None and actual_size != size:
        raise CorruptFileError(f"{path} holds {actual_size:,} bytes but {what} has {size:,}: the file is "
                               f"incomplete or a different one. {fix}")
    algorithm, expected = known_hash.split(":", 1) if ":" in known_hash else ("sha256", known_hash)
    got = pooch.file_hash(str(path), alg=algorithm)
    if got.lower() != expected.lower():
        raise CorruptFileError(f"{path} has {algorithm} {got} but {what} has {algorithm} {expected}. {fix}")
    remember_verified(path, known_hash)
    return path


# ---------------------------------------------------------------------------------------- downloads
class ResumingDownloader:
    """A pooch downloader that streams into a fixed `.part` file, resuming it with HTTP Range requests.

    pooch hands each attempt a fresh temporary file and deletes it on failure, which would throw away
    the bytes of an interrupted 2.6 GB download. This keeps them in `partial` across attempts and
    processes, and moves the finished file to pooch's temporary file for the hash check.
    """

    def __init__(self, partial: Path, progress: bool = True, expected_size: int | None = None):
        self.partial, self.progress, self.expected_size = Path(partial), progress, expected_size
        self.retries_used = 0
        self.answers = 0  # responses received (any attempt): the server is reachable

    def __call__(self, url: str, output_file: str, pooch_instance=None, check_only: bool = False) -> None:
        import requests

        if check_only:
            raise NotImplementedError("check_only is not used by jaxgen")
        while True:
            start = self.partial.stat().st_size if self.partial.exists() else 0
            answers = self.answers
            try:
                self._transfer(url, start)
                break
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError):
                # Retry only a transfer that broke off after the server answered: the rest resumes from the
                # bytes kept. A refused or silent server is not retried here (the caller tries the next URL).
                if self.answers == answers or self.retries_used >= RETRIES:
                    raise
                self.retries_used += 1
                time.sleep(RETRY_WAIT)
        os.replace(self.partial, output_file)

    def _transfer(self, url: str, start: int) -> None:
        import requests
        from tqdm.auto import tqdm

        headers = {"Range": f"bytes={start}-"} if start else {}
        with requests.get(url, headers=headers, stream=True, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)) as response:
            if start and response.status_code == 416:  # the part already holds everything there is
                return
            response.raise_for_status()
            self.answers += 1
            if start and response.status_code != 206:  # the server ignored Range: start again
                start = 0
            remaining = int(response.headers.get("Content-Length", 0)) or None
            total = start + remaining if remaining else self.expected_size
            with open(self.partial, "ab" if start else "wb") as f, \
                    tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                         desc=self.partial.name.removesuffix(".part"), disable=not self.progress,
                         file=sys.stderr, leave=False) as bar:
                for chunk in response.iter_content(CHUNK_BYTES):
                    f.write(chunk)
                    bar.update(len(chunk))
            received = self.partial.stat().st_size
            if total is not None and received < total:  # a server that closed the body early without error
                raise requests.ConnectionError(f"connection closed after {received} of {total} bytes")


def _reason(error: Exception) -> str:
    """A few words for why one URL failed."""
    import requests

    if isinstance(error, requests.HTTPError) and error.response is not None:
        return f"HTTP {error.response.status_code}"
    if isinstance(error, requests.ConnectTimeout):
        return f"no answer within {CONNECT_TIMEOUT:g} s"
    if isinstance(error, requests.ReadTimeout):
        return f"stalled for {READ_TIMEOUT:g} s"
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return f"connection dropped mid-transfer, {RETRIES} retries too"
    if isinstance(error, requests.ConnectionError):
        text = str(error)
        for hint in ("Connection refused", "Name or service not known", "Temporary failure in name resolution",
                     "Network is unreachable", "No route to host", "closed after"):
            if hint in text:
                return hint.lower() if hint != "closed after" else "connection dropped"
        return "connection failed"
    return f"{type(error).__name__}: {str(error)[:120]}"


def _lock_path(destination: Path) -> Path:
    """The lock file of a download: in the user cache (keeping data folders clean), else beside the file."""
    import hashlib

    locks = Path(pooch.os_cache("jaxgen")) / ".locks"
    try:
        locks.mkdir(parents=True, exist_ok=True)
    except OSError:
        return destination.with_name(f".{destination.name}.lock")
    key = hashlib.sha256(str(destination.resolve()).encode()).hexdigest()[:24]
    return locks / f"{destination.name}.{key}.lock"


def download(urls: tuple[str, ...] | list[str], destination: Path, known_hash: str | None,
             size: int | None = None, progress: bool = True, describe_hash: str | None = None,
             mirror_hint: bool = True) -> Path:
    """Fetch the first of `urls` that works into `destination`, checked against `known_hash`.

    Nothing appears at `destination` until the hash matches. A second process asking for the same file
    waits for the first and then uses its result. Raises DownloadError (one line) when every URL fails.
    """
    import filelock
    import requests

    destination = Path(destination)
    partial = destination.with_name(destination.name + ".part")
    lock = filelock.FileLock(str(_lock_path(destination)))
    created = not destination.parent.exists()
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            print(f"waiting for another process downloading {destination}", file=sys.stderr)
            lock.acquire()
    except OSError as error:
        raise DownloadError(f"Cannot download {destination.name} into {destination.parent} ({error.strerror}): "
                            f"set {DATA_DIR_ENV} to a writable folder, or put the file at {destination}") from None
    logger = pooch.get_logger()  # our progress bar and error say what its "Downloading..." lines would
    level = logger.level
    logger.setLevel("WARNING")
    try:
        if destination.exists():  # fetched by the process we waited for
            return destination
        tried, started, answered = [], time.monotonic(), False
        for number, url in enumerate(urls):
            if tried and not answered and time.monotonic() - started > GIVE_UP_AFTER:  # offline, it seems
                tried.extend(f"{later} (not tried: gave up after {GIVE_UP_AFTER:g} s)" for later in urls[number:])
                break
            downloader = ResumingDownloader(partial, progress, size)
            try:
                pooch.retrieve(url, known_hash, fname=destination.name, path=destination.parent,
                               downloader=downloader)
                if known_hash:
                    remember_verified(destination, known_hash)
                return destination
            except ValueError as error:  # pooch: the hash does not match; it deleted the file
                got = re.search(r"expected (\S+) but got (\S+)\.", str(error))
                detail = f"expected {got.group(1)}, got {got.group(2)}" if got else str(error)
                tried.append(f"{url} (wrong checksum: {detail}; the download was deleted)")
            except requests.RequestException as error:
                tried.append(f"{url} ({_reason(error)})")
            except OSError as error:  # the disk, not the network (RequestException is an OSError too)
                raise DownloadError(f"Cannot write {destination.name} into {destination.parent} "
                                    f"({error.strerror or error}): free some space or set {DATA_DIR_ENV} "
                                    "to another folder") from None
            answered = answered or downloader.answers > 0
        hashes = describe_hash or (known_hash or "no checksum given")
        if created and not partial.exists():  # a failed start leaves no empty folder behind
            with contextlib.suppress(OSError):
                destination.parent.rmdir()
        mirror = (f"set {MIRROR_ENV}=<base URL> to a server holding <base URL>/{destination.name}" if mirror_hint
                  else "download it by other means")
        raise DownloadError(
            f"Could not download {destination.name} ({f'{size:,} bytes, ' if size else ''}{hashes}). "
            f"Tried: {'; '.join(tried)}. Either {mirror}, or put the file at {destination}")
    finally:
        logger.setLevel(level)
        lock.release()


def fetch(name: str, data_dir: str | os.PathLike | None = None, progress: bool = True,
          allow_download: bool = True) -> Path:
    """The local path of the official file `name` (a key of REGISTRY), downloading it when absent.

    A file already in the data folder is checked against the table (once) and never downloaded again.
    """
    file = REGISTRY[name]
    destination = data_folder(data_dir) / file.dataset / file.name
    if destination.exists():
        return check_file(destination, file.known_hash, file.size)
    if not allow_download:
        raise FileNotFoundError(destination)
    return download(file_urls(file), destination, file.known_hash, file.size, progress, file.describe_hash())


def fetch_url(url: str, *, folder: str, filename: str | None = None, known_hash: str | None = None,
              progress: bool = True) -> Path:
    """Download `url` into `cache_dir()/folder/filename` once (with resume, lock, timeouts, checksum).

    `known_hash` is "sha256:<hex>" or "md5:<hex>" (a bare hex string is sha256); without it the file
    is trusted as found. A cached file is returned without any network access. `$JAXGEN_MIRROR` does not
    apply: it stands for the data files of the table, and a caller can pass a URL of its own mirror.
    """
    filename = filename or Path(urlparse(url).path).name
    if not filename:
        raise DownloadError(f"{url} names no file: pass filename=")
    destination = cache_dir() / folder / filename
    if destination.exists():
        return check_file(destination, known_hash) if known_hash else destination
    return download((url,), destination, known_hash, progress=progress, mirror_hint=False)


def cached_files(root: Path | None = None) -> list[tuple[Path, int]]:
    """(path, bytes) of every data file under `root` (default `cache_dir()`), leaving out locks and parts."""
    root = Path(root) if root else cache_dir()
    if not root.exists():
        return []
    skip = (".lock", ".part", ".tmp")
    return sorted((p, p.stat().st_size) for p in root.rglob("*")
                  if p.is_file() and not p.name.startswith(".") and not p.name.endswith(skip))


def with_checksums(file: RemoteFile, content: bytes) -> RemoteFile:
    """`file` re-described for `content` (its size and hashes): for tests serving small synthetic copies."""
    import hashlib

    return dataclasses.replace(file, size=len(content), md5=hashlib.md5(content).hexdigest(),
                               sha256=hashlib.sha256(content).hexdigest())
