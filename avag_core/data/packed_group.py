"""Read OpenClonk's packed groups (``.ocg``): Debian's ``openclonk-data`` ships its sound
effects (impacts, tools, doors, fire, wind; CC-BY 3.0 unless its ``authors.txt`` says
otherwise) as one such file, ``Sound.ocg``, which neither Python nor the data package can open.

The format, as OpenClonk's ``C4Group`` writes it: a gzip stream whose first two bytes are
changed (``1e 8c`` for ``1f 8b``); inside, a 204-byte header, scrambled (each byte XOR 237,
then the first and third byte of every three swapped), holding the number of entries; then
that many 316-byte entries (a 260-byte NUL-ended name, then little-endian int32s: packed,
is-a-group, size, unused, offset); then the members' bytes, each at its offset from the
end of the entries. A member that is a group is one more header and entries, not
compressed again.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

_MAGIC = b"\x1e\x8c"
_ID = b"RedWolf Design GrpFolder"
_HEADER, _ENTRY, _NAME = 204, 316, 260


def _unscramble(header: bytes) -> bytes:
    out = bytearray(b ^ 237 for b in header)
    for i in range(0, len(out) - 2, 3):
        out[i], out[i + 2] = out[i + 2], out[i]
    return bytes(out)


def _members(data: bytes, prefix: str, where: str) -> Iterator[tuple[str, bytes]]:
    header = _unscramble(data[:_HEADER])
    if len(data) < _HEADER or not header.startswith(_ID):
        raise ValueError(f"{where}: not an OpenClonk group (no group header at {prefix or 'its start'})")
    (count,) = struct.unpack_from("<i", header, 36)
    base = _HEADER + count * _ENTRY
    if count < 0 or base > len(data):
        raise ValueError(f"{where}: truncated group {prefix or '/'} ({count} entries, {len(data)} bytes)")
    for k in range(count):
        entry = data[_HEADER + k * _ENTRY:_HEADER + (k + 1) * _ENTRY]
        name = entry[:_NAME].split(b"\0", 1)[0].decode("latin-1")
        _packed, is_group, size, _unused, offset = struct.unpack_from("<5i", entry, _NAME)
        if not name or "/" in name or name in (".", "..") or offset < 0 or size < 0 or base + offset + size > len(data):
            raise ValueError(f"{where}: bad entry {prefix + name!r} (offset {offset}, size {size})")
        blob = data[base + offset:base + offset + size]
        if is_group:
            yield from _members(blob, prefix + name + "/", where)
        else:
            yield prefix + name, blob


def read_group(path: Path) -> Iterator[tuple[str, bytes]]:
    """Every file of the packed group ``path``, as (``"Sub.ocg/Name.ogg"``, bytes), sub-groups
    walked. A file that is not one raises ValueError naming it."""
    raw = Path(path).read_bytes()
    if raw[:2] != _MAGIC:
        raise ValueError(f"{path}: not an OpenClonk packed group (it starts {raw[:2].hex()}, not 1e8c)")
    try:
        data = gzip.decompress(b"\x1f\x8b" + raw[2:])
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: a packed group whose stream does not inflate ({exc})") from None
    yield from _members(data, "", str(path))


def unpack_group(path: Path, root: Path) -> Path:
    """The files of ``path`` in a folder below ``root`` named for its bytes, written once
    (into a temporary folder, then renamed: two trainings side by side find all or none)."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    dest = root / f"{Path(path).stem}-{digest}"
    if dest.is_dir():
        return dest
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=root))
    try:
        for name, blob in read_group(path):
            out = tmp / name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(blob)
        os.rename(tmp, dest)
    except OSError:
        if not dest.is_dir():  # another process renamed its copy first: use that
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
