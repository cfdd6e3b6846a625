"""The public API is one level deep and listed once, in the README's "Python API" section (issue 16)."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _api_section() -> str:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"^## Python API\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert m, "README.md has no '## Python API' section"
    return m.group(1)


def _api_names() -> list[str]:
    return sorted(set(re.findall(r"`synthfr\.([A-Za-z_]\w*)", _api_section())))


@pytest.mark.parametrize("name", _api_names())
def test_every_readme_api_name_imports_from_synthfr(name):
    import synthfr

    ns: dict = {}
    exec(f"from synthfr import {name}", ns)  # the spelling the README promises
    assert ns[name] is getattr(synthfr, name) and callable(ns[name])
    assert name in synthfr.__all__ and name in dir(synthfr)


def test_the_readme_lists_the_jobs_and_every_component_kind():
    from synthfr.registry import KINDS

    names = set(_api_names())
    jobs = {"sample_identities", "generate_dataset", "train", "evaluate", "measure_quality", "run_pipeline"}
    assert jobs <= names, sorted(jobs - names)
    for kind in KINDS:  # create_<kind> / list_<kind>s for every registry, and they reach that registry
        assert {f"create_{kind}", f"list_{kind}s"} <= names, kind
        import synthfr

        assert getattr(synthfr, f"list_{kind}s")() == importlib.import_module(KINDS[kind]).REGISTRY.list()


def test_the_readme_names_no_private_module():
    text = README.read_text(encoding="utf-8")
    assert not re.findall(r"synthfr(?:\.\w+)*\._[a-z]\w*", text)
    assert _api_section().count("## ") == 0 and README.read_text().count("## Python API") == 1


def test_create_from_spec_is_the_one_resolver():
    """Spec strings users type resolve through the registry, options typed; built objects pass through."""
    import numpy as np

    import synthfr
    from synthfr.errors import UsageError

    emb = synthfr.create_from_spec("embedder", "test-pattern:dim=64")
    assert emb.dim == 64 and synthfr.create_from_spec("embedder", emb) is emb
    # context is offered only to components that take it (no `except TypeError` fall-backs)
    assert synthfr.create_from_spec("embedder", "test-pattern", offer={"dim": 32, "device": "cpu"}).dim == 32
    gen = synthfr.create_generator("test_pattern:dim=64")
    assert gen.dim == 64 and gen.embedder_spec == "test-pattern" and not gen.needs_weights
    v = np.eye(64, dtype=np.float32)[:2]
    assert (emb.embed(gen.generate(v, [1, 2])) * v).sum(1).min() > 0.9
    assert synthfr.create_embedder("tiny-test").name == "test-tiny"  # the old spelling is an alias
    with pytest.raises(UsageError, match="unknown embedder 'nope:x=1'.*test-pattern"):
        synthfr.create_from_spec("embedder", "nope:x=1")
    with pytest.raises(UsageError, match="onnx:path=MODEL.onnx"):
        synthfr.create_embedder("onnx")
