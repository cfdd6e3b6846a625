"""insightface / MXNet RecordIO (``.rec`` + ``.idx``), read and written without mxnet.

The format (dmlc-core ``recordio.h`` and ``mxnet.recordio``), byte for byte:

* A ``.rec`` file is a sequence of records. Each record is ``uint32 magic = 0xced7230a``, ``uint32 lrecord``
  (little endian), the payload, then zero padding to a multiple of 4 bytes. ``lrecord = cflag << 29 | length``.
  ``cflag`` is 0 for a whole record; a payload that contains the magic number at a 4-byte aligned offset is
  split there into parts with cflag 1 (first), 2 (middle), 3 (last), the magic itself being dropped from the
  data and re-inserted by the reader.
* The ``.idx`` file holds one ``"{key}\\t{offset}\\n"`` line per record (byte offset of the record's magic).
* A payload written by ``mxnet.recordio.pack`` starts with the ``IRHeader`` ``struct.pack('IfQQ', flag, label,
  id, id2)`` (24 bytes). ``flag > 0`` means the label is a float32 array of ``flag`` values that follows the
  header (and the ``label`` field is 0); the image bytes (JPEG/PNG) come after.

Public API: :class:`RecordIOWriter`, :class:`RecordIOReader`, :func:`pack_header`, :func:`unpack_header`,
:func:`pack`, :func:`unpack`. The insightface training-set layout on top of it (header record, class ranges):
:mod:`synthfr.data.insightface_rec`; converting folders to and from ``.rec``: :mod:`synthfr.data.rec_convert`.
"""
from __future__ import annotations

import os
import struct
from collections import namedtuple
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from synthfr.errors import InputError

__all__ = [
    "CorruptRecordError",
    "MAGIC", "IRHeader", "pack_header", "unpack_header", "pack", "unpack", "RecordIOWriter", "RecordIOReader",
    "default_idx_path",
]

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_IR_FORMAT = "<IfQQ"  # identical bytes to mxnet's native 'IfQQ' on little-endian machines (no padding)
_IR_SIZE = struct.calcsize(_IR_FORMAT)  # 24

IRHeader = namedtuple("IRHeader", ["flag", "label", "id", "id2"])
IRHeader.__doc__ = """Record header: ``flag`` (0 or number of float32 labels), ``label`` (float or float32 array),
``id`` and ``id2`` (uint64)."""


def _encode_lrec(cflag: int, length: int) -> int:
    return (cflag << 29) | length


def _decode_lrec(lrec: int) -> tuple[int, int]:
    return lrec >> 29, lrec & ((1 << 29) - 1)


def default_idx_path(rec_path: str | Path) -> Path:
    """``train.rec`` -> ``train.idx``."""
    rec_path = Path(rec_path)
    return rec_path.with_suffix(".idx")


# -- IRHeader ---------------------------------------------------------------------------------------
def pack_header(label: float | Sequence[float] | np.ndarray, id: int = 0, id2: int = 0) -> bytes:
    """The IRHeader bytes (plus the float32 label array when ``label`` is a sequence), as ``mxnet.recordio.pack``.

    A scalar label gives ``flag = 0`` and the label in the header; a sequence gives ``flag = len(label)``,
    ``label = 0`` in the header and the labels as float32 after it.
    """
    if isinstance(label, (int, float, np.integer, np.floating)) or (isinstance(label, np.ndarray) and label.ndim == 0):
        return struct.pack(_IR_FORMAT, 0, float(label), int(id), int(id2))
    arr = np.asarray(label, dtype="<f4").reshape(-1)
    return struct.pack(_IR_FORMAT, arr.size, 0.0, int(id), int(id2)) + arr.tobytes()


def unpack_header(buf: bytes) -> tuple[IRHeader, bytes]:
    """Split a packed payload into ``(IRHeader, rest)``; ``header.label`` is a float32 array when ``flag > 0``."""
    if len(buf) < _IR_SIZE:
        raise ValueError(f"record of {len(buf)} bytes is too short for an IRHeader ({_IR_SIZE} bytes)")
    flag, label, id_, id2 = struct.unpack(_IR_FORMAT, buf[:_IR_SIZE])
    rest = buf[_IR_SIZE:]
    if flag > 0:
        if len(rest) < 4 * flag:
            raise ValueError(f"IRHeader says {flag} float labels follow but only {len(rest)} bytes remain")
        label = np.frombuffer(rest[: 4 * flag], dtype="<f4").copy()
        rest = rest[4 * flag:]
    return IRHeader(flag, label, id_, id2), rest


def pack(header: IRHeader | tuple, s: bytes) -> bytes:
    """``mxnet.recordio.pack`` without mxnet: header ``(flag, label, id, id2)`` + payload ``s``."""
    h = IRHeader(*header)
    return pack_header(h.label, h.id, h.id2) + s


def unpack(s: bytes) -> tuple[IRHeader, bytes]:
    """``mxnet.recordio.unpack`` without mxnet."""
    return unpack_header(s)


def _frame(buf: bytes) -> bytes:
    """One payload as it lies in the ``.rec``: split at every 4-byte aligned magic number (as dmlc-core does),
    each part behind ``magic, lrecord``, zero-padded to 4 bytes."""
    n = len(buf)
    if n >= 1 << 29:
        raise ValueError(f"RecordIO records must be smaller than 2^29 bytes, got {n}")
    out: list[bytes] = []
    dptr, start, lower = 0, 0, (n >> 2) << 2
    while True:
        i = buf.find(_MAGIC_BYTES, start, lower)
        if i < 0:
            break
        if i % 4:
            start = i + 1
            continue
        out += [_MAGIC_BYTES, struct.pack("<I", _encode_lrec(1 if dptr == 0 else 2, i - dptr)), buf[dptr:i]]
        dptr = i + 4
        start = dptr
    out += [_MAGIC_BYTES, struct.pack("<I", _encode_lrec(3 if dptr != 0 else 0, n - dptr)), buf[dptr:],
            b"\x00" * ((-n) % 4)]
    return b"".join(out)


# -- writer -----------------------------------------------------------------------------------------
class RecordIOWriter:
    """Write an indexed RecordIO file pair (``.rec`` + ``.idx``), byte-compatible with ``MXIndexedRecordIO``.

    ``write(label, img_bytes, id=None, key=None)`` packs an IRHeader (``id`` defaults to the key) before the
    image bytes and returns the key; keys default to 0, 1, 2, ... ``write_raw(buf, key=None)`` writes an
    already packed payload. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, rec_path: str | Path, idx_path: str | Path | None = None):
        self.rec_path = Path(rec_path)
        self.idx_path = Path(idx_path) if idx_path is not None else default_idx_path(self.rec_path)
        self.rec_path.parent.mkdir(parents=True, exist_ok=True)
        self._rec = open(self.rec_path, "w+b")  # readable too: overwrite() checks the record it replaces
        self._idx = open(self.idx_path, "w")
        self._next_key = 0
        self.keys: list[int] = []

    def tell(self) -> int:
        return self._rec.tell()

    @property
    def closed(self) -> bool:
        return self._rec.closed

    def overwrite(self, pos: int, buf: bytes) -> None:
        """Rewrite the record at byte ``pos`` with a payload of the same framed size (e.g. a header written
        first as a placeholder); the index is unchanged and writing goes on at the end."""
        framed, end = _frame(buf), self._rec.tell()
        try:
            old = self._framed_size_at(pos)
            if len(framed) != old:
                raise ValueError(f"the record at byte {pos} takes {old} bytes; a rewrite must take the same, not "
                                 f"{len(framed)}")
            self._rec.seek(pos)
            self._rec.write(framed)
        finally:
            self._rec.seek(end)  # appending goes on at the end, also after a refused rewrite

    def _framed_size_at(self, pos: int) -> int:
        """Bytes of the (possibly split) record whose first part starts at ``pos``."""
        end = pos
        for _, _, end in _record_parts(self._rec, pos, self._rec.seek(0, os.SEEK_END), self.rec_path, read=False,
                                       hint="no record starts there"):
            pass
        return end - pos

    def _write_record(self, buf: bytes) -> None:
        self._rec.write(_frame(buf))

    def write_raw(self, buf: bytes, key: int | None = None) -> int:
        """Write a packed payload under ``key`` (default: previous key + 1) and index it; returns the key."""
        if key is None:
            key = self._next_key
        key = int(key)
        pos = self._rec.tell()
        self._write_record(buf)
        self._idx.write(f"{key}\t{pos}\n")
        self.keys.append(key)
        self._next_key = max(self._next_key, key + 1)
        return key

    def write(self, label: float | Sequence[float], img_bytes: bytes, id: int | None = None,
              key: int | None = None, id2: int = 0) -> int:
        """Pack ``IRHeader(flag, label, id, id2)`` + ``img_bytes`` and write it; returns the record key."""
        if key is None:
            key = self._next_key
        payload = pack_header(label, key if id is None else id, id2) + bytes(img_bytes)
        return self.write_raw(payload, key)

    def flush(self) -> None:
        self._rec.flush()
        self._idx.flush()

    def close(self) -> None:
        if not self._rec.closed:
            self._rec.close()
        if not self._idx.closed:
            self._idx.close()

    def __enter__(self) -> "RecordIOWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- reader -----------------------------------------------------------------------------------------
class CorruptRecordError(InputError):
    """A record whose length field or framing does not fit the file (named with its byte offset)."""


def _record_parts(f, offset: int, limit: int, where: Path, read: bool = True,
                  hint: str = "the file is corrupt or the .idx is not the one of this .rec"
                  ) -> Iterator[tuple[int, bytes | None, int]]:
    """The one walker of the (possibly split) record whose first part starts at byte ``offset`` of the open file
    ``f``: yields ``(cflag, data, end)`` per part (``data`` is None unless ``read``; ``end`` is the byte after the
    part's padding). Every part's magic and length field are checked; no part may end past ``limit`` (the next
    record's offset or the file's end), so a corrupt length never swallows the rest of the file."""
    pos = offset
    while True:
        f.seek(pos)
        head = f.read(8)
        if len(head) < 8:
            raise CorruptRecordError(f"{where}: truncated record at byte {offset}")
        magic, lrec = struct.unpack("<II", head)
        if magic != MAGIC:
            raise CorruptRecordError(f"{where}: bad magic at byte {pos}; {hint}")
        cflag, length = _decode_lrec(lrec)
        end = pos + 8 + length + (-length) % 4
        if end > limit:
            raise CorruptRecordError(f"{where}: the record at byte {offset} claims {length} bytes, past byte {limit} "
                                     "(the next record or the end of the file); its length field is corrupt")
        data = None
        if read:
            data = f.read(length)
            if len(data) < length:
                raise CorruptRecordError(f"{where}: truncated record at byte {offset}")
        yield cflag, data, end
        if cflag in (0, 3):
            return
        pos = end


class RecordIOReader:
    """Random-access reader of a ``.rec``/``.idx`` pair (without ``.idx``, the file is scanned once).

    ``len(reader)``, ``reader.keys`` (in index order), ``read_raw(key) -> bytes`` (packed payload),
    ``read(key) -> (IRHeader, bytes)``. Safe to use from DataLoader workers: the file is (re)opened per
    process.
    """

    def __init__(self, rec_path: str | Path, idx_path: str | Path | None = None):
        self.rec_path = Path(rec_path)
        if not self.rec_path.is_file():
            raise FileNotFoundError(f"RecordIO file {self.rec_path} does not exist; pass the path of a .rec file")
        self.idx_path = Path(idx_path) if idx_path is not None else default_idx_path(self.rec_path)
        self._offsets: dict[int, int] = {}
        if self.idx_path.is_file():
            with open(self.idx_path) as f:
                for n, line in enumerate(f):
                    line = line.strip()
                    if not line:
                        continue
                    parts = line.split("\t")
                    if len(parts) != 2:
                        raise ValueError(f"{self.idx_path}:{n + 1}: expected 'key<TAB>offset', got {line!r}")
                    self._offsets[int(parts[0])] = int(parts[1])
        else:
            for i, off in enumerate(self._scan()):
                self._offsets[i] = off
        self.keys: list[int] = list(self._offsets)
        self.size = self.rec_path.stat().st_size
        # each record must end by the next record's offset (or the end of the file): a corrupt length field
        # is caught instead of returning the rest of the file as one "image"
        offs = sorted(set(self._offsets.values()))
        for k, off in self._offsets.items():
            if not 0 <= off <= self.size - 8:
                raise CorruptRecordError(f"{self.idx_path}: record {k} starts at byte {off}, outside {self.rec_path} "
                                         f"({self.size} bytes); is this .idx for this .rec?")
        self._extent = {off: (offs[i + 1] if i + 1 < len(offs) else self.size) for i, off in enumerate(offs)}
        self._fh = None
        self._pid = None

    def _scan(self) -> Iterator[int]:
        """Offsets of every record, walking the file from its start (no ``.idx``)."""
        with open(self.rec_path, "rb") as f:
            size, pos = os.fstat(f.fileno()).st_size, 0
            while pos + 8 <= size:
                yield pos
                for _, _, pos in _record_parts(f, pos, size, self.rec_path, read=False,
                                               hint="not a RecordIO file, or corrupt (give its .idx beside it to "
                                                    "skip bad records)"):
                    pass

    def _file(self):
        if self._fh is None or self._pid != os.getpid():
            self._fh = open(self.rec_path, "rb")
            self._pid = os.getpid()
        return self._fh

    def __getstate__(self):
        d = self.__dict__.copy()
        d["_fh"] = None
        d["_pid"] = None
        return d

    def __len__(self) -> int:
        return len(self._offsets)

    def __contains__(self, key: int) -> bool:
        return int(key) in self._offsets

    def read_at(self, offset: int) -> bytes:
        """The payload of the record starting at byte ``offset`` (multi-part records re-joined).

        Every length field is checked against the file size and the next record's offset in the index;
        a record that does not fit raises :class:`CorruptRecordError` (an ``InputError``/``ValueError``)."""
        f = self._file()
        limit = self._extent.get(offset, self.size)
        parts: list[bytes] = []
        for cflag, data, end in _record_parts(f, offset, limit, self.rec_path):
            if cflag in (2, 3):
                parts.append(_MAGIC_BYTES)  # the magic number the writer split the payload at
            parts.append(data)
        if end != limit:  # a shortened length field: the next bytes must start a record
            f.seek(end)
            nxt = f.read(4)
            if len(nxt) == 4 and struct.unpack("<I", nxt)[0] != MAGIC:
                raise CorruptRecordError(f"{self.rec_path}: the record at byte {offset} ends at byte {end}, "
                                         "where no record starts; its length field is corrupt")
        return b"".join(parts)

    def read_raw(self, key: int) -> bytes:
        try:
            off = self._offsets[int(key)]
        except KeyError:
            raise KeyError(f"record key {key} is not in {self.idx_path}") from None
        return self.read_at(off)

    def read(self, key: int) -> tuple[IRHeader, bytes]:
        """``(IRHeader, payload bytes after the header)`` of record ``key``."""
        return unpack_header(self.read_raw(key))

    def __iter__(self) -> Iterator[tuple[int, IRHeader, bytes]]:
        for k in self.keys:
            h, b = self.read(k)
            yield k, h, b

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> "RecordIOReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
