"""Inversion targets: files, folders and globs in; square images at the generator's resolution out.

Each target is read, checked (readable, at least `align.MIN_SIDE` px, not a single colour) and, by
`align` mode:
  off    the largest centred square, resized (Lanczos);
  on     FFHQ-aligned (`jaxgen.stylegan.align`); no face or a face too small skips the target;
  auto   used as it is when already a square at the generator's resolution (an aligned crop), else
         aligned as `on` where dlib is installed, and centre-cropped with a note where it is not.
A target that cannot be used is skipped with one line naming it and the reason; the others go on.
"""
from __future__ import annotations

import dataclasses
import glob
from pathlib import Path

import numpy as np
from PIL import Image

from jaxgen.errors import ConfigError, ImageError
from jaxgen.stylegan import align

ALIGN_MODES = ("auto", "on", "off")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


@dataclasses.dataclass
class Target:
    name: str
    path: Path | None
    image: np.ndarray  # (R, R, 3) float32 in [-1, 1]
    original: np.ndarray | None  # the input, RGB uint8, for figures
    record: dict  # what results.json says about how it was made


@dataclasses.dataclass
class Skipped:
    name: str
    reason: str


def expand(specs) -> tuple[list[Path], list[Skipped]]:
    """Image files named by `specs` (files, folders: their image files, sorted; globs), in order, without
    repeats; a spec that names nothing is skipped with a reason."""
    files, skipped, seen = [], [], set()
    for spec in specs:
        path = Path(spec).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                skipped.append(Skipped(str(spec), "a folder with no image files"))
        elif path.exists():
            found = [path]
        elif glob.has_magic(str(spec)):
            found = sorted(Path(p) for p in glob.glob(str(path)) if Path(p).is_file())
            if not found:
                skipped.append(Skipped(str(spec), "no file matches this pattern"))
        else:
            found = []
            skipped.append(Skipped(str(spec), "no such file"))
        for file in found:
            if file.resolve() not in seen:
                seen.add(file.resolve())
                files.append(file)
    return files, skipped


def centre_square(width: int, height: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the largest centred square."""
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def resize_square(image: np.ndarray, resolution: int) -> np.ndarray:
    """The largest centred square of an RGB uint8 image, resized (Lanczos), as float32 in [-1, 1]."""
    square = Image.fromarray(image).crop(centre_square(image.shape[1], image.shape[0]))
    resized = square.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return np.asarray(resized, np.float32) / 127.5 - 1.0


def prepare(path, resolution: int, align_mode: str = "auto") -> Target:
    """One target file as a `Target`; ImageError (message: the reason) when it cannot be used."""
    if align_mode not in ALIGN_MODES:
        raise ConfigError(f"--align must be one of {ALIGN_MODES}, got {align_mode!r}")
    path = Path(path)
    image = align.read_rgb(path)
    height, width = image.shape[:2]
    record = {"file": str(path), "input_size": [width, height]}
    already_aligned = height == width == resolution
    if align_mode == "off" or (align_mode == "auto" and already_aligned):
        record["preprocessing"] = "used as it is" if already_aligned else "largest centred square, Lanczos resize"
        return Target(path.name, path, resize_square(image, resolution), image, record)
    if align_mode == "auto" and not align.available():
        record["preprocessing"] = f"largest centred square, Lanczos resize (not aligned: {align.INSTALL})"
        return Target(path.name, path, resize_square(image, resolution), image, record)
    face = align.align_face(image, resolution)
    crop_side = float(np.hypot(*(face.quad[3] - face.quad[0])))
    if crop_side < align.MIN_FACE_FRACTION * resolution:
        raise ImageError(f"face too small: its crop is {crop_side:.0f} px across, at least "
                         f"{align.MIN_FACE_FRACTION * resolution:.0f} px are needed for {resolution} px")
    record.update(preprocessing="FFHQ alignment (dlib 68 landmarks)", **face.describe())
    if face.faces_found > 1:
        record["note"] = f"{face.faces_found} faces found, the largest kept"
    return Target(path.name, path, face.image.astype(np.float32) / 127.5 - 1.0, image, record)


def prepare_all(specs, resolution: int, align_mode: str = "auto", report=print) -> tuple[list[Target], list[Skipped]]:
    """Every usable target of `specs`, and those skipped; `report` gets one line per skipped target and
    per note (several faces)."""
    files, skipped = expand(specs)
    for item in skipped:
        report(f"skipped target {item.name}: {item.reason}")
    targets = []
    for file in files:
        try:
            target = prepare(file, resolution, align_mode)
        except ImageError as error:
            reason = str(error).removeprefix(f"{file}: ")
            skipped.append(Skipped(str(file), reason))
            report(f"skipped target {file}: {reason}")
            continue
        if "note" in target.record:
            report(f"target {file}: {target.record['note']}")
        targets.append(target)
    return targets, skipped
