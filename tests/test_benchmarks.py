"""Benchmark readers: the restricted .bin unpickler (hostile files refused, legit flavours load) and pairs.txt."""
from __future__ import annotations

import io
import os
import pickle
import struct
import subprocess

import numpy as np
import pytest

from synthfr.data.benchmarks import UnsafePickleError, load_bin, load_bin_raw, parse_pairs, write_bin
from synthfr.evaluation.benchmarks import load_benchmark, load_pairs_folder


def _jpeg(seed, size=112, fmt="JPEG"):
    from PIL import Image

    rng = np.random.default_rng(seed)
    img = np.kron(rng.integers(0, 256, (8, 8, 3)), np.ones((size // 8, size // 8, 1))).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------------------------
# hostile files
# ---------------------------------------------------------------------------------------------------------------
class _Reduce:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _hostile_payloads(marker):
    cmd = f"touch {marker}"
    code = f"open({str(marker)!r}, 'w').write('pwned')"
    return {
        "os.system": _Reduce(os.system, (cmd,)),
        "builtins.eval": _Reduce(eval, (code,)),
        "builtins.exec": _Reduce(exec, (code,)),
        "subprocess.call": _Reduce(subprocess.call, (["touch", str(marker)],)),
        "subprocess.Popen": _Reduce(subprocess.Popen, (["touch", str(marker)],)),
        "builtins.__import__": _Reduce(__import__, ("os",)),
    }


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "builtins.exec", "subprocess.call",
                                  "subprocess.Popen", "builtins.__import__"])
def test_hostile_bin_is_refused_without_running(tmp_path, name, protocol):
    marker = tmp_path / "PWNED"
    payload = _hostile_payloads(marker)[name]
    # hide the payload inside an otherwise valid-looking benchmark
    obj = ([_jpeg(0), payload], [True])
    path = tmp_path / "evil.bin"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    with pytest.raises(UnsafePickleError) as exc:
        load_bin(path)
    msg = str(exc.value)
    assert str(path) in msg and "refusing" in msg
    mod, fn = pickle.whichmodule(payload.fn, payload.fn.__name__), payload.fn.__name__
    assert f"{mod}.{fn}" in msg or fn in msg
    assert not marker.exists()
    # and the very same file really is dangerous with a plain pickle.load (proves the test bites)
    if name == "builtins.eval":
        pickle.loads(path.read_bytes())
        assert marker.exists()


def test_hostile_handcrafted_opcodes_refused(tmp_path):
    marker = tmp_path / "PWNED"
    evil = [
        # protocol 0 GLOBAL + REDUCE
        f"cos\nsystem\n(S'touch {marker}'\ntR.".encode(),
        # protocol 0 INST
        f"(S'touch {marker}'\nios\nsystem\n.".encode(),
        # OBJ opcode with a class from builtins
        b"\x80\x02(cbuiltins\nlist\no.",
        # STACK_GLOBAL
        b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R.",
        # a global dressed up as numpy
        b"\x80\x02cnumpy\nload\n.",
        b"\x80\x02cnumpy\nfromfile\n.",
        # persistent id
        b"\x80\x02X\x01\x00\x00\x00xQ.",
        # extension code
        b"\x80\x02\x82\x01.",
    ]
    for k, data in enumerate(evil):
        p = tmp_path / f"e{k}.bin"
        p.write_bytes(data)
        with pytest.raises(ValueError):
            load_bin_raw(p)
    assert not marker.exists()


def test_numpy_object_and_structured_dtypes_refused(tmp_path):
    arr = np.array([b"x", 1], dtype=object)
    p = tmp_path / "obj.bin"
    p.write_bytes(pickle.dumps(([arr, arr], [True]), protocol=2))
    with pytest.raises(UnsafePickleError, match="not admitted"):
        load_bin(p)
    st = np.zeros(2, dtype=[("a", "u1"), ("b", "u1")])
    p.write_bytes(pickle.dumps(([st, st], [True]), protocol=3))
    with pytest.raises(UnsafePickleError):
        load_bin(p)


def test_wrong_structure_is_a_clear_error(tmp_path):
    p = tmp_path / "x.bin"
    for obj, match in [({"a": 1}, "dict"), (([b"a"], [True]), "two images per pair"), ((1, 2, 3), "pair"),
                       (([1, 2], [True]), "expected encoded image bytes")]:
        p.write_bytes(pickle.dumps(obj))
        with pytest.raises(ValueError, match=match):
            load_bin(p)
    p.write_bytes(b"garbage, not a pickle")
    with pytest.raises(ValueError, match="not a readable insightface .bin"):
        load_bin(p)
    with pytest.raises(FileNotFoundError):
        load_bin(tmp_path / "missing.bin")


# ---------------------------------------------------------------------------------------------------------------
# legit files
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("flavour", ["bytes", "numpy", "numpy-column", "bytearray"])
def test_legit_bin_round_trips(tmp_path, protocol, flavour):
    raw = [_jpeg(i) for i in range(6)] + [_jpeg(9, fmt="PNG"), _jpeg(0)]  # a PNG and a duplicate
    issame = [True, False, True, False]
    if flavour == "bytes":
        images = raw
    elif flavour == "numpy":
        images = [np.frombuffer(b, np.uint8).copy() for b in raw]
    elif flavour == "numpy-column":  # like insightface's small_lfw.bin: shape (n, 1)
        images = [np.frombuffer(b, np.uint8).copy().reshape(-1, 1) for b in raw]
    else:
        images = [bytearray(b) for b in raw]
    path = tmp_path / "legit.bin"
    with open(path, "wb") as f:
        pickle.dump((images, issame), f, protocol=protocol)
    got, same = load_bin_raw(path)
    assert got == raw and same.tolist() == issame
    b = load_bin(path, folds=2)
    assert b.name == "legit" and b.num_pairs == 4 and b.num_images == 7
    assert b.folds.tolist() == [0, 0, 1, 1]
    imgs = b.images()
    assert imgs.shape == (7, 112, 112, 3) and imgs.dtype == np.uint8
    # pair k is images 2k, 2k+1 of the file
    from PIL import Image

    ref = np.asarray(Image.open(io.BytesIO(raw[7])).convert("RGB"))
    assert np.array_equal(imgs[b.pairs[3, 1]], ref)
    assert b.pairs[0, 0] == b.pairs[3, 1]  # duplicate image stored once
    assert [i for _, x in b.iter_batches(3) for i in range(len(x))] and sum(len(x) for _, x in b.iter_batches(3)) == 7


def test_legit_numpy_bool_issame_and_python2_strings(tmp_path):
    raw = [_jpeg(1), _jpeg(2)]
    p = tmp_path / "np_issame.bin"
    p.write_bytes(pickle.dumps((raw, np.array([True])), protocol=2))
    assert load_bin_raw(p)[1].tolist() == [True]
    for proto in (2, 3, 5):  # a list of numpy scalars
        p.write_bytes(pickle.dumps((raw + raw, [np.True_, np.bool_(False)]), protocol=proto))
        assert load_bin_raw(p)[1].tolist() == [True, False]
    # a Python 2 pickle: str images as BINSTRING, bools as NEWTRUE/NEWFALSE
    body = b"\x80\x02]("  # PROTO 2, EMPTY_LIST, MARK
    for r in raw:
        body += b"T" + struct.pack("<i", len(r)) + r  # BINSTRING (a Python 2 str)
    body += b"e]\x89a\x86."  # APPENDS, EMPTY_LIST, NEWFALSE, APPEND, TUPLE2, STOP
    p2 = tmp_path / "py2.bin"
    p2.write_bytes(body)
    got, same = load_bin_raw(p2)
    assert got == raw and same.tolist() == [False]


def test_non_112_images_are_resized(tmp_path):
    p = write_bin(tmp_path / "big.bin", [_jpeg(1, size=128), _jpeg(2, size=128)], [True])
    assert load_bin(p).images().shape == (2, 112, 112, 3)


def test_insightface_small_lfw_loads():
    from conftest import shared_file

    path = shared_file("insightface", "small_lfw.bin")
    b = load_bin(path)
    assert b.name == "small_lfw" and b.num_pairs == 10 and len(b.slots) == 20
    imgs = b.images()
    assert imgs.shape == (b.num_images, 112, 112, 3) and imgs.std() > 10


def test_lfw_bin_structure():
    from conftest import shared_file

    path = shared_file("lfw", "lfw.bin")
    b = load_bin(path)
    assert b.num_pairs == 6000 and int(b.issame.sum()) == 3000
    assert np.bincount(b.folds).tolist() == [600] * 10
    # LFW order: each fold is 300 matched then 300 mismatched pairs
    assert all(b.issame[600 * k: 600 * k + 300].all() and not b.issame[600 * k + 300: 600 * (k + 1)].any()
               for k in range(10))


# ---------------------------------------------------------------------------------------------------------------
# pairs.txt folders
# ---------------------------------------------------------------------------------------------------------------
def _make_lfw_folder(root, size=112):
    from PIL import Image

    names = {"Ann_A": 3, "Bo_B": 2, "Cy_C": 1, "Di_D": 2}
    rng = np.random.default_rng(0)
    for n, k in names.items():
        (root / n).mkdir(parents=True, exist_ok=True)
        for i in range(1, k + 1):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / n / f"{n}_{i:04d}.jpg")
    (root / "pairs.txt").write_text(
        "2\t2\n"
        "Ann_A\t1\t2\n"
        "Bo_B 1 2\n"
        "Ann_A\t3\tCy_C\t1\n"
        "Bo_B\t2\tDi_D\t1\n"
        "Ann_A\t2\t3\n"
        "Di_D\t1\t2\n"
        "Cy_C\t1\tDi_D\t2\n"
        "Ann_A\t1\tBo_B\t1\n"
    )
    return root


def test_parse_pairs_and_folder_benchmark(tmp_path):
    root = _make_lfw_folder(tmp_path / "mini")
    pf = parse_pairs(root / "pairs.txt")
    assert pf.issame.tolist() == [True, True, False, False] * 2
    assert pf.folds.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert pf.pairs[2] == ("Ann_A", 3, "Cy_C", 1) and pf.pairs[1] == ("Bo_B", 1, "Bo_B", 2)
    b = load_benchmark(root)
    assert b.name == "mini" and b.num_pairs == 8 and b.num_images == 8
    assert b.sources[b.pairs[2, 1]].name == "Cy_C_0001.jpg"
    assert b.images().shape == (8, 112, 112, 3)
    assert load_benchmark(root / "pairs.txt").num_pairs == 8


def test_pairs_errors(tmp_path):
    root = _make_lfw_folder(tmp_path / "mini")
    bad = tmp_path / "bad.txt"
    bad.write_text("2 2\nAnn_A 1 2\n")
    with pytest.raises(ValueError, match="header says"):
        parse_pairs(bad)
    bad.write_text("1 1\nAnn_A 1 Bo_B 1\nAnn_A 1 Bo_B 1\n")
    with pytest.raises(ValueError, match="matched pair was expected"):
        parse_pairs(bad)
    bad.write_text("1 1\nAnn_A 1 2\nAnn_A x Bo_B 1\n")
    with pytest.raises(ValueError, match="bad.txt:3"):
        parse_pairs(bad)
    (root / "Cy_C" / "Cy_C_0001.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="Cy_C_0001"):
        load_pairs_folder(root)


def test_folder_alignment_hook(tmp_path, monkeypatch):
    import synthfr.face.load as B

    root = _make_lfw_folder(tmp_path / "raw", size=150)
    with pytest.raises(ValueError, match="not an aligned 112"):
        load_pairs_folder(root, align="never").images([0])
    calls = []

    def fake_align(img):
        calls.append(img.shape)
        return (img[19:131, 19:131].copy(), None) if len(calls) % 2 else (None, "no face detected")

    monkeypatch.setattr(B, "detect_align", fake_align)
    b = load_pairs_folder(root)
    imgs = b.images()
    assert imgs.shape == (8, 112, 112, 3) and len(calls) == 8
    assert len(b.align_failures) == 4 and b.align_failures[0]["reason"] == "no face detected"


def test_single_set_pairs_file_gets_balanced_folds(tmp_path):
    lines = ["20"] + [f"P{i} 1 2" for i in range(20)] + [f"P{i} 1 Q{i} 1" for i in range(20)]
    p = tmp_path / "pairsDevTest.txt"
    p.write_text("\n".join(lines) + "\n")
    pf = parse_pairs(p)
    assert pf.folds.tolist() == [k for k in range(10) for _ in range(2)] * 2
    for k in range(10):
        assert pf.issame[pf.folds == k].tolist() == [True, True, False, False]
