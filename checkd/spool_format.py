"""On-disk framing of spooled results: one frame = header + JSON payload.

The spool writes frames, and recovery, reads and compaction parse them back.
Each frame carries a magic, its seq and a CRC32, so a torn or garbled frame is
detected and the parser can resync on the next valid frame.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Union

from checkd import json_codec

MAGIC = b"CKr1"
# magic, payload length, seq, crc32 over (seq as 8 bytes + payload)
HEADER = struct.Struct(">4sIQI")
# A result is a few KiB at most (plugin output is capped); anything larger is
# a garbled length field, and trusting it would make the parser skip data.
MAX_PAYLOAD = 16 << 20
_SEQ = struct.Struct(">Q")


def encode_payload(record: dict[str, Any]) -> bytes:
    """Serialise a result (compact UTF-8 JSON); raises TypeError/ValueError at the caller's append."""
    return json_codec.dumps(record)


def decode_record(seq: int, payload: bytes) -> dict[str, Any]:
    record: dict[str, Any] = json_codec.loads(payload)
    record["seq"] = seq
    return record


def _crc(seq: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(_SEQ.pack(seq)))


def frame(seq: int, payload: bytes) -> bytes:
    return HEADER.pack(MAGIC, len(payload), seq, _crc(seq, payload)) + payload


@dataclass(frozen=True, slots=True)
class Frame:
    """A valid frame at [offset, end)."""

    offset: int
    end: int
    seq: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Garbage:
    """Bytes at [offset, end) that are not a valid frame; end is the next valid
    frame, or the end of the data when none follows (a torn tail)."""

    offset: int
    end: int


Item = Union[Frame, Garbage]


def parse_at(buf: Any, offset: int, end: int) -> Frame | None:
    """The valid frame starting exactly at offset, or None. buf: bytes or mmap."""
    body = offset + HEADER.size
    if body > end:
        return None
    magic, length, seq, crc = HEADER.unpack_from(buf, offset)
    if magic != MAGIC or length > MAX_PAYLOAD or body + length > end:
        return None
    payload = buf[body : body + length]
    if _crc(seq, payload) != crc:
        return None
    return Frame(offset, body + length, seq, payload)


def resync(buf: Any, start: int, end: int) -> int:
    """Offset of the next valid frame at or after start, or end if none."""
    pos = start
    while True:
        pos = buf.find(MAGIC, pos, end)
        if pos < 0:
            return end
        if parse_at(buf, pos, end) is not None:
            return pos
        pos += 1


def scan(buf: Any, start: int, end: int) -> Iterator[Item]:
    """Frames and garbage runs between start and end, in file order."""
    offset = start
    while offset < end:
        found = parse_at(buf, offset, end)
        if found is not None:
            yield found
            offset = found.end
            continue
        nxt = resync(buf, offset + 1, end)
        yield Garbage(offset, nxt)
        offset = nxt
