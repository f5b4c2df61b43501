"""The images and videos the emulator hands out, and the addresses it serves them at: pure functions.

xAI's image and video results carry URLs on its media hosts that stop working one hour after the
media was made. The emulator names media at its own address instead
(``<base>/media/<batch_id>/<request>-<n>.<ext>``) and serves real files there: a PNG that decodes
and a small MP4 whose boxes a demuxer reads (one uncompressed ``raw `` RGB track, so no codec is
needed to make or to decode it). Every file is derived from the batch, the request and the item
number, so reading a result twice names and serves identical bytes.

>>> png = png_image(seed=b"xyz", width=4, height=2)
>>> png[:8] == PNG_SIGNATURE, len(mp4_video(seed=b"xyz")) > 1000
(True, True)
>>> media_path("batch_1", "row/1", 2, "png")
'/media/batch_1/cm93LzE-2.png'
>>> parse_media_path(media_path("batch_1", "row/1", 2, "png"))
('batch_1', 'row/1', 2, 'png')
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMAGE_SIDE = 64
VIDEO_SIDE = 32
VIDEO_FPS = 4
CONTENT_TYPES: dict[str, str] = {"png": "image/png", "mp4": "video/mp4"}

_MEDIA_PATH = re.compile(
    r"^/media/(?P<batch>[^/]+)/(?P<request>[A-Za-z0-9_-]*)-(?P<index>\d+)\.(?P<ext>png|mp4)$"
)


def media_path(batch_id: str, batch_request_id: str, index: int, ext: str) -> str:
    """The path one media item is served at; the request id travels base64url-encoded (ids may hold ``/``)."""
    encoded = base64.urlsafe_b64encode(batch_request_id.encode()).decode().rstrip("=")
    return f"/media/{batch_id}/{encoded}-{index}.{ext}"


def parse_media_path(path: str) -> tuple[str, str, int, str] | None:
    """``(batch_id, batch_request_id, index, ext)`` of a media path, or ``None`` when it is not one."""
    found = _MEDIA_PATH.fullmatch(path)
    if found is None:
        return None
    encoded = found["request"]
    try:
        request_id = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return found["batch"], request_id, int(found["index"]), found["ext"]


def media_seed(batch_id: str, batch_request_id: str, index: int) -> bytes:
    return hashlib.blake2b(f"{batch_id}\0{batch_request_id}\0{index}".encode(), digest_size=16).digest()


def png_image(seed: bytes, width: int = IMAGE_SIDE, height: int = IMAGE_SIDE) -> bytes:
    """An RGB PNG: a gradient tinted by ``seed``, with valid chunk CRCs."""
    red, green, blue = seed[0], seed[1], seed[2]
    # Built by slicing whole channels into each scanline: a Python loop per pixel would make the
    # emulator, not the client, the slow side of every media benchmark.
    reds = bytes((red + x * 4) & 0xFF for x in range(width))
    blues = bytes((blue + n) & 0xFF for n in range(width + height))
    rows = bytearray()
    line = bytearray(width * 3)
    line[0::3] = reds
    for y in range(height):
        line[1::3] = bytes(((green + y * 4) & 0xFF,)) * width
        line[2::3] = blues[y : y + width]
        rows.append(0)  # filter type 0 (None) for each scanline
        rows += line
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(bytes(rows), 6))
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def mp4_video(seed: bytes, seconds: int = 6, side: int = VIDEO_SIDE, fps: int = VIDEO_FPS) -> bytes:
    """An ISO base media file (``ftyp``, ``mdat``, ``moov``) holding one uncompressed RGB video track."""
    frame_bytes = side * side * 3
    frames = seconds * fps
    data = bytearray()
    for number in range(frames):
        shade = (seed[0] + number * 10) & 0xFF
        data += bytes((shade, seed[1], (seed[2] + number * 5) & 0xFF)) * (side * side)
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2mp41")
    mdat = _box(b"mdat", bytes(data))
    chunk_offset = len(ftyp) + 8
    timescale = 1000
    duration = seconds * timescale
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = _full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, timescale, duration)
        + struct.pack(">IH", 0x10000, 0x100)
        + bytes(10)
        + matrix
        + bytes(24)
        + struct.pack(">I", 2),
    )
    tkhd = _full_box(
        b"tkhd",
        0,
        3,
        struct.pack(">IIII", 0, 0, 1, 0)
        + struct.pack(">I", duration)
        + bytes(8)
        + struct.pack(">hhhH", 0, 0, 0, 0)
        + matrix
        + struct.pack(">II", side << 16, side << 16),
    )
    mdhd = _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, duration, 0x55C4, 0))
    hdlr = _full_box(b"hdlr", 0, 0, struct.pack(">I", 0) + b"vide" + bytes(12) + b"VideoHandler\0")
    vmhd = _full_box(b"vmhd", 0, 1, bytes(8))
    dinf = _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1) + _full_box(b"url ", 0, 1, b"")))
    sample_entry = _box(
        b"raw ",
        bytes(6)
        + struct.pack(">H", 1)
        + bytes(16)
        + struct.pack(">HH", side, side)
        + struct.pack(">II", 0x480000, 0x480000)
        + bytes(4)
        + struct.pack(">H", 1)
        + bytes(32)
        + struct.pack(">Hh", 24, -1),
    )
    stbl = _box(
        b"stbl",
        _full_box(b"stsd", 0, 0, struct.pack(">I", 1) + sample_entry)
        + _full_box(b"stts", 0, 0, struct.pack(">III", 1, frames, timescale // fps))
        + _full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, frames, 1))
        + _full_box(b"stsz", 0, 0, struct.pack(">II", frame_bytes, frames))
        + _full_box(b"stco", 0, 0, struct.pack(">II", 1, chunk_offset)),
    )
    minf = _box(b"minf", vmhd + dinf + stbl)
    trak = _box(b"trak", tkhd + _box(b"mdia", mdhd + hdlr + minf))
    moov = _box(b"moov", mvhd + trak)
    return ftyp + mdat + moov


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full_box(kind: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags) + payload)


@functools.lru_cache(maxsize=256)
def media_bytes(batch_id: str, batch_request_id: str, index: int, ext: str) -> bytes:
    """The file one media item holds."""
    seed = media_seed(batch_id, batch_request_id, index)
    return png_image(seed) if ext == "png" else mp4_video(seed)
