"""models.imageio: every fixture is generated here with Pillow (no binary files)."""
from __future__ import annotations

import hashlib
import io
import pickle
import struct
import time
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from models import imageio
from models import svg as svgmod
from models.imageio import (
    ImageError,
    ImageNotFound,
    ImageTooLarge,
    InvalidImage,
    InvalidSource,
    LoadedImage,
    UnsupportedMediaType,
    load_image,
)

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def quadrants(w: int = 64, h: int = 48) -> Image.Image:
    """Left half red, right half blue: survives lossy codecs and shows orientation."""
    im = Image.new("RGB", (w, h), RED)
    im.paste(BLUE, (w // 2, 0, w, h))
    return im


def close(px, want, tol=40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(px, want))


def assert_error(exc_info, cls, code, reason):
    err = exc_info.value
    assert isinstance(err, cls) and isinstance(err, ImageError)
    assert (err.code, err.reason) == (code, reason), repr(err)
    assert str(err)  # a human message


def png_header_only(width: int, height: int, bit_depth: int = 8, color_type: int = 2) -> bytes:
    """A PNG whose IHDR declares any size, followed by a tiny (wrong) IDAT."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


# ----------------------------------------------------------------------------- formats

FORMATS = [
    ("JPEG", {"quality": 95}),
    ("PNG", {}),
    ("GIF", {}),
    ("WEBP", {"lossless": True}),
    ("BMP", {}),
    ("TIFF", {}),
    ("AVIF", {"quality": 90}),
]


@pytest.mark.parametrize(("fmt", "kw"), FORMATS, ids=[f for f, _ in FORMATS])
def test_each_allowed_format_round_trips(fmt, kw):
    data = encode(quadrants(), fmt, **kw)
    out = load_image(data)
    assert isinstance(out, LoadedImage)
    assert out.format == fmt
    assert (out.width, out.height) == (64, 48) == out.image.size
    assert out.image.mode == "RGB"
    assert out.frames == 1
    assert out.had_alpha is False
    assert out.sha256 == hashlib.sha256(data).hexdigest()
    assert close(out.image.getpixel((8, 24)), RED)
    assert close(out.image.getpixel((56, 24)), BLUE)


def test_path_str_and_pathlike_match_bytes(tmp_path):
    data = encode(quadrants(), "PNG")
    p = tmp_path / "picture.jpg"  # extension lies: detection is by content
    p.write_bytes(data)
    a, b, c = load_image(data), load_image(str(p)), load_image(p)
    assert a.format == b.format == c.format == "PNG"
    assert a.sha256 == b.sha256 == c.sha256
    assert a.image.tobytes() == b.image.tobytes()


def test_bytearray_and_memoryview_accepted():
    data = encode(quadrants(), "PNG")
    assert load_image(bytearray(data)).sha256 == load_image(memoryview(data)).sha256


def _frames(size=(30, 20)):
    return [Image.new("RGB", size, c) for c in (RED, GREEN, BLUE)]


def test_animated_gif_first_frame_and_count():
    first, *rest = _frames()
    data = encode(first, "GIF", save_all=True, append_images=rest, duration=100, loop=0)
    out = load_image(data)
    assert (out.format, out.frames, out.image.size) == ("GIF", 3, (30, 20))
    assert close(out.image.getpixel((5, 5)), RED, tol=5)


def test_animated_webp_first_frame_and_count():
    first, *rest = _frames()
    data = encode(first, "WEBP", save_all=True, append_images=rest, duration=100, lossless=True)
    out = load_image(data)
    assert (out.format, out.frames, out.image.size) == ("WEBP", 3, (30, 20))
    assert close(out.image.getpixel((5, 5)), RED, tol=5)


def test_multi_picture_jpeg_reported_as_jpeg():
    first, *rest = _frames()
    out = load_image(encode(first, "MPO", save_all=True, append_images=rest[:1]))
    assert (out.format, out.frames) == ("JPEG", 2)


# ----------------------------------------------------------------------------- orientation / modes


def test_exif_orientation_6_rotates():
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    data = encode(quadrants(40, 20), "JPEG", exif=exif, quality=95)
    out = load_image(data)
    assert (out.width, out.height) == (20, 40) == out.image.size
    # the left (red) half of the stored image ends up on top
    assert close(out.image.getpixel((10, 5)), RED)
    assert close(out.image.getpixel((10, 35)), BLUE)


def test_transparent_rgba_png_becomes_white():
    out = load_image(encode(Image.new("RGBA", (16, 16), (0, 0, 0, 0)), "PNG"))
    assert out.had_alpha is True
    assert out.image.mode == "RGB"
    assert out.image.getcolors() == [(256, WHITE)]


def test_half_transparent_is_composited_on_white():
    out = load_image(encode(Image.new("RGBA", (4, 4), (255, 0, 0, 128)), "PNG"))
    assert close(out.image.getpixel((0, 0)), (255, 127, 127), tol=2)


def test_opaque_alpha_channel_reports_no_alpha():
    out = load_image(encode(Image.new("RGBA", (4, 4), (10, 20, 30, 255)), "PNG"))
    assert out.had_alpha is False
    assert out.image.getpixel((0, 0)) == (10, 20, 30)


def test_palette_png_with_transparency_becomes_white():
    im = Image.new("P", (8, 8), 0)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.paste(1, (0, 0, 4, 8))  # left half palette index 1 = red, right half index 0
    data = encode(im, "PNG", transparency=0)  # index 0 is transparent
    out = load_image(data)
    assert out.had_alpha is True
    assert out.image.getpixel((1, 1)) == RED
    assert out.image.getpixel((6, 1)) == WHITE


def test_transparent_gif_becomes_white():
    im = Image.new("P", (8, 8), 0)
    im.putpalette([0, 0, 0] * 256)
    out = load_image(encode(im, "GIF", transparency=0))
    assert out.had_alpha is True and out.image.getpixel((3, 3)) == WHITE


@pytest.mark.parametrize(
    ("mode", "fmt", "fill"),
    [
        ("1", "PNG", 1),
        ("L", "PNG", 200),
        ("LA", "PNG", (200, 255)),
        ("CMYK", "JPEG", (0, 255, 255, 0)),  # red in CMYK
        ("CMYK", "TIFF", (0, 255, 255, 0)),
        ("I;16", "PNG", 40000),
        ("I;16", "TIFF", 40000),
        ("F", "TIFF", 0.5),
        ("YCbCr", "TIFF", (128, 128, 128)),
    ],
)
def test_modes_convert_to_rgb(mode, fmt, fill):
    out = load_image(encode(Image.new(mode, (10, 6), fill), fmt))
    assert out.image.mode == "RGB" and out.image.size == (10, 6)
    px = out.image.getpixel((5, 3))
    if mode == "CMYK":
        assert close(px, RED)
    if mode == "I;16":  # scaled, not clipped to white
        assert 150 <= px[0] <= 160
    if mode == "F":
        assert 120 <= px[0] <= 135


# ----------------------------------------------------------------------------- rejections


def test_truncated_jpeg():
    data = encode(Image.effect_noise((256, 256), 64).convert("RGB"), "JPEG")
    with pytest.raises(InvalidImage) as ei:
        load_image(data[: len(data) // 2])
    assert_error(ei, InvalidImage, "invalid_image", "truncated")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_truncated_png():
    data = encode(Image.effect_noise((128, 128), 64).convert("RGB"), "PNG")
    with pytest.raises(ImageError) as ei:
        load_image(data[: len(data) // 2])
    assert_error(ei, InvalidImage, "invalid_image", "truncated")


def test_corrupt_header_with_known_signature():
    with pytest.raises(ImageError) as ei:
        load_image(b"\xff\xd8\xff" + b"\x00garbage" * 10)
    assert_error(ei, InvalidImage, "invalid_image", "corrupt")


def test_empty_bytes():
    with pytest.raises(ImageError) as ei:
        load_image(b"")
    assert_error(ei, InvalidImage, "invalid_image", "empty")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.png"
    p.touch()
    with pytest.raises(ImageError) as ei:
        load_image(p)
    assert_error(ei, InvalidImage, "invalid_image", "empty")


@pytest.mark.parametrize("side", [50_000, 7_000])  # above and below Pillow's own bomb limit
def test_decompression_bomb_refused_from_header(side):
    max_before = Image.MAX_IMAGE_PIXELS
    data = png_header_only(side, side)
    assert len(data) < 200
    t0 = time.perf_counter()
    with pytest.raises(ImageError) as ei:
        load_image(data)
    assert time.perf_counter() - t0 < 0.5  # never got as far as allocating pixels
    assert_error(ei, ImageTooLarge, "image_too_large", "pixels")
    assert Image.MAX_IMAGE_PIXELS == max_before  # global left alone


def test_webp_canvas_bomb_refused():
    # tiny animated WebP whose VP8X header declares a 9000x9000 canvas
    first, *rest = _frames((2, 2))
    data = bytearray(encode(first, "WEBP", save_all=True, append_images=rest, lossless=True))
    assert data[12:16] == b"VP8X"
    data[24:27] = (9000 - 1).to_bytes(3, "little")
    data[27:30] = (9000 - 1).to_bytes(3, "little")
    with pytest.raises(ImageError) as ei:
        load_image(bytes(data))
    assert_error(ei, ImageTooLarge, "image_too_large", "pixels")


def test_real_compressed_bomb_refused():
    # a genuinely decodable 1-bit PNG of 8000x8000 = 64 Mpx is only a few KB
    data = encode(Image.new("1", (8000, 8000)), "PNG")
    assert len(data) < 20_000
    with pytest.raises(ImageError) as ei:
        load_image(data)
    assert_error(ei, ImageTooLarge, "image_too_large", "pixels")


def test_max_pixels_parameter():
    data = encode(Image.new("RGB", (100, 100)), "PNG")
    assert load_image(data, max_pixels=10_000).width == 100
    with pytest.raises(ImageError) as ei:
        load_image(data, max_pixels=9_999)
    assert_error(ei, ImageTooLarge, "image_too_large", "pixels")


def test_over_max_bytes(tmp_path):
    data = encode(quadrants(), "PNG")
    with pytest.raises(ImageError) as ei:
        load_image(data, max_bytes=len(data) - 1)
    assert_error(ei, ImageTooLarge, "image_too_large", "bytes")
    p = tmp_path / "x.png"
    p.write_bytes(data)
    with pytest.raises(ImageError) as ei:
        load_image(p, max_bytes=len(data) - 1)
    assert_error(ei, ImageTooLarge, "image_too_large", "bytes")
    assert load_image(data, max_bytes=len(data)).format == "PNG"


@pytest.mark.parametrize(
    "data",
    [
        b"Just some plain text, not a picture.\n" * 3,
        b"<!DOCTYPE html><html><head><title>x</title></head><body><p>hello</p></body></html>",
        b"<html><body><svg width='10' height='10'><rect/></svg></body></html>",  # inline svg in HTML
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
        b"\x00" * 100,
        b'{"json": true}',
    ],
    ids=["text", "html", "html-inline-svg", "pdf", "zeros", "json"],
)
def test_non_images_unsupported_unknown(data):
    with pytest.raises(ImageError) as ei:
        load_image(data)
    assert_error(ei, UnsupportedMediaType, "unsupported_media_type", "unknown")


@pytest.mark.parametrize(("fmt", "name"), [("ICO", "ICO"), ("PPM", "PPM"), ("TGA", "TGA"), ("PCX", "PCX")])
def test_other_image_formats_unsupported_by_name(fmt, name):
    with pytest.raises(ImageError) as ei:
        load_image(encode(Image.new("RGB", (16, 16)), fmt))
    assert_error(ei, UnsupportedMediaType, "unsupported_media_type", name)


def test_missing_path(tmp_path):
    with pytest.raises(ImageError) as ei:
        load_image(tmp_path / "nope.png")
    assert_error(ei, ImageNotFound, "not_found", "missing")
    with pytest.raises(ImageError) as ei:
        load_image(str(tmp_path / "nope.png"))
    assert ei.value.code == "not_found"


def test_directory_path(tmp_path):
    with pytest.raises(ImageError) as ei:
        load_image(tmp_path)
    assert_error(ei, ImageNotFound, "not_found", "not_a_file")


@pytest.mark.parametrize("url", ["http://example.com/a.png", "https://example.com/a.png", " HTTPS://x/y"])
def test_url_string_refused(url):
    with pytest.raises(ImageError) as ei:
        load_image(url)
    assert_error(ei, InvalidSource, "invalid_source", "url")
    assert "HTTP layer" in str(ei.value)


def test_wrong_type_is_a_programming_error():
    with pytest.raises(TypeError):
        load_image(12345)  # type: ignore[arg-type]


def test_errors_pickle_with_code_and_reason():
    err = ImageTooLarge("pixels", "too big")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is ImageTooLarge
    assert (back.code, back.reason, str(back)) == ("image_too_large", "pixels", "too big")


# ----------------------------------------------------------------------------- fuzz

SEEDS = [encode(quadrants(16, 12), f, **kw) for f, kw in FORMATS] + [
    encode(Image.new("RGBA", (9, 7), (1, 2, 3, 4)), "PNG"),
    encode(Image.new("P", (9, 7)), "GIF", save_all=True, append_images=[Image.new("P", (9, 7), 3)]),
    encode(Image.new("CMYK", (9, 7)), "JPEG", progressive=True),
]


def _check(data: bytes):
    try:
        out = load_image(data)
    except ImageError as err:
        assert err.code in {"invalid_image", "image_too_large", "unsupported_media_type"}
        assert isinstance(err.reason, str) and err.reason
    else:
        assert out.image.mode == "RGB" and out.image.size == (out.width, out.height)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_only_raise_image_error(data):
    _check(data)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the broken TIFF tags we make
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    st.integers(0, 10_000),
)
def test_mutated_real_images_only_raise_image_error(seed, flips, cut):
    data = bytearray(seed)
    for pos, val in flips:
        data[pos % len(data)] = val
    _check(bytes(data[: max(1, len(data) - cut % len(data))]))


# ----------------------------------------------------------------------------- svg

needs_svg = pytest.mark.skipif(not svgmod.SUPPORTED, reason="resvg_py not installed")
NS = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'


@needs_svg
def test_svg_rendered_to_fit_box():
    svg = f'<svg width="300" height="150" {NS}><rect width="150" height="150" fill="red"/><rect x="150" width="150" height="150" fill="blue"/></svg>'
    out = load_image(svg.encode())
    assert (out.format, out.frames) == ("SVG", 1)
    assert (out.width, out.height) == (svgmod.MAX_SIDE, svgmod.MAX_SIDE // 2)
    assert out.image.mode == "RGB"
    assert close(out.image.getpixel((10, 10)), RED, tol=5)
    assert close(out.image.getpixel((out.width - 10, 10)), BLUE, tol=5)
    assert out.had_alpha is False


@needs_svg
def test_svg_with_bom_doctype_and_transparency():
    svg = (
        '\ufeff<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
        f'<svg viewBox="0 0 10 10" {NS}><circle cx="5" cy="5" r="2" fill="green"/></svg>'
    )
    out = load_image(svg.encode("utf-8"))
    assert out.format == "SVG" and out.had_alpha is True
    assert out.image.getpixel((2, 2)) == WHITE


@needs_svg
def test_svg_respects_max_pixels():
    svg = f'<svg width="100" height="100" {NS}><rect width="100" height="100"/></svg>'
    out = load_image(svg.encode(), max_pixels=400)
    assert out.image.size == (20, 20)


@needs_svg
@pytest.mark.parametrize("href", ["{path}", "file://{path}", "&#47;{rel}", "{name}"])
def test_svg_cannot_read_local_files(tmp_path, monkeypatch, href):
    secret = tmp_path / "secret.png"
    Image.new("RGB", (50, 50), RED).save(secret)
    monkeypatch.chdir(tmp_path)
    ref = href.format(path=secret, rel=str(secret).lstrip("/"), name=secret.name)
    svg = f'<svg width="50" height="50" {NS}><image xlink:href="{ref}" width="50" height="50"/><image href="{ref}" width="50" height="50"/></svg>'
    out = load_image(svg.encode())
    assert out.image.getcolors() == [(out.width * out.height, WHITE)]


@needs_svg
def test_svg_embedded_raster_data_uri_kept():
    import base64

    b64 = base64.b64encode(encode(Image.new("RGB", (8, 8), GREEN), "PNG")).decode()
    svg = f'<svg width="8" height="8" {NS}><image xlink:href="data:image/png;base64,{b64}" width="8" height="8"/></svg>'
    out = load_image(svg.encode())
    assert close(out.image.getpixel((out.width // 2, out.height // 2)), GREEN, tol=5)


@needs_svg
def test_svg_embedded_bomb_dropped():
    import base64

    b64 = base64.b64encode(encode(Image.new("1", (9000, 9000), 0), "PNG")).decode()
    svg = f'<svg width="8" height="8" {NS}><image href="data:image/png;base64,{b64}" width="8" height="8"/></svg>'
    t0 = time.perf_counter()
    out = load_image(svg.encode())
    assert time.perf_counter() - t0 < 5
    assert out.image.getpixel((4, 4)) == WHITE


def test_svg_entities_refused():
    for svg in (
        f'<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/hostname">]><svg {NS}><text>&x;</text></svg>',
        '<!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        f"<svg {NS}><text>&b;</text></svg>",
    ):
        with pytest.raises(ImageError) as ei:
            load_image(svg.encode())
        assert_error(ei, InvalidImage, "invalid_image", "unsafe_svg")


def test_svg_malformed_and_too_deep():
    with pytest.raises(ImageError) as ei:
        load_image(f"<svg {NS}><rect></svg>".encode())
    assert_error(ei, InvalidImage, "invalid_image", "corrupt")
    with pytest.raises(ImageError) as ei:
        load_image((f"<svg {NS}>" + "<g>" * 1000 + "</g>" * 1000 + "</svg>").encode())
    assert_error(ei, ImageTooLarge, "image_too_large", "svg_complexity")


@needs_svg
def test_svg_renderer_abort_is_contained():
    # resvg aborts the process on this (huge pattern tile): it must only kill the child
    svg = (
        f'<svg width="10" height="10" {NS}><defs><pattern id="p" width="1000000" height="1000000" '
        'patternUnits="userSpaceOnUse"><rect width="1000000" height="1000000" fill="red"/></pattern></defs>'
        '<rect width="10" height="10" fill="url(#p)"/></svg>'
    )
    with pytest.raises(ImageError) as ei:
        load_image(svg.encode())
    assert_error(ei, ImageTooLarge, "image_too_large", "svg_complexity")


@needs_svg
def test_svg_render_timeout(monkeypatch):
    monkeypatch.setattr(svgmod, "TIMEOUT_S", 1.0)
    svg = (
        f'<svg width="10" height="10" {NS}><filter id="f"><feTurbulence baseFrequency="0.5" numOctaves="100000"/>'
        '</filter><rect width="10" height="10" fill="red" filter="url(#f)"/></svg>'
    )
    t0 = time.perf_counter()
    with pytest.raises(ImageError) as ei:
        load_image(svg.encode())
    assert time.perf_counter() - t0 < 5
    assert_error(ei, ImageTooLarge, "image_too_large", "svg_complexity")


def test_svg_without_renderer_is_unsupported(monkeypatch):
    monkeypatch.setattr(svgmod, "SUPPORTED", False)
    with pytest.raises(ImageError) as ei:
        load_image(f'<svg width="4" height="4" {NS}/>'.encode())
    assert_error(ei, UnsupportedMediaType, "unsupported_media_type", "SVG")


def many_page_tiff(pages: int) -> bytes:
    """A little-endian TIFF with ``pages`` 1x1 greyscale IFDs sharing one pixel byte."""
    tags = [(256, 3, 1), (257, 3, 1), (258, 3, 8), (259, 3, 1), (262, 3, 1),
            (273, 4, 8), (277, 3, 1), (278, 3, 1), (279, 4, 1)]  # 273: pixel at offset 8
    ifd_size = 2 + 12 * len(tags) + 4
    out = bytearray(b"II*\0" + struct.pack("<I", 12) + b"\x80\0\0\0")
    for i in range(pages):
        out += struct.pack("<H", len(tags))
        for tag, typ, val in tags:
            out += struct.pack("<HHI", tag, typ, 1) + (struct.pack("<HH", val, 0) if typ == 3 else struct.pack("<I", val))
        out += struct.pack("<I", 0 if i == pages - 1 else len(out) + 4)
    assert len(out) == 12 + pages * ifd_size
    return bytes(out)


def test_tiff_pages_counted():
    out = load_image(many_page_tiff(3))
    assert (out.format, out.frames, out.image.size) == ("TIFF", 3, (1, 1))
    assert out.image.getpixel((0, 0)) == (128, 128, 128)


def test_tiff_page_count_is_capped_and_fast():
    data = many_page_tiff(50_000)  # ~5.7 MB; Pillow's own n_frames needs minutes here
    t0 = time.perf_counter()
    out = load_image(data)
    assert time.perf_counter() - t0 < 2
    assert out.frames == imageio._MAX_TIFF_PAGES


# ----------------------------------------------------------------------------- decode_side


def test_large_jpeg_is_decoded_at_a_reduced_scale_keeping_the_stored_size():
    """libjpeg's DCT scaling: 3000x2000 with decode_side=1024 decodes at 1/2 (1500x1000;
    1/4 would fall below 1024), the pixels still right, width/height the stored size."""
    data = encode(quadrants(3000, 2000), "JPEG", quality=90)
    full = load_image(data)
    small = load_image(data, decode_side=1024)
    assert full.image.size == (3000, 2000)
    assert small.image.size == (1500, 1000)
    assert (small.width, small.height) == (3000, 2000) and small.sha256 == full.sha256
    assert small.image.getpixel((10, 500)) == pytest.approx(RED, abs=8)
    assert small.image.getpixel((1490, 500)) == pytest.approx(BLUE, abs=8)
    # 1/8 where that still leaves the long side at least decode_side
    assert load_image(encode(quadrants(4096, 3072), "JPEG"), decode_side=512).image.size == (512, 384)


def test_decode_side_leaves_small_jpegs_and_other_formats_alone():
    assert load_image(encode(quadrants(2000, 1000), "JPEG"), decode_side=1024).image.size == (2000, 1000)
    assert load_image(encode(quadrants(3000, 2000), "PNG"), decode_side=1024).image.size == (3000, 2000)


def test_reduced_decode_follows_exif_orientation():
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    loaded = load_image(encode(quadrants(3000, 2000), "JPEG", exif=exif, quality=90), decode_side=1024)
    assert loaded.image.size == (1000, 1500)
    assert (loaded.width, loaded.height) == (2000, 3000)
