"""Dependencies point down the journey (``../shared/DESIGN.md``, docs/architecture.md).

Every module of ``src/synthfr`` is parsed with :mod:`ast`; every import is checked, also those inside functions
and ``importlib.import_module("synthfr....")`` calls. The rules:

1. **Layers.** Each top-level package sits on one layer of :data:`LAYERS` (the journey, bottom first). A module
   imports its own package and packages of lower layers only; packages that share a layer never import each
   other (``quality`` and ``evaluation`` are siblings), except inside the foundation.
2. **Named rules of DESIGN.md** that the layers alone do not imply (:data:`FORBIDDEN`).
3. **No private module of another package** (``synthfr.samplers._api`` is for ``synthfr.samplers`` only), and
   no private name (``_helper``) of another stage.
4. **Test stand-ins are components, not imports**: production code never imports a ``testing`` module; it
   reaches ``test-*`` components through the registry like any other.
5. **The library never imports the package root** (``from synthfr import x`` reaches everything, the app too).
6. **Heavy optional extras are imported only where used** (inside functions, never at module level).
"""
from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: The journey, bottom first: (layer name, top-level packages/modules of ``synthfr`` on it).
LAYERS: list[tuple[str, set[str]]] = [
    ("foundation", {"errors", "utils", "config", "registry", "weights"}),
    ("formats", {"spaces", "data", "galleries"}),      # vector spaces, dataset/benchmark file formats
    ("verification maths", {"verification"}),         # pair scores -> accuracy, ROC, EER (quality, training, eval)
    ("face", {"face"}),                                # detect, align, embedders
    ("sampling", {"samplers"}),
    ("variation", {"variations"}),
    ("generator network", {"genmodel"}),
    ("generators", {"generators"}),
    ("generation", {"generation"}),                    # the sharded, resumable loop and its dataset folder
    ("models", {"models"}),                            # backbones, margin heads, partial FC
    ("measuring", {"evaluation", "quality"}),          # siblings: neither imports the other
    ("training", {"training"}),
    ("report", {"report"}),
    # the package root ("", synthfr/__init__.py: the public API one level deep) and the app over it; `generate`
    # is the old name of `generation`, kept for scripts (the library imports `generation`)
    ("public API and app", {"", "api", "generate", "app", "pipeline", "demo", "commands", "cli"}),
]
#: Layers whose packages may import one another: the small foundation, and the public face over the library.
OPEN_LAYERS = {"foundation", "public API and app"}

#: (importer package, imported package or third-party module, why): DESIGN.md's rules beyond the layers.
FORBIDDEN: list[tuple[str, str, str]] = [
    ("models", "data", "models never import data"),
    ("samplers", "generators", "samplers never import generators"),
    ("variations", "generators", "variations never import generators (a variation is handed its generator)"),
    ("quality", "generators", "quality never imports generators"),
    ("samplers", "diffusers", "samplers never import diffusers"),
    ("variations", "diffusers", "variations never import diffusers"),
    ("quality", "diffusers", "quality never imports diffusers"),
]



def _extras() -> set[str]:
    """Import names of the optional extras (pyproject ``[project.optional-dependencies]``, minus what the core
    dependencies install anyway): imported inside the functions that use them, never at module level."""
    import tomllib

    project = tomllib.loads((SRC.parent / "pyproject.toml").read_text())["project"]

    def names(reqs: list[str]) -> set[str]:
        return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].split("-")[0].lower() for r in reqs}

    extra = set().union(*(names(v) for k, v in project.get("optional-dependencies", {}).items() if k != "dev"))
    return extra - names(project.get("dependencies", []))


EXTRAS = _extras()

_LAZY_TARGET = re.compile(r"^synthfr(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")  # "module:attribute" of a lazy table


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, root: Path) -> list[tuple[str, int, bool]]:
    """``(imported dotted name, line, at module level)`` for every import in ``path``; ``from a import b``
    yields ``a``, and ``a.b`` too when ``b`` is a module."""
    mod = _module_name(path, root)
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    top = {id(n) for n in tree.body}
    top |= {id(c) for n in tree.body if isinstance(n, (ast.If, ast.Try)) for c in ast.walk(n)}
    out: list[tuple[str, int, bool]] = []
    for node in ast.walk(tree):
        level = id(node) in top
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno, level) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                base_name = ".".join(base + ([node.module] if node.module else []))
            else:
                base_name = node.module or ""
            out.append((base_name, node.lineno, level))
            out += [(f"{base_name}.{a.name}", node.lineno, level) for a in node.names  # `from pkg import _mod`
                    if _is_module(f"{base_name}.{a.name}", root) or _private(a.name)]  # and private names
        elif isinstance(node, ast.Call):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
            if name == "import_module" and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                out.append((node.args[0].value, node.lineno, False))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _LAZY_TARGET.match(node.value):
            out.append((node.value.split(":")[0], node.lineno, False))
    return out


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _is_module(dotted: str, root: Path) -> bool:
    p = root.joinpath(*dotted.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def _top(dotted: str, root: Path) -> str | None:
    """``synthfr.face.align`` -> ``face``; ``synthfr`` or a name of the root (``synthfr.train``) -> ``""``;
    not synthfr -> None."""
    parts = dotted.split(".")
    if parts[0] != "synthfr":
        return None
    return parts[1] if len(parts) > 1 and _is_module(".".join(parts[:2]), root) else ""


def check(root: Path = SRC) -> list[str]:
    """Every violation of the rules in the tree ``root`` (holding ``synthfr/``), one line each."""
    layer_of = {pkg: i for i, (_, pkgs) in enumerate(LAYERS) for pkg in pkgs}
    problems: list[str] = []
    for path in sorted((root / "synthfr").rglob("*.py")):
        mod = _module_name(path, root)
        here = _top(mod, root)
        where = path.relative_to(root).as_posix()
        if here not in layer_of:
            problems.append(f"{where}: package {here!r} has no layer; add it to LAYERS in tests/test_layering.py")
            continue
        is_testing = "testing" in mod.split(".")
        seen: set[tuple[str, int]] = set()
        for target, line, module_level in _imports(path, root):
            if (target, line) in seen:
                continue
            seen.add((target, line))
            at = f"{where}:{line} imports {target}"
            first = target.split(".")[0]
            if first in EXTRAS and module_level:
                problems.append(f"{at} at module level: an optional extra is imported inside the function using it")
            for src, dst, why in FORBIDDEN:
                if here == src and (_top(target, root) == dst or first == dst):
                    problems.append(f"{at}: {why}")
            there = _top(target, root)
            if there is None:
                continue
            # 5. the root reaches everything; only the public API and the app may use it
            if there == "":
                if LAYERS[layer_of[here]][0] not in OPEN_LAYERS or layer_of[here] == 0:
                    problems.append(f"{at}: the library never imports the package root (it reaches the app); "
                                    "import the module that defines the name")
                continue
            # 4. test stand-ins are reached through the registry
            if "testing" in target.split(".") and not is_testing and _is_module(
                    target[: target.index("testing") + len("testing")], root):
                problems.append(f"{at}: production code never imports a test module; create the test-* "
                                "component through its registry")
            # 3. private modules of another package (and private names of another stage)
            parts = target.split(".")
            for i, part in enumerate(parts[1:], start=1):
                if _private(part) and _is_module(".".join(parts[: i + 1]), root):
                    owner = ".".join(parts[:i])
                    if not (mod == owner or mod.startswith(owner + ".")):
                        problems.append(f"{at}: {'.'.join(parts[: i + 1])} is private to {owner}; import what "
                                        f"{owner} exports (or make the module public)")
                    break
            else:
                if _private(parts[-1]) and there != here:
                    problems.append(f"{at}: {parts[-1]} is private to synthfr.{there}; import what it exports "
                                    "(or make the name public)")
            # 1. layers
            if there == here or there not in layer_of:
                if there not in layer_of:
                    problems.append(f"{at}: package {there!r} has no layer in LAYERS")
                continue
            a, b = layer_of[here], layer_of[there]
            if b > a or (b == a and LAYERS[a][0] not in OPEN_LAYERS):
                problems.append(f"{at}: {here or 'synthfr'} (layer {LAYERS[a][0]!r}) may not import "
                                f"{there or 'synthfr'} (layer {LAYERS[b][0]!r}); dependencies point down the journey")
    return list(dict.fromkeys(problems))


def test_the_package_follows_the_layering_rules():
    problems = check()
    assert not problems, "\n".join(problems)


# --- the checker itself: it must FAIL when a forbidden import is added -------------------------------------
def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in {"synthfr/__init__.py": "", **files}.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
        for parent in p.relative_to(tmp_path).parents:
            init = tmp_path / parent / "__init__.py"
            if parent.parts and not init.exists():
                init.write_text("")
    return tmp_path


@pytest.mark.parametrize("files, expect", [
    # an import inside a function, up the journey (models -> training)
    ({"synthfr/models/heads.py": "def f():\n    from synthfr.training import loop\n",
      "synthfr/training/loop.py": ""}, "layer 'training'"),
    # a relative import up the journey (data -> face)
    ({"synthfr/data/bench.py": "from ..face import align\n", "synthfr/face/align.py": ""}, "layer 'face'"),
    # importlib with a string literal (variations -> generators)
    ({"synthfr/variations/attrop.py": "import importlib\nG = importlib.import_module('synthfr.generators.base')\n",
      "synthfr/generators/base.py": ""}, "variations never import generators"),
    # siblings on one layer (quality -> evaluation)
    ({"synthfr/quality/m.py": "import synthfr.evaluation.verification\n",
      "synthfr/evaluation/verification.py": ""}, "dependencies point down the journey"),
    # a private module of another package
    ({"synthfr/report/s.py": "from synthfr.samplers._geometry import pair_stats\n",
      "synthfr/samplers/_geometry.py": ""}, "private to synthfr.samplers"),
    ({"synthfr/report/s.py": "from synthfr.samplers import _geometry\n",
      "synthfr/samplers/_geometry.py": ""}, "private to synthfr.samplers"),
    ({"synthfr/report/s.py": "def f():\n    from synthfr.samplers.geometry import _pairs\n",
      "synthfr/samplers/geometry.py": ""}, "_pairs is private to synthfr.samplers"),
    # a test fixture imported by production code
    ({"synthfr/generate.py": "def f():\n    from synthfr.generators.testing import PatternDecoder\n",
      "synthfr/generators/testing.py": ""}, "never imports a test module"),
    # the library importing the app, and the root
    ({"synthfr/training/loop.py": "def f():\n    from synthfr.pipeline import run_pipeline\n",
      "synthfr/pipeline.py": ""}, "layer 'public API and app'"),
    ({"synthfr/face/x.py": "def f():\n    from synthfr import create_embedder\n"}, "never imports the package root"),
    # the root's lazy table naming a private module
    ({"synthfr/__init__.py": "_LAZY = {'sample_identities': 'synthfr.samplers._api:sample_identities'}\n",
      "synthfr/samplers/_api.py": ""}, "private to synthfr.samplers"),
    # an optional extra at module level
    ({"synthfr/generators/a2f.py": "import diffusers\n"}, "optional extra"),
    # a new package nobody placed
    ({"synthfr/newstage/x.py": ""}, "has no layer"),
])
def test_the_checker_fails_when_a_forbidden_import_is_added(tmp_path, files, expect):
    problems = check(_tree(tmp_path, files))
    assert any(expect in p for p in problems), problems


def test_the_checker_passes_allowed_imports(tmp_path):
    files = {
        "synthfr/training/loop.py": "from synthfr.models import heads\nfrom synthfr.evaluation import v\n"
                                    "def f():\n    import onnxruntime\n",
        "synthfr/models/heads.py": "from synthfr.face.embedders import REGISTRY\n",
        "synthfr/evaluation/v.py": "", "synthfr/face/embedders/__init__.py": "",
        "synthfr/samplers/hyperface/_dense.py": "from synthfr.samplers._geometry import pair_stats\n",
        "synthfr/samplers/paper.py": "from synthfr.samplers.hyperface import _nearest\n",
        "synthfr/samplers/_geometry.py": "from synthfr.utils import io\n",
        "synthfr/utils/io.py": "from synthfr.config import dump_yaml\n", "synthfr/config.py": "from synthfr.utils import io\n",
        "synthfr/generators/testing.py": "from synthfr.face.embedders.testing import GRID\n",
        "synthfr/face/embedders/testing.py": "",
        "synthfr/cli.py": "from synthfr import __version__\nfrom synthfr.pipeline import run_pipeline\n",
        "synthfr/pipeline.py": "",
    }
    assert check(_tree(tmp_path, files)) == []


def test_the_default_generator_is_a_real_one():
    """GenerateConfig's default renders faces: a test stand-in is never a default."""
    from synthfr.generation import GenerateConfig
    from synthfr.generators import REGISTRY

    name = GenerateConfig().generator.split(":")[0]
    assert name in REGISTRY and not name.startswith("test")
    assert REGISTRY.get(name).needs_weights is False  # the built-in one: its weights ship with the package
