"""Checks that stored media really is what it claims: a PNG that decodes, an MP4 whose boxes add up."""

from __future__ import annotations

import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def decode_png(data: bytes) -> tuple[int, int]:
    """``(width, height)`` of an 8-bit RGB PNG after checking every chunk's CRC and inflating its pixels."""
    assert data[:8] == PNG_SIGNATURE, "not a PNG signature"
    offset = 8
    chunks: list[tuple[bytes, bytes]] = []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in chunk {kind!r}"
        chunks.append((kind, body))
        offset += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    assert (depth, colour) == (8, 2), "expected 8-bit RGB"
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(pixels) == height * (1 + width * 3)
    return width, height


def mp4_boxes(data: bytes, start: int = 0, end: int | None = None) -> dict[bytes, tuple[int, int]]:
    """Top-level boxes between ``start`` and ``end``: type -> (payload offset, payload end); sizes must tile."""
    end = len(data) if end is None else end
    boxes: dict[bytes, tuple[int, int]] = {}
    offset = start
    while offset < end:
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        assert size >= 8 and offset + size <= end, f"box {kind!r} overruns its parent"
        boxes[kind] = (offset + 8, offset + size)
        offset += size
    assert offset == end, "boxes do not tile their parent"
    return boxes


def check_mp4(data: bytes) -> int:
    """Walk an MP4's boxes down to its sample table; return the number of frames the table describes."""
    top = mp4_boxes(data)
    assert data[top[b"ftyp"][0] : top[b"ftyp"][0] + 4] == b"isom"
    moov = mp4_boxes(data, *top[b"moov"])
    trak = mp4_boxes(data, *moov[b"trak"])
    mdia = mp4_boxes(data, *trak[b"mdia"])
    minf = mp4_boxes(data, *mdia[b"minf"])
    stbl = mp4_boxes(data, *minf[b"stbl"])
    stsz_at = stbl[b"stsz"][0]
    sample_size, sample_count = struct.unpack(">II", data[stsz_at + 4 : stsz_at + 12])
    stco_at = stbl[b"stco"][0]
    (chunk_offset,) = struct.unpack(">I", data[stco_at + 8 : stco_at + 12])
    mdat_start, mdat_end = top[b"mdat"]
    assert chunk_offset == mdat_start and mdat_end - mdat_start == sample_size * sample_count
    return int(sample_count)
