"""Generators by name: `--weights ffhq | URL | FILE.pkl | FILE.pt | FOLDER`.

A release name or URL is downloaded once (`jaxgen.data.downloads.fetch_url`: resume, lock, checksum),
converted once, and the converted Flax generator is cached under

    cache_dir()/stylegan2/converted/<sha256 of the source file>/

The source file's sha256 is recorded at its first download (`sources.json` beside), so a later run
finds the conversion without any network access and without reading the pickle; `sha256=` pins it
(a download with another hash is refused). A local .pkl / .pt is converted once the same way (its
hash is remembered with its size and modification time); a folder written by `save_generator` is
loaded as it is.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

from jaxgen.errors import WeightsError

FOLDER = "stylegan2"
NGC = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files"
ADA = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained"


@dataclasses.dataclass(frozen=True)
class Release:
    """One of NVIDIA's published StyleGAN2 generator pickles (the PyTorch release format)."""
    url: str
    resolution: int
    about: str
    conditional: bool = False


# NVIDIA's own files: the StyleGAN2 paper's config-F networks as re-released in PyTorch format on NGC
# (the stylegan3 repository's list), and the StyleGAN2-ADA paper's networks. No checksums are
# published for them: the first download's sha256 is recorded, and `sha256=` pins one.
RELEASES = {
    "ffhq": Release(f"{NGC}/stylegan2-ffhq-1024x1024.pkl", 1024, "FFHQ faces, StyleGAN2 paper, config F"),
    "ffhq-512": Release(f"{NGC}/stylegan2-ffhq-512x512.pkl", 512, "FFHQ faces at 512 px"),
    "ffhq-256": Release(f"{NGC}/stylegan2-ffhq-256x256.pkl", 256, "FFHQ faces at 256 px"),
    "ffhqu": Release(f"{NGC}/stylegan2-ffhqu-1024x1024.pkl", 1024, "FFHQ-U (unaligned) faces"),
    "metfaces": Release(f"{NGC}/stylegan2-metfaces-1024x1024.pkl", 1024, "MetFaces (art portraits)"),
    "metfacesu": Release(f"{NGC}/stylegan2-metfacesu-1024x1024.pkl", 1024, "MetFaces-U (unaligned)"),
    "afhqv2": Release(f"{NGC}/stylegan2-afhqv2-512x512.pkl", 512, "AFHQv2 cats, dogs and wild animals"),
    "afhqcat": Release(f"{NGC}/stylegan2-afhqcat-512x512.pkl", 512, "AFHQ cats"),
    "afhqdog": Release(f"{NGC}/stylegan2-afhqdog-512x512.pkl", 512, "AFHQ dogs"),
    "afhqwild": Release(f"{NGC}/stylegan2-afhqwild-512x512.pkl", 512, "AFHQ wild animals"),
    "celebahq": Release(f"{NGC}/stylegan2-celebahq-256x256.pkl", 256, "CelebA-HQ faces at 256 px"),
    "brecahad": Release(f"{NGC}/stylegan2-brecahad-512x512.pkl", 512, "BreCaHAD histology"),
    "ada-ffhq": Release(f"{ADA}/ffhq.pkl", 1024, "FFHQ, StyleGAN2-ADA paper"),
    "ada-metfaces": Release(f"{ADA}/metfaces.pkl", 1024, "MetFaces, StyleGAN2-ADA paper"),
    "ada-afhqcat": Release(f"{ADA}/afhqcat.pkl", 512, "AFHQ cats, StyleGAN2-ADA paper"),
    "ada-afhqdog": Release(f"{ADA}/afhqdog.pkl", 512, "AFHQ dogs, StyleGAN2-ADA paper"),
    "ada-afhqwild": Release(f"{ADA}/afhqwild.pkl", 512, "AFHQ wild animals, StyleGAN2-ADA paper"),
    "cifar10": Release(f"{NGC}/stylegan2-cifar10-32x32.pkl", 32, "CIFAR-10, class-conditional", conditional=True),
    "ada-cifar10": Release(f"{ADA}/cifar10.pkl", 32, "CIFAR-10, class-conditional", conditional=True),
}


def supported_names() -> list[str]:
    return [name for name, release in RELEASES.items() if not release.conditional]


@dataclasses.dataclass(frozen=True)
class ResolvedWeights:
    """Where a `--weights` value led: the converted folder, and what it came from (for results.json)."""
    folder: Path
    source: str  # release URL, file path or folder
    sha256: str | None  # of the source file (None for a folder given directly)
    converted_now: bool  # False: found in the cache (or a folder given directly)

    def describe(self) -> dict:
        return {"folder": str(self.folder), "source": self.source, "sha256": self.sha256,
                "converted_now": self.converted_now}


def cache_root() -> Path:
    from jaxgen.data.downloads import cache_dir
    return cache_dir() / FOLDER


def file_sha256(path) -> str:
    import pooch  # as jaxgen.data.downloads hashes its files
    return pooch.file_hash(str(path), alg="sha256")


# ----------------------------------------------------------------------------- the record of hashes

def _record_file() -> Path:
    return cache_root() / "sources.json"


def _read_record() -> dict:
    try:
        record = json.loads(_record_file().read_text())
    except (OSError, ValueError):
        record = {}
    return {"urls": dict(record.get("urls") or {}), "files": dict(record.get("files") or {})}


def _write_record(record: dict) -> None:
    path = _record_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(record, indent=1, sort_keys=True))
    os.replace(temporary, path)


def _remember(kind: str, key: str, value) -> None:
    record = _read_record()
    record[kind][key] = value
    _write_record(record)


def _local_file_sha256(path: Path) -> str:
    """sha256 of a local checkpoint, hashed once per (size, modification time)."""
    stat = path.stat()
    stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    known = _read_record()["files"].get(str(path.resolve()))
    if known and {k: known.get(k) for k in stamp} == stamp:
        return known["sha256"]
    digest = file_sha256(path)
    _remember("files", str(path.resolve()), {**stamp, "sha256": digest})
    return digest


# ----------------------------------------------------------------------------- conversion, once

def converted_folder(sha256: str) -> Path:
    return cache_root() / "converted" / sha256


def _is_converted(folder: Path) -> bool:
    return (folder / "metadata.json").is_file()


def _convert_once(source: Path, sha256: str, origin: str) -> Path:
    """Convert `source` into converted/<sha256> unless it is there; a half-written conversion never
    lands there (written beside, then renamed)."""
    from jaxgen.stylegan.convert import convert

    final = converted_folder(sha256)
    if _is_converted(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f".{sha256}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        convert(source, staging, origin=origin, source_sha256=sha256)
        if final.exists():  # another process finished first, or an unfinished folder is in the way
            if _is_converted(final):
                return final
            shutil.rmtree(final)
        os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def check_pin(sha256: str | None) -> str | None:
    """The --weights-sha256 pin as 64 lower-case hex digits (None when not given); WeightsError otherwise."""
    if sha256 is None:
        return None
    pin = sha256.lower().removeprefix("sha256:")
    if len(pin) != 64 or any(c not in "0123456789abcdef" for c in pin):
        raise WeightsError(f"--weights-sha256 {sha256!r} is not a sha256 (64 hex digits).")
    return pin


def _from_url(url: str, pin: str | None, progress: bool) -> ResolvedWeights:
    from jaxgen.data.downloads import fetch_url

    known = pin or _read_record()["urls"].get(url)
    if known and _is_converted(converted_folder(known)):
        return ResolvedWeights(converted_folder(known), url, known, converted_now=False)
    name = Path(urlparse(url).path).name or "weights.pkl"
    filename = f"{hashlib.sha256(url.encode()).hexdigest()[:12]}-{name}"  # two hosts may share a file name
    path = fetch_url(url, folder=f"{FOLDER}/downloads", filename=filename,
                     known_hash=f"sha256:{pin}" if pin else None, progress=progress)
    digest = file_sha256(path)
    if pin and digest != pin:
        raise WeightsError(f"{path} (from {url}) has sha256 {digest}, --weights-sha256 expects {pin}; "
                           "delete the file to download it again.")
    _remember("urls", url, digest)
    return ResolvedWeights(_convert_once(path, digest, url), url, digest, converted_now=True)


def _from_file(path: Path, pin: str | None) -> ResolvedWeights:
    digest = _local_file_sha256(path)
    if pin and digest != pin:
        raise WeightsError(f"{path} has sha256 {digest}, --weights-sha256 expects {pin}.")
    folder = converted_folder(digest)
    converted_now = not _is_converted(folder)
    return ResolvedWeights(_convert_once(path, digest, str(path)), str(path), digest, converted_now)


def resolve(spec: str, sha256: str | None = None, progress: bool = True) -> ResolvedWeights:
    """The converted generator folder for a release name, URL, checkpoint file or converted folder."""
    pin = check_pin(sha256)
    if spec in RELEASES:
        release = RELEASES[spec]
        if release.conditional:
            raise WeightsError(f"--weights {spec} is a class-conditional generator, which is not supported; "
                               f"supported names: {', '.join(supported_names())} (or a URL / file of an "
                               "unconditional StyleGAN2 pickle).")
        return _from_url(release.url, pin, progress)
    if urlparse(spec).scheme in ("http", "https"):
        return _from_url(spec, pin, progress)
    path = Path(spec).expanduser()
    if path.is_dir():
        from jaxgen.stylegan.generator import generator_metadata
        metadata = generator_metadata(path)
        return ResolvedWeights(path, str(path), metadata.get("source_sha256"), converted_now=False)
    if path.is_file():
        return _from_file(path, pin)
    raise WeightsError(f"--weights {spec}: no such file or folder, and not a release name or URL; "
                       f"names: {', '.join(supported_names())}.")


def load(spec: str, sha256: str | None = None, progress: bool = True):
    """(module, variables, ResolvedWeights) for a `--weights` value (see `resolve`)."""
    from jaxgen.stylegan.generator import load_generator

    resolved = resolve(spec, sha256, progress)
    module, variables = load_generator(resolved.folder)
    return module, variables, resolved
