"""FFHQ face alignment and inversion targets.

The real-photo checks read ../shared/data/faces (JAXGEN_DATA_DIR/faces) and skip without it; the
others make their own images. dlib and its landmark model: `pip install dlib-bin face-recognition-models`
(requirements-dev.txt)."""
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxgen.errors import ConfigError, ImageError
from jaxgen.stylegan import align, targets

FACES = Path(os.environ.get("JAXGEN_DATA_DIR", "data")) / "faces"
SIZE = 256  # aligned size of the checks: the tolerances are fractions of it
needs_dlib = pytest.mark.skipif(not align.available(), reason=f"needs dlib: {align.INSTALL}")


def photos(folder: str) -> list[Path]:
    path = FACES / folder
    if not path.is_dir():
        pytest.skip(f"{path} not found: set JAXGEN_DATA_DIR to the folder holding faces/")
    return sorted(path.iterdir())


def read_at(path, side: int) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize((side, side), Image.Resampling.LANCZOS))


def eye_centres(landmarks):
    return landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0)


def apply(transform: dict, points):
    angle = math.radians(transform["rotation_deg"])
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return transform["scale"] * np.asarray(points) @ rotation.T + np.asarray(transform["shift_px"])


def psnr(a, b) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / mse))


# ----------------------------------------------------------------------------- the recipe's geometry

def test_quad_and_transform_of_hand_placed_landmarks():
    """Eyes level at (40, 50) and (60, 50), mouth corners at (42, 70) and (58, 70): eye-to-eye 20, eye-to-mouth
    20, so the half side is max(2 * 20, 1.8 * 20) = 40 around (50, 50 + 0.1 * 20)."""
    landmarks = np.zeros((68, 2))
    landmarks[36:42], landmarks[42:48] = (40, 50), (60, 50)
    landmarks[48], landmarks[54] = (42, 70), (58, 70)
    quad = align.ffhq_quad(landmarks)
    np.testing.assert_allclose(quad, [[10, 12], [10, 92], [90, 92], [90, 12]], atol=1e-9)
    transform = align.similarity_of_quad(quad, 160)
    assert transform["scale"] == pytest.approx(2.0) and transform["rotation_deg"] == pytest.approx(0.0)
    np.testing.assert_allclose(apply(transform, quad), [[0, 0], [0, 160], [160, 160], [160, 0]], atol=1e-9)
    tilted = align.similarity_of_quad(quad @ np.array([[0.0, 1.0], [-1.0, 0.0]]), 160)  # the face turned 90°
    assert abs(tilted["rotation_deg"]) == pytest.approx(90.0)


def test_align_on_without_dlib_fails_with_the_install_line(tmp_path, monkeypatch):
    def unavailable():
        raise align.AlignmentUnavailable(f"face alignment needs dlib and its landmark model: {align.INSTALL}")

    image = np.random.default_rng(0).integers(0, 255, (64, 80, 3), np.uint8)
    Image.fromarray(image).save(tmp_path / "photo.png")
    monkeypatch.setattr(align, "landmark_models", unavailable)
    with pytest.raises(ConfigError, match="pip install dlib-bin face-recognition-models"):
        targets.prepare(tmp_path / "photo.png", 32, "on")
    auto = targets.prepare(tmp_path / "photo.png", 32, "auto")  # auto goes on unaligned, and says so
    assert auto.image.shape == (32, 32, 3) and "not aligned: pip install" in auto.record["preprocessing"]


def test_bad_targets_are_skipped_with_one_reason_each(tmp_path):
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), np.uint8)).save(tmp_path / "good.png")
    (tmp_path / "notes.txt.png").write_text("not an image")
    Image.new("RGB", (1, 1)).save(tmp_path / "pixel.png")
    Image.new("RGB", (64, 64), (9, 90, 200)).save(tmp_path / "flat.png")
    (tmp_path / "empty").mkdir()
    lines = []
    usable, skipped = targets.prepare_all(
        [str(tmp_path / "good.png"), str(tmp_path / "missing.png"), str(tmp_path / "empty"),
         str(tmp_path / "notes.txt.png"), str(tmp_path / "pixel.png"), str(tmp_path / "flat.png"),
         str(tmp_path / "nothing*.jpg"), str(tmp_path / "good.png")], 32, "off", report=lines.append)
    assert [t.name for t in usable] == ["good.png"] and usable[0].image.shape == (32, 32, 3)
    reasons = {Path(s.name).name: s.reason for s in skipped}
    assert reasons == {"missing.png": "no such file", "empty": "a folder with no image files",
                       "notes.txt.png": "not a readable image (UnidentifiedImageError)",
                       "pixel.png": "1x1 pixels, smaller than 32 px", "flat.png": "a single colour, nothing to invert",
                       "nothing*.jpg": "no file matches this pattern"}
    assert len(lines) == 6 and all(line.startswith("skipped target ") and "\n" not in line for line in lines)


def test_off_takes_the_centred_square():
    wide = np.zeros((40, 120, 3), np.uint8)
    wide[:, :, 2] = 255  # blue sides ...
    wide[:, 40:80] = (255, 0, 0)  # ... around the centred 40 x 40 red square
    square = targets.resize_square(wide, 8)
    assert square.shape == (8, 8, 3) and square.dtype == np.float32
    np.testing.assert_allclose(square[..., 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(square[..., 1:], -1.0, atol=1e-6)
    assert targets.centre_square(120, 40) == (40, 0, 80, 40)


# ----------------------------------------------------------------------------- real photos

@needs_dlib
def test_realigning_aligned_faces_is_close_to_the_identity():
    for path in photos("aligned_ffhq_style"):
        face = align.align_face(read_at(path, SIZE), SIZE)
        transform = face.transform
        assert transform["scale"] == pytest.approx(1.0, abs=0.05), path.name
        assert abs(transform["rotation_deg"]) < 2.0, path.name
        assert np.all(np.abs(transform["shift_px"]) < 0.02 * SIZE), path.name


@needs_dlib
def test_a_rotated_scaled_shifted_face_is_aligned_back():
    """The aligned face turned 15°, scaled by 0.7 and moved on a larger canvas: the transform found composes
    with the applied one to the original's own alignment, and the pixels match it."""
    original = read_at(photos("aligned_ffhq_style")[1], SIZE)
    angle, scale, shift = math.radians(15.0), 0.7, np.array([150.0, 90.0])
    forward = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    inverse = np.linalg.inv(forward)  # PIL's affine maps output pixels back to input pixels
    offset = -inverse @ shift
    canvas = Image.fromarray(original).transform(
        (520, 460), Image.Transform.AFFINE, (*inverse[0], offset[0], *inverse[1], offset[1]),
        Image.Resampling.BICUBIC, fillcolor=(128, 128, 128))
    moved = align.align_face(np.asarray(canvas), SIZE)
    reference = align.align_face(original, SIZE)
    found, expected = moved.transform, reference.transform
    assert found["scale"] * scale == pytest.approx(expected["scale"], rel=0.05)
    assert found["rotation_deg"] + 15.0 == pytest.approx(expected["rotation_deg"], abs=2.0)
    corners = np.array([[0.0, 0.0], [SIZE, 0.0], [0.0, SIZE], [SIZE, SIZE]])
    through_canvas = apply(found, corners @ forward.T + shift)
    assert np.max(np.abs(through_canvas - apply(expected, corners))) < 0.02 * SIZE
    # The canvas holds the face at 0.7 of its size, so the aligned crop is softer: 24.8 dB measured.
    assert psnr(moved.image, reference.image) > 22.0


@needs_dlib
def test_public_domain_photos_give_one_face_or_a_reason_and_land_on_the_template():
    for path in photos("public_domain"):
        image = align.read_rgb(path)
        try:
            face = align.align_face(image, SIZE)
        except ImageError as error:
            assert str(error) and "\n" not in str(error)
            continue
        # Where the recipe puts the eyes in this crop (the landmarks mapped by the transform) ...
        template = apply(face.transform, np.stack(eye_centres(face.landmarks)))
        # ... is where a new detection on the crop finds them.
        landmarks, _ = align.find_landmarks(face.image)
        found = np.stack(eye_centres(landmarks))
        assert np.max(np.abs(found - template)) < 0.02 * SIZE, path.name
        assert np.all((template > 0.25 * SIZE) & (template < 0.75 * SIZE)), path.name


@needs_dlib
def test_no_face_and_a_face_too_small_are_reasons_to_skip(tmp_path):
    noise = np.random.default_rng(2).integers(0, 255, (300, 400, 3), np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.png")
    with pytest.raises(ImageError, match="no face found"):
        targets.prepare(tmp_path / "noise.png", 64, "on")
    canvas = Image.new("RGB", (900, 700), (90, 110, 100))
    canvas.paste(Image.fromarray(read_at(photos("aligned_ffhq_style")[0], 150)), (400, 300))
    canvas.save(tmp_path / "far.png")
    with pytest.raises(ImageError, match="face too small: its crop is 1[0-9][0-9] px across, at least 256"):
        targets.prepare(tmp_path / "far.png", 1024, "on")
    assert targets.prepare(tmp_path / "far.png", 256, "on").image.shape == (256, 256, 3)


@needs_dlib
def test_align_command_writes_crops_and_reports_bad_inputs(tmp_path, capsys):
    good = photos("aligned_ffhq_style")[0]
    Image.new("RGB", (1, 1)).save(tmp_path / "pixel.png")
    with pytest.raises(SystemExit) as stopped:
        align.main([str(good), str(tmp_path / "pixel.png"), "--out", str(tmp_path / "out"), "--size", "64"])
    assert stopped.value.code == ImageError.exit_code
    with Image.open(tmp_path / "out" / f"{good.stem}.png") as written:
        assert written.size == (64, 64)
    assert "skipped" in capsys.readouterr().err
