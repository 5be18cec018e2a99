"""Snappy's block format, compress only: what Prometheus remote write requires of a
body. A plain greedy LZ77 over 64 KiB blocks (4-byte matches from a hash of the last
position seen), so the output is real snappy any decoder reads. Written here because
no snappy binding is in the project's Python (Debian's python3-snappy is for the
system Python only); bodies are a few hundred KiB at most, so speed matters little.
"""

from __future__ import annotations

BLOCK = 1 << 16                 # copies use 2-byte offsets: matches stay inside a block


def varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _literal(data: bytes, out: bytearray) -> None:
    n = len(data) - 1
    if n < 0:
        return
    if n < 60:
        out.append(n << 2)
    elif n < 0x100:
        out += bytes((60 << 2, n))
    else:                               # a literal never exceeds a block (64 KiB)
        out += bytes((61 << 2, n & 0xFF, n >> 8))
    out += data


def _copy(offset: int, length: int, out: bytearray) -> None:
    while length > 0:                   # copy-2 elements: 1..64 bytes each
        step = min(length, 64)
        out += bytes((((step - 1) << 2) | 2, offset & 0xFF, offset >> 8))
        length -= step


def _block(b: bytes, out: bytearray) -> None:
    seen: dict[bytes, int] = {}
    i = lit = 0
    n = len(b)
    misses = 0
    while i + 4 <= n:
        key = b[i:i + 4]
        cand = seen.get(key)
        seen[key] = i
        if cand is None:
            misses += 1
            i += 1 + (misses >> 5)      # skip faster through data that does not repeat
            continue
        misses = 0
        length = 4
        while i + length < n and b[cand + length] == b[i + length]:
            length += 1
        _literal(b[lit:i], out)
        _copy(i - cand, length, out)
        i += length
        lit = i
    _literal(b[lit:], out)


def compress(data: bytes) -> bytes:
    out = bytearray(varint(len(data)))
    for start in range(0, len(data), BLOCK):
        _block(data[start:start + BLOCK], out)
    return bytes(out)
