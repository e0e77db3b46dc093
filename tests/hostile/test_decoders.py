"""Decoders: only photo formats are decoded, a damaged file of any of them is one line, and
pixels come out as a viewer shows them (12-bit data in 16 bits, float TIFF, animations)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ferkit.cli import main
from ferkit.core.decoding import FORMATS, NotAnImage, decode_image
from ferkit.core.errors import FerkitError
from tests.conftest import EXAMPLES
from tests.hostile.bombs import eps, lying_ico, one_line_error, run_capped


def encoded(fmt: str, a: np.ndarray | Image.Image, **kw) -> bytes:
    img = a if isinstance(a, Image.Image) else Image.fromarray(a)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


GRADIENT = np.tile(np.arange(64, dtype=np.uint8)[None, :, None] * 4, (48, 1, 3))


@pytest.mark.parametrize("fmt", ["ICO", "PCX", "SGI", "TGA", "DDS", "QOI", "IM", "XBM", "MSP"])
def test_formats_outside_the_allow_list_are_not_decoded(fmt):
    mode = "1" if fmt in ("XBM", "MSP") else "RGB"
    data = encoded(fmt, Image.fromarray(GRADIENT).convert(mode))
    with pytest.raises(NotAnImage, match=r"^x\.jpg: not an image \(ferkit reads JPEG, PNG"):
        decode_image(data, "x.jpg")


def test_postscript_named_jpg_never_reaches_ghostscript(tmp_path, monkeypatch, capsys):
    from PIL import EpsImagePlugin

    def ghostscript(*_, **__):
        raise AssertionError("Ghostscript was asked to run a user's file")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", ghostscript)
    eps(tmp_path / "photo.jpg")
    assert main(["predict", str(tmp_path / "photo.jpg")]) == 1
    assert "photo.jpg: not an image (ferkit reads" in capsys.readouterr().err


def test_an_ico_whose_directory_lies_costs_nothing(tmp_path):
    """It says 16x16 and holds a 13000x13000 PNG (676 MB as RGBA): refused from its magic
    number, within 1 GB of address space."""
    (tmp_path / "icon.jpg").write_bytes(lying_ico())
    r = run_capped(["predict", "icon.jpg", "--out", "out"], tmp_path, mb=1024)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "icon.jpg: not an image" in r.stderr


def test_twelve_bit_data_in_a_16_bit_png_is_read_at_its_own_depth():
    ramp = np.arange(4096, dtype=np.uint16).reshape(64, 64)  # 0..4095: a 12-bit sensor
    out = decode_image(encoded("PNG", Image.fromarray(ramp))).image
    assert out.ndim == 2 and out.max() == 255 and abs(float(out.mean()) - 127.5) < 1
    full = (ramp.astype(np.uint32) * 16).astype(np.uint16)  # the same light, 16 bits
    assert (
        np.abs(decode_image(encoded("PNG", Image.fromarray(full))).image - out.astype(int)).max()
        <= 1
    )


@pytest.mark.parametrize("top", [1.0, 255.0])
def test_a_float_tiff_is_not_black(top):
    light = np.linspace(0, top, 64 * 64, dtype=np.float32).reshape(64, 64)
    out = decode_image(encoded("TIFF", Image.fromarray(light, mode="F"))).image
    assert out.max() == 255 and abs(float(out.mean()) - 127.5) < 1


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_an_animation_is_one_line_not_a_silent_first_frame(fmt):
    frames = [Image.fromarray(np.full((32, 32, 3), v, np.uint8)) for v in (0, 120, 240)]
    data = encoded(fmt, frames[0], save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(FerkitError, match=rf"^clip: an animated {fmt}; ferkit reads photos"):
        decode_image(data, "clip")


def test_a_phone_jpeg_with_a_multi_picture_index_is_read_as_its_main_picture():
    """Phones write MPO (a JPEG, then a gain or depth map): not an animation."""
    main, extra = Image.fromarray(GRADIENT), Image.fromarray(GRADIENT[:24, :32] // 2)
    data = encoded("MPO", main, save_all=True, append_images=[extra])
    assert data[:3] == b"\xff\xd8\xff"
    assert decode_image(data).image.shape == (48, 64, 3)


def test_a_single_frame_gif_and_a_multipage_tiff_are_read():
    assert decode_image(encoded("GIF", Image.fromarray(GRADIENT))).image.shape[:2] == (48, 64)
    page = Image.fromarray(GRADIENT)
    data = encoded("TIFF", page, save_all=True, append_images=[page])
    assert decode_image(data).image.shape[:2] == (48, 64)


def test_a_photo_twice_the_work_side_is_read_halved_and_its_boxes_are_in_its_pixels(tmp_path):
    """8192 px wide: read at 4096 (JPEG in the decoder, PNG after); the scale says 2."""
    wide = np.zeros((600, 8192, 3), np.uint8)
    wide[:, 4096:] = 200
    for fmt in ("JPEG", "PNG"):
        got = decode_image(encoded(fmt, wide))
        assert got.scale == 2 and got.image.shape == (300, 4096, 3), fmt
        assert got.image[:, :2040].max() < 20 and got.image[:, 2056:].min() > 180
    assert decode_image(encoded("PNG", wide), work_side=None).image.shape == (600, 8192, 3)


def test_cli_one_line_for_every_damage_class(tmp_path):
    """A truncated PNG, a TIFF with a bad tile and an empty file: one line each, exit 1."""
    good = encoded("PNG", GRADIENT)
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])
    tiff = bytearray(encoded("TIFF", GRADIENT, compression="tiff_lzw"))
    tiff[-40:] = b"\xff" * 40
    (tmp_path / "bad.tif").write_bytes(bytes(tiff))
    (tmp_path / "empty.png").write_bytes(b"")
    r = run_capped(["predict", "cut.png", "bad.tif", "empty.png"], tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    for name in ("cut.png", "bad.tif", "empty.png"):
        assert f"{name}: " in r.stderr


def test_data_prepare_names_a_damaged_member_and_goes_on(tmp_path):
    import zipfile

    good = encoded("PNG", GRADIENT[:48, :48])
    with zipfile.ZipFile(tmp_path / "faces.zip", "w") as zf:
        for i in range(4):
            zf.writestr(f"train/happy/{i}.png", good)
        zf.writestr("train/sad/bad.tif", encoded("TIFF", GRADIENT)[:60])
        zf.writestr("train/sad/ok.png", good)
    r = run_capped(["data", "prepare", "faces.zip", "--out", "prepared"], tmp_path)
    assert "train/sad/bad.tif; more than 1% is an error" in one_line_error(r)
    assert r.stderr.strip().startswith("error: "), r.stderr  # no warning, no blank line


def test_an_unknown_file_named_on_the_command_line_is_one_line(tmp_path):
    (tmp_path / "notes.jpg").write_text("hello")
    r = run_capped(["predict", "notes.jpg"], tmp_path)
    assert r.returncode == 1 and "notes.jpg: not an image (ferkit reads" in r.stderr


def test_the_folder_searches_take_the_allow_lists_suffixes(tmp_path):
    """Folders (predict) and archives (data prepare) pick up what the decoder allows."""
    from ferkit.data.sources import _is_candidate
    from ferkit.vision.images import find_images

    suffixes = sorted({s for suffixes in FORMATS.values() for s in suffixes})
    for s in [*suffixes, ".txt", ".heic"]:
        (tmp_path / f"a{s}").write_bytes(b"x")
    assert sorted(p.suffix for p in find_images([str(tmp_path)])) == suffixes
    assert [s for s in suffixes if _is_candidate(("train", "happy", f"a{s}"))] == suffixes


def test_a_jpeg_decodes_to_opencvs_pixels_and_a_damaged_one_is_refused():
    """simplejpeg (libjpeg-turbo) gives OpenCV's exact pixels for a sound JPEG, so faces do
    not move; a JPEG with its entropy data damaged, which OpenCV fills with grey while
    printing libjpeg's warnings, is one line; a CMYK JPEG goes through Pillow."""
    import cv2

    photo = (EXAMPLES / "astronaut.jpg").read_bytes()
    ours = decode_image(photo).image
    assert np.array_equal(ours, cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR))
    damaged = bytearray(photo)
    damaged[len(photo) // 2 : len(photo) // 2 + 12] = b"\xff\x0c" * 6
    with pytest.raises(FerkitError, match=r"^x\.jpg: unreadable"):
        decode_image(bytes(damaged), "x.jpg")
    cmyk = decode_image(encoded("JPEG", Image.fromarray(GRADIENT).convert("CMYK"))).image
    assert cmyk.shape == (48, 64, 3)
