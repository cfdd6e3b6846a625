"""Generated datasets are byte-identical to those of the code before the issue-16 redesign.

Each scenario runs a small ``generate_dataset`` (fixed seed, one writer thread, one torch thread) and compares
SHA-256 digests of the folder's parts with digests recorded from main at b63e77d (before any refactor of the
generation loop). A refactor that changes one pixel, one manifest field or one config key fails here and
names the part. ``config.yaml`` is compared without ``versions`` (package versions change with installs).
Scenarios cover the paths a refactor can break: the standardised space travelling with the identities,
variations (σ-mixture, mixup, β-noise, AttrOP), the identity filter with regenerations, sampler specs,
shards + merge, the rec export and the built-in ``synthfr-v2`` network.

When a change is *meant* to change the bytes, print the new digests with
``python tests/test_generate_digest.py`` and say why in the commit that updates them.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from synthfr import generate_dataset


def _gallery(path: Path, n: int = 40, d: int = 128, seed: int = 3) -> Path:
    """Unit vectors around a common mean, like dlib's descriptor (so the fitted space centres them)."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n, d)).astype(np.float32) * 0.3 + rng.standard_normal(d).astype(np.float32)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    np.save(path, g)
    return path


def _identities(tmp: Path, n: int, d: int = 128) -> Path:
    """Identities from a sampler with a gallery: IDS.npy plus its embedding space (IDS.space.json/.npz)."""
    from synthfr.samplers import sample_identities

    out = tmp / f"ids{n}x{d}.npy"
    gallery = tmp / f"gal{d}.npy"
    if not gallery.is_file():
        _gallery(gallery, d=d)
    sample_identities("uniform", n, dim=d, gallery=str(gallery), seed=5, out=out)
    return out


def digests(root: str | Path) -> dict[str, str]:
    """part -> SHA-256: images (path + bytes), manifest, identities (+ space), config (minus versions), rec."""
    root = Path(root)
    parts: dict[str, hashlib._Hash] = {}

    def add(part: str, name: str, data: bytes) -> None:
        h = parts.setdefault(part, hashlib.sha256())
        h.update(name.encode() + b"\0" + len(data).to_bytes(8, "little") + data)

    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if not p.is_file() or rel.startswith("logs/") or rel == "README.md":
            continue
        if rel.startswith("images/"):
            add("images", rel, p.read_bytes())
        elif rel == "manifest.jsonl":
            add("manifest", rel, p.read_bytes())
        elif rel.startswith("identities.") or rel.startswith("sampled/"):
            add("identities", rel, p.read_bytes())
        elif rel == "config.yaml":
            doc = yaml.safe_load(p.read_text())
            doc.pop("versions", None)
            add("config", rel, json.dumps(doc, sort_keys=True).encode())
        elif rel.startswith("train."):
            add("rec", rel, p.read_bytes())
        else:
            add("other", rel, p.read_bytes())
    return {k: h.hexdigest() for k, h in sorted(parts.items())}


#: the built-in network with its style-noise scale pinned (1, the recorded default before session 13), so the
#: pixels stay comparable with the AVX-512 records whatever default the shipped config.json names
V2 = "synthfr-v2:z_scale=1"


def _run(**kw) -> dict:
    base = dict(seed=11, fsync=False, device="cpu", workers=1, batch_size=4)
    base.update(kw)
    return generate_dataset(base, progress=False, log=lambda m: None)


def scenario(name: str, tmp: Path) -> Path:
    """Build scenario ``name`` under ``tmp``; returns the dataset folder. Runs inside ``tmp`` with relative
    paths, as the same command in the same folder would: config.yaml and the space record name the files
    they were given, so an absolute temporary path would change the bytes from run to run."""
    import os

    tmp = Path(tmp).resolve()
    here = os.getcwd()
    os.chdir(tmp)
    try:
        _scenario(name, Path("."))
    finally:
        os.chdir(here)
    return tmp / name


def _scenario(name: str, tmp: Path) -> None:
    if name == "pattern-sigma-filter":  # std space, σ-mixture, identity filter with regenerations
        ids = _identities(tmp, 5, 32)
        _run(identities=str(ids), generator="test_flaky:bad_fraction=0.3", images_per_id=3,
             variation="vec2face-sigma", filter_min_sim=0.5, embedder="test-pattern", max_attempts=3,
             out=str(tmp / name))
    elif name == "pattern-mixup-rec":  # soft labels, png files inside a rec export
        ids = _identities(tmp, 4, 32)
        _run(identities=str(ids), generator="test_pattern", images_per_id=2, variation="mixup",
             image_format="png", format="rec", out=str(tmp / name))
    elif name == "pattern-spec-shards-merge":  # sampler spec in OUT/sampled/, two shards merged
        from synthfr.generation import merge_shards

        for i in range(2):
            _run(identities="uniform:n=5,dim=24", generator="test_pattern", images_per_id=2,
                 variation="hyperface-noise:beta=0.05", shard=f"{i}/2", out=str(tmp / f"s{i}"))
        merge_shards([tmp / "s0", tmp / "s1"], tmp / name, log=lambda m: None)
    elif name == "v2-noise":  # the built-in network, β-noise in the standardised space
        ids = _identities(tmp, 3, 128)
        _run(identities=str(ids), generator=V2, images_per_id=2, variation="hyperface-noise:beta=0.02",
             out=str(tmp / name))
    elif name == "v2-attrop":  # AttrOP steers the vectors of the network that renders them
        ids = _identities(tmp, 2, 128)
        _run(identities=str(ids), generator=V2, images_per_id=2,
             variation="attrop:targets=1:yaw=30,steps=2,batch_size=4", out=str(tmp / name))
    else:
        raise KeyError(name)


#: Digests recorded from main at b63e77d (before the redesign) with ``python tests/test_generate_digest.py``;
#: the two ``v2-*`` scenarios re-recorded whenever new synthfr-v2 weights shipped (session 5: step 3,080 + pose
#: calibration; session 7: step 7,394; session 8: step 10,903; session 9: run v2d step 4,046; session 10: v2d
#: step 5,648 with `calibrate=all` the default, which changed the generator's options too; session 12: run v2f
#: step 5,634 with `id_gain` 1.5): the weights (and
#: the weights' digest in the config) changed, not the generation code (the pattern scenarios, unchanged, pin
#: the code).
#: Float results (manifest cosines, the network's pixels) differ in the last bits between the AVX-512 and AVX2
#: kernels of torch, oneDNN and numpy, so those parts are recorded per CPU kind as torch dispatches it
#: (``torch.backends.cpu.get_cpu_capability()``; ``AVX512``: the machines of sessions 1-12, ``AVX2``: session 13's
#: AMD EPYC without AVX-512) in ``BY_CPU``; the parts that came out the same on both kinds are recorded once in
#: ``SHARED``. A CPU kind without a record skips, naming how to record it. Since session 13 (``z_scale`` 2.5
#: recorded in the shipped config.json, which the manifest's ``weights_sha256`` and the config hash) the AVX-512
#: records of the ``v2-*`` scenarios keep their images and identities only: the other parts can be recorded only on
#: such a CPU.
#: the parts recorded identical on every CPU kind
SHARED: dict[str, dict[str, str]] = {
    'pattern-sigma-filter': {
        "config": "41af6240f3791c8f0361066cda7b75838c99764e13b2f60d1ec26182d5fcdd94",
        "identities": "b285543076e938cb07c7e300bc10e535ad420f602a0026c91c0994ea13619d6a",
        "images": "b1b893b693949a512d11e7da884d86d54ad9a8d4dd92897f60fb4e7e7e6463fc",
    },
    'pattern-mixup-rec': {
        "config": "bfb8b8afb484b740d6b4196f8fc947760c4128069cb4675edba34f301b688bc4",
        "identities": "d263a9e70f54935f4951d4b8b1428965b1d308fab3785475ae23ef4c06a81f60",
        "manifest": "e253baa437a7c276defb121eb878b8016dc6381974181f08dc17304e9c86ee6c",
        "rec": "1c1d1244d159ab3a9ce3f08dbedd5becb848a3fa5f8793d500cb6fd7f6d5be2e",
    },
    'pattern-spec-shards-merge': {
        "config": "3eceb7314d441a83ab17fb810cc17966a92c95eed1d68ed0cf85e4b60a485f45",
        "identities": "a8036b4b2dca0a1eacb001bbc32c763404bcfbd0cf5ffabd8266ff83082ef5c6",
        "images": "ec957999b1c9ca09b90903f2ad6c8ed1558c8901be20d28f2ca4d8e8f49de007",
        "manifest": "1db811ea7c2a03823b2353982842bd9827107fd1a071b62ff9b99b89d863e3ca",
    },
}
#: the parts whose float last bits follow the CPU's kernels, by CPU kind
BY_CPU: dict[str, dict[str, dict[str, str]]] = {
    'AVX512': {
        'pattern-sigma-filter': {
            "manifest": "fee46e435ed0e94aae5925a914704642bef19803636ded4f617235fad758b459",
        },
        'v2-noise': {
            "identities": "9d45ef065d230df2f3b8b0e26fd8e49b86f9566401608a643398a302fe9df37b",
            "images": "ae304378c2593ba8c78c204c88eaf1d83c3281f44d564a419b7342ab60cec6d1",
        },
        'v2-attrop': {
            "identities": "36057d0879eea8810dcb584c404be6452e582b8d56ffbba7fa47cd0596e6925f",
            "images": "ec1ceb89c1176286d38a8555d7a6793eea56dae99a69f9956f8a4f42af71f554",
        },
    },
    'AVX2': {
        'pattern-sigma-filter': {
            "manifest": "e2d1ef2170b528a589dfcfd35bb96d71c13bef24655f6220b2a08168c01588ef",
        },
        'v2-noise': {
            "config": "bf2ba07ce1aa242d80b653b56a1524e5b0a915099bdbd857b825b24342ae52b9",
            "identities": "cf0a1a25af699bfa18f1efed5751d744ac979f06a14c635813c0c6bf4166d799",
            "images": "41d76492e0b9a07a5a3d1c2df8ea45068c78dd3b097978b31682c1c530ed77e4",
            "manifest": "982aa6d12edc1daeabb1a8fead9f7c1a3ec86717f6b005143f2bc7573862e4fb",
        },
        'v2-attrop': {
            "config": "d9adc1c7603aeffb602a16e6143fa1239adc7704bb2490ca3fb6758528d06315",
            "identities": "55ea51104dcc954dcd0f95a9a9542bfc18354ab4d4bb7c5be20477cd122625d4",
            "images": "c761e71f059cbe01c30bc9ae7421b54af2520ba8d0c5e230fda02e96784a6922",
            "manifest": "8ee0a87484720a9464f79f9d307ed4de08c26046f18b2786cbc844e4d63399cb",
        },
    },
}


@pytest.fixture
def one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


SCENARIOS = ["pattern-sigma-filter", "pattern-mixup-rec", "pattern-spec-shards-merge", "v2-noise", "v2-attrop"]


def cpu_kind() -> str:
    import torch

    return torch.backends.cpu.get_cpu_capability()


def expected(kind: str, name: str) -> dict[str, str] | None:
    """The recorded digests of scenario ``name`` on a ``kind`` CPU (None: that kind has no record of it)."""
    if kind not in BY_CPU:
        return None
    return {**SHARED.get(name, {}), **BY_CPU[kind].get(name, {})} or None


def test_every_record_names_known_scenarios_and_parts():
    parts = {"config", "identities", "images", "manifest", "rec", "other"}
    for table in (SHARED, *BY_CPU.values()):
        assert set(table) <= set(SCENARIOS)
        assert all(set(p) <= parts for p in table.values())
    for kind, table in BY_CPU.items():  # a shared part is never recorded again for one kind
        assert all(not set(p) & set(SHARED.get(n, {})) for n, p in table.items()), kind


@pytest.mark.parametrize("name", SCENARIOS)
def test_dataset_bytes_match_the_recorded_digests(name, tmp_path, one_thread):
    want = expected(cpu_kind(), name)
    if want is None:
        pytest.skip(f"no digests of scenario {name} recorded for {cpu_kind()} CPUs (recorded: "
                    f"{', '.join(k for k in BY_CPU if expected(k, name))}); print them with "
                    "`python tests/test_generate_digest.py` and add them to BY_CPU (SHARED: parts equal on all)")
    got = digests(scenario(name, tmp_path))
    diff = [part for part in sorted(want) if got.get(part) != want[part]]  # a record may leave parts out (below)
    assert not diff, f"scenario {name}: {', '.join(diff)} changed ({got})"


if __name__ == "__main__":  # print the digests of this checkout (to record them)
    import tempfile
    import time

    import torch

    torch.set_num_threads(1)
    print(f"    {cpu_kind()!r}: {{")
    for n in SCENARIOS:
        with tempfile.TemporaryDirectory() as d:
            t = time.time()
            got = digests(scenario(n, Path(d)))
            print(f"    {n!r}: {json.dumps(got, indent=8)[:-1]}    }},  # {time.time() - t:.1f} s")
