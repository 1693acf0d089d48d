"""FFHQ face alignment: a photo in, the face cropped as NVIDIA's FFHQ dataset crops it.

    python -m jaxgen.stylegan.align IN... --out DIR --size 1024

The recipe of NVIDIA's ffhq-dataset (`recreate_aligned_images`): from dlib's 68 landmarks take the eye
centres and the mouth corners; the crop is the square whose x axis runs along eye-to-eye minus the
perpendicular of eye-to-mouth, of half-side max(2 |eye-to-eye|, 1.8 |eye-to-mouth|), centred 0.1 of the
way from the eyes' midpoint to the mouth's. Large faces are first shrunk by an integer factor; the
image is cropped to the quad plus a border; where the quad leaves the image it is reflect-padded,
the padding blurred and faded towards the image's median colour; the quad is then sampled into a
square four times the output size and resized down (anti-aliased).

Landmarks come from dlib's HOG face detector and its 68-point shape predictor, whose model ships in
the `face-recognition-models` package: `pip install dlib-bin face-recognition-models` (or
`pip install 'jaxgen[align]'`). Nothing is fetched at run time.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
import math
from pathlib import Path

import numpy as np
from PIL import Image

from jaxgen.errors import ConfigError, ImageError

INSTALL = "pip install dlib-bin face-recognition-models"
DETECTION_SIDE = 512  # faces are detected on a copy at most this large (landmarks on the full image)
MIN_SIDE = 32  # smaller images are refused as targets
MIN_FACE_FRACTION = 0.25  # a face whose crop is narrower than this fraction of the output is too small


class AlignmentUnavailable(ConfigError):
    """dlib or its landmark model is not installed."""


@dataclasses.dataclass
class AlignedFace:
    image: np.ndarray  # (size, size, 3) uint8
    landmarks: np.ndarray  # (68, 2) x, y in the input image's pixels
    quad: np.ndarray  # (4, 2) corners in the input: top-left, bottom-left, bottom-right, top-right
    faces_found: int

    @property
    def transform(self) -> dict:
        """The similarity transform input -> aligned image: scale, rotation (degrees, counter-clockwise
        in image coordinates), shift (pixels): aligned = scale * R(rotation) @ input + shift."""
        return similarity_of_quad(self.quad, self.image.shape[0])

    def describe(self) -> dict:
        return {"landmarks": np.round(self.landmarks, 2).tolist(), "quad": np.round(self.quad, 2).tolist(),
                "transform": self.transform, "faces_found": self.faces_found}


# ----------------------------------------------------------------------------- landmarks

@functools.lru_cache(maxsize=None)
def landmark_models():
    """(dlib face detector, 68-point shape predictor), loaded once."""
    try:
        import dlib
    except ImportError:
        raise AlignmentUnavailable(f"face alignment needs dlib and its landmark model: {INSTALL}") from None
    # face_recognition_models' own __init__ imports pkg_resources, which new setuptools lack: find the file.
    spec = importlib.util.find_spec("face_recognition_models")
    model = (Path(next(iter(spec.submodule_search_locations))) / "models" / "shape_predictor_68_face_landmarks.dat"
             if spec and spec.submodule_search_locations else None)
    if model is None or not model.is_file():
        raise AlignmentUnavailable(f"face alignment needs the 68-point landmark model: {INSTALL}")
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(model))


def available() -> bool:
    try:
        landmark_models()
    except AlignmentUnavailable:
        return False
    return True


def find_landmarks(image: np.ndarray) -> tuple[np.ndarray, int]:
    """(68, 2) landmarks of the largest face in an RGB uint8 image, and how many faces were found.
    Raises ImageError when there is none."""
    import dlib

    detector, predictor = landmark_models()
    height, width = image.shape[:2]
    factor = min(1.0, DETECTION_SIDE / max(height, width))
    small = image if factor == 1.0 else np.asarray(
        Image.fromarray(image).resize((round(width * factor), round(height * factor)), Image.Resampling.BILINEAR))
    faces = list(detector(small, 1))
    if not faces and factor == 1.0:
        faces = list(detector(small, 2))  # small images: look again at twice the size
    if not faces:
        raise ImageError("no face found")
    largest = max(faces, key=lambda r: r.width() * r.height())
    box = dlib.rectangle(round(largest.left() / factor), round(largest.top() / factor),
                         round(largest.right() / factor), round(largest.bottom() / factor))
    shape = predictor(np.ascontiguousarray(image), box)
    return np.array([[p.x, p.y] for p in shape.parts()], np.float64), len(faces)


# ----------------------------------------------------------------------------- the FFHQ recipe

def ffhq_quad(landmarks: np.ndarray) -> np.ndarray:
    """(4, 2) crop quad of the recipe: top-left, bottom-left, bottom-right, top-right."""
    eye_left, eye_right = landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0)
    eye_avg, eye_to_eye = (eye_left + eye_right) / 2, eye_right - eye_left
    mouth_avg = (landmarks[48] + landmarks[54]) / 2
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    centre = eye_avg + eye_to_mouth * 0.1
    return np.stack([centre - x - y, centre - x + y, centre + x + y, centre + x - y])


def similarity_of_quad(quad: np.ndarray, size: int) -> dict:
    """The similarity mapping the quad onto the (size x size) output square."""
    x_axis = quad[3] - quad[0]
    scale = size / float(np.hypot(*x_axis))
    angle = -math.atan2(x_axis[1], x_axis[0])
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    shift = -scale * rotation @ quad[0]
    return {"scale": scale, "rotation_deg": math.degrees(angle), "shift_px": [float(shift[0]), float(shift[1])]}


def warp_quad(image: np.ndarray, quad: np.ndarray, size: int) -> np.ndarray:
    """The recipe's shrink, crop, pad (reflect, blur, fade) and quad transform of an RGB uint8 image."""
    import scipy.ndimage

    img = Image.fromarray(image)
    quad = quad.astype(np.float64).copy()
    qsize = float(np.hypot(*(quad[3] - quad[0])))
    shrink = int(np.floor(qsize / size * 0.5))
    if shrink > 1:
        img = img.resize((int(np.rint(img.size[0] / shrink)), int(np.rint(img.size[1] / shrink))),
                         Image.Resampling.LANCZOS)
        quad /= shrink
        qsize /= shrink
    border = max(int(np.rint(qsize * 0.1)), 3)
    crop = (int(np.floor(quad[:, 0].min())), int(np.floor(quad[:, 1].min())),
            int(np.ceil(quad[:, 0].max())), int(np.ceil(quad[:, 1].max())))
    crop = (max(crop[0] - border, 0), max(crop[1] - border, 0),
            min(crop[2] + border, img.size[0]), min(crop[3] + border, img.size[1]))
    if crop[2] - crop[0] < img.size[0] or crop[3] - crop[1] < img.size[1]:
        img = img.crop(crop)
        quad -= crop[0:2]
    pad = (int(np.floor(quad[:, 0].min())), int(np.floor(quad[:, 1].min())),
           int(np.ceil(quad[:, 0].max())), int(np.ceil(quad[:, 1].max())))
    pad = (max(-pad[0] + border, 0), max(-pad[1] + border, 0),
           max(pad[2] - img.size[0] + border, 0), max(pad[3] - img.size[1] + border, 0))
    if max(pad) > border - 4:
        pad = np.maximum(pad, int(np.rint(qsize * 0.3)))
        padded = np.pad(np.float32(img), ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)), "reflect")
        height, width, _ = padded.shape
        y, x, _ = np.ogrid[:height, :width, :1]
        mask = np.maximum(1.0 - np.minimum(np.float32(x) / pad[0], np.float32(width - 1 - x) / pad[2]),
                          1.0 - np.minimum(np.float32(y) / pad[1], np.float32(height - 1 - y) / pad[3]))
        blur = qsize * 0.02
        padded += (scipy.ndimage.gaussian_filter(padded, [blur, blur, 0]) - padded) * np.clip(mask * 3.0 + 1.0, 0, 1)
        padded += (np.median(padded, axis=(0, 1)) - padded) * np.clip(mask, 0.0, 1.0)
        img = Image.fromarray(np.uint8(np.clip(np.rint(padded), 0, 255)), "RGB")
        quad += pad[:2]
    transform_size = 4 * size
    img = img.transform((transform_size, transform_size), Image.Transform.QUAD, (quad + 0.5).flatten(),
                        Image.Resampling.BILINEAR)
    return np.asarray(img.resize((size, size), Image.Resampling.LANCZOS))


def align_face(image: np.ndarray, size: int, landmarks: np.ndarray | None = None) -> AlignedFace:
    """The FFHQ-aligned (size x size) crop of the largest face in an RGB uint8 image."""
    faces = 1
    if landmarks is None:
        landmarks, faces = find_landmarks(image)
    quad = ffhq_quad(landmarks)
    return AlignedFace(warp_quad(image, quad, size), landmarks, quad, faces)


# ----------------------------------------------------------------------------- reading images

def read_rgb(path) -> np.ndarray:
    """An image file as RGB uint8; ImageError naming the file when it cannot be read or is degenerate
    (smaller than MIN_SIDE pixels, or a single colour)."""
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path}: a folder, not an image file")
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    try:
        with Image.open(path) as opened:
            image = np.asarray(opened.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise ImageError(f"{path}: not a readable image ({type(error).__name__})") from None
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise ImageError(f"{path}: {width}x{height} pixels, smaller than {MIN_SIDE} px")
    if np.all(image == image[0, 0]):
        raise ImageError(f"{path}: a single colour, nothing to invert")
    return image


def main(argv=None) -> None:
    import argparse
    import sys

    from jaxgen.errors import UserError

    parser = argparse.ArgumentParser(prog="python -m jaxgen.stylegan.align",
                                     description="FFHQ-align the largest face of each photo.")
    parser.add_argument("inputs", nargs="+", metavar="IN", help="image files")
    parser.add_argument("--out", required=True, help="output folder (PNG files named after the inputs)")
    parser.add_argument("--size", type=int, default=1024, help="side of the aligned images (default 1024)")
    args = parser.parse_args(argv)
    if args.size < MIN_SIDE:
        parser.error(f"--size must be at least {MIN_SIDE}")
    try:
        landmark_models()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(error.exit_code) from None
    out = Path(args.out)
    failed = 0
    for name in args.inputs:
        try:
            face = align_face(read_rgb(name), args.size)
        except ImageError as error:
            failed += 1
            message = str(error)
            print(f"skipped {name}: {message}" if not message.startswith(name) else f"skipped {message}",
                  file=sys.stderr)
            continue
        out.mkdir(parents=True, exist_ok=True)
        target = out / f"{Path(name).stem}.png"
        Image.fromarray(face.image).save(target)
        t = face.transform
        note = f", {face.faces_found} faces, the largest kept" if face.faces_found > 1 else ""
        print(f"{target}: scale {t['scale']:.3f}, rotation {t['rotation_deg']:.1f} deg{note}")
    if failed:
        raise SystemExit(ImageError.exit_code)


if __name__ == "__main__":
    main()
