"""insightface RecordIO read/write without mxnet, checked against the format description byte by byte."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from synthfr.data.insightface_rec import InsightFaceRecWriter, read_insightface_rec
from synthfr.data.recordio import MAGIC, RecordIOReader, RecordIOWriter, pack_header, unpack_header


def _hand_record(payload: bytes) -> bytes:
    """One whole record (cflag 0) from the format description: magic, lrecord, data, pad to 4 bytes."""
    out = struct.pack("<I", 0xCED7230A) + struct.pack("<I", (0 << 29) | len(payload)) + payload
    return out + b"\x00" * ((4 - len(payload) % 4) % 4)


def _hand_irheader(flag: int, label: float, id_: int, id2: int) -> bytes:
    # IfQQ: uint32 flag, float32 label, uint64 id, uint64 id2 -> 24 bytes, little endian
    return (flag).to_bytes(4, "little") + struct.pack("<f", label) + id_.to_bytes(8, "little") \
        + id2.to_bytes(8, "little")


def test_reads_rec_built_by_hand(tmp_path):
    img_a = b"\xff\xd8fake-jpeg-a\xff\xd9"          # 15 bytes -> padded
    img_b = b"\xff\xd8jpeg-b!\xff\xd9"               # 11 bytes
    # record 0: insightface header with flag=2 and label [3, 5] as float32 after the header
    rec0 = _hand_irheader(2, 0.0, 0, 0) + struct.pack("<2f", 3.0, 5.0)
    rec1 = _hand_irheader(0, 0.0, 1, 0) + img_a      # image of class 0
    rec2 = _hand_irheader(0, 1.0, 2, 0) + img_b      # image of class 1
    rec3 = _hand_irheader(2, 0.0, 3, 0) + struct.pack("<2f", 1.0, 2.0)
    rec4 = _hand_irheader(2, 0.0, 4, 0) + struct.pack("<2f", 2.0, 3.0)
    blob, idx = b"", ""
    for k, r in enumerate([rec0, rec1, rec2, rec3, rec4]):
        idx += f"{k}\t{len(blob)}\n"
        blob += _hand_record(r)
    (tmp_path / "t.rec").write_bytes(blob)
    (tmp_path / "t.idx").write_text(idx)

    reader, keys, ranges = read_insightface_rec(tmp_path / "t.rec")
    assert keys == [1, 2] and ranges == [(1, 2), (2, 3)]
    h, b = reader.read(1)
    assert (h.flag, h.label, h.id, h.id2) == (0, 0.0, 1, 0) and b == img_a
    h, b = reader.read(2)
    assert h.label == 1.0 and b == img_b
    h0, rest = reader.read(0)
    assert h0.flag == 2 and list(h0.label) == [3.0, 5.0] and rest == b""

    # our writer produces exactly the same bytes
    with InsightFaceRecWriter(tmp_path / "w.rec") as w:
        w.add(img_a, 0)
        w.add(img_b, 1)
    assert (tmp_path / "w.rec").read_bytes() == blob
    assert (tmp_path / "w.idx").read_text() == idx


def test_magic_inside_payload_is_split_and_rejoined(tmp_path):
    m = struct.pack("<I", MAGIC)
    payloads = [
        b"abcd" + m + b"efgh" + m + b"xyz",   # aligned occurrences -> multi-part record
        m + b"12",                           # at offset 0
        b"a" + m + b"bcd",                   # unaligned: stays in one part
        b"",
        bytes(range(256)) * 3,
    ]
    with RecordIOWriter(tmp_path / "m.rec") as w:
        for i, p in enumerate(payloads):
            assert w.write_raw(p) == i
    raw = (tmp_path / "m.rec").read_bytes()
    # first record: part1 (cflag 1) 'abcd', part2 (cflag 2) 'efgh', part3 (cflag 3) 'xyz' + pad
    assert raw[:4] == m and struct.unpack("<I", raw[4:8])[0] == (1 << 29) | 4 and raw[8:12] == b"abcd"
    assert struct.unpack("<I", raw[16:20])[0] == (2 << 29) | 4
    assert struct.unpack("<I", raw[28:32])[0] == (3 << 29) | 3
    r = RecordIOReader(tmp_path / "m.rec")
    assert len(r) == len(payloads)
    for i, p in enumerate(payloads):
        assert r.read_raw(i) == p
    # without the .idx the file is scanned
    (tmp_path / "m.idx").unlink()
    r2 = RecordIOReader(tmp_path / "m.rec")
    assert [r2.read_raw(k) for k in r2.keys] == payloads


def test_header_pack_unpack_matches_mxnet_layout():
    b = pack_header(3.0, id=7, id2=9)
    assert len(b) == 24 and b == struct.pack("<IfQQ", 0, 3.0, 7, 9)
    h, rest = unpack_header(b + b"img")
    assert h.flag == 0 and h.label == 3.0 and h.id == 7 and rest == b"img"
    b = pack_header([1.0, 2.0, 0.25], id=1)
    assert b[:4] == (3).to_bytes(4, "little") and struct.unpack("<f", b[4:8])[0] == 0.0
    h, rest = unpack_header(b + b"x")
    np.testing.assert_array_equal(h.label, np.float32([1, 2, 0.25]))
    assert rest == b"x"


def test_insightface_writer_classes_must_be_contiguous(tmp_path):
    w = InsightFaceRecWriter(tmp_path / "c.rec")
    w.add(b"a", 0)
    w.add(b"b", 1)
    with pytest.raises(ValueError, match="contiguous"):
        w.add(b"c", 0)
    w.close()
    reader, keys, ranges = read_insightface_rec(tmp_path / "c.rec")
    assert keys == [1, 2] and ranges == [(1, 2), (2, 3)]



def test_overwrite_rewrites_a_placeholder_in_place_and_refuses_another_size(tmp_path):
    with RecordIOWriter(tmp_path / "o.rec") as w:
        pos = w.tell()
        w.write(0.0, b"abcd")
        w.write(1.0, b"efgh")
        w.overwrite(pos, pack_header(7.0, 0, 0) + b"wxyz")
        for wrong in (b"wxyz" * 3, b""):  # longer would run into the next record; shorter would leave a gap
            with pytest.raises(ValueError, match="same"):
                w.overwrite(pos, pack_header(7.0, 0, 0) + wrong)
        w.write(2.0, b"ijkl")
    r = RecordIOReader(tmp_path / "o.rec")
    assert [(h.label, img) for _, h, img in r] == [(7.0, b"wxyz"), (1.0, b"efgh"), (2.0, b"ijkl")]

def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("soft", [False, True])
def test_convert_folder_rec_folder_is_byte_identical(tmp_path, soft):
    from synthfr.app.cli import main
    from synthfr.data.imagefolder import open_dataset
    from synthfr.training.toy import make_toy_dataset

    src = make_toy_dataset(tmp_path / "src", classes=3, per_class=3, size=32, soft_every=2 if soft else 0)
    assert main(["convert", str(src), str(tmp_path / "t.rec"), "--quiet"]) == 0
    assert main(["convert", str(tmp_path / "t.rec"), str(tmp_path / "back"), "--quiet"]) == 0
    assert _tree(src) == _tree(tmp_path / "back")
    # the .rec trains with the same labels (and soft labels) as the folder
    a, b = open_dataset(src), open_dataset(tmp_path / "t.rec")
    assert (a.num_classes, len(a)) == (b.num_classes, len(b)) == (3, 9)
    np.testing.assert_array_equal(a.labels_a, b.labels_a)
    np.testing.assert_array_equal(a.labels_b, b.labels_b)
    np.testing.assert_allclose(a.weights_a, b.weights_a)
    np.testing.assert_array_equal(a.image(4), b.image(4))
    assert a.has_soft_labels == soft


def test_rec_without_lst_unpacks_by_class(tmp_path):
    with InsightFaceRecWriter(tmp_path / "d.rec") as w:
        w.add(b"\xff\xd8\xffA", 0)
        w.add(b"\x89PNG\r\n\x1a\nB", 1)
    from synthfr.data.rec_convert import rec_to_folder

    res = rec_to_folder(tmp_path / "d.rec", tmp_path / "out", progress=False)
    assert res == {"images": 2, "classes": 2, "folder": str(tmp_path / "out")}
    assert (tmp_path / "out" / "000000" / "00000001.jpg").read_bytes() == b"\xff\xd8\xffA"
    assert (tmp_path / "out" / "000001" / "00000002.png").read_bytes() == b"\x89PNG\r\n\x1a\nB"


def test_packed_synthfr_dataset_folder_trains_from_its_rec(tmp_path):
    """A dataset folder holding manifest.jsonl + train.rec (images removed) opens as the .rec, soft labels kept."""
    import json

    from synthfr.data.imagefolder import open_dataset
    from synthfr.training.toy import make_toy_dataset

    d = make_toy_dataset(tmp_path / "ds", classes=3, per_class=2, size=32, soft_every=2)
    folder = open_dataset(d)
    rows = [json.loads(line) for line in (d / "manifest.jsonl").read_text().splitlines()]
    with InsightFaceRecWriter(d / "train.rec", num_classes=3) as w:
        for r in rows:
            soft = r.get("soft_label")
            w.add((d / r["path"]).read_bytes(), r["label"] if soft is None else [float(r["label"]), *soft])
    import shutil

    for c in ("id0000", "id0001", "id0002"):
        shutil.rmtree(d / c)
    packed = open_dataset(d)
    assert packed.kind == "rec" and folder.kind == "folder"
    np.testing.assert_array_equal(packed.labels_a, folder.labels_a)
    np.testing.assert_array_equal(packed.labels_b, folder.labels_b)
    np.testing.assert_allclose(packed.weights_a, folder.weights_a)
