"""One generic component registry, used once per stage (timm-style ``register``/``create``/``list``).

Every stage package creates exactly one :class:`Registry` in its ``__init__``; each component lives in its
own module inside that package and registers itself with a decorator::

    from synthfr.samplers import SAMPLERS

    @SAMPLERS.register("uniform")
    class UniformSampler: ...

A registry imports every module of its package the first time it is asked for a name, so adding a component
means adding one file. Modules must keep heavy optional imports (diffusers, onnxruntime, faiss) inside the
functions that need them, so that discovery stays cheap and never fails for a missing extra.
"""
from __future__ import annotations

import fnmatch
import importlib
import inspect
import pkgutil
from typing import Any, Callable, Iterable

__all__ = ["Registry", "all_registries", "get_registry", "create_from_spec", "parse_spec", "KINDS", "PROVIDERS"]

#: kind -> module that owns the registry of that kind (the registry object is that module's ``REGISTRY``).
KINDS: dict[str, str] = {
    "embedder": "synthfr.face.embedders",
    "sampler": "synthfr.samplers",
    "variation": "synthfr.variations",
    "generator": "synthfr.generators",
    "backbone": "synthfr.models.backbones",
    "head": "synthfr.models.heads",
    "metric": "synthfr.quality",
}

#: kind -> modules further down the journey that add components of that kind. A trained FR backbone is an
#: embedder (``checkpoint``), but its code lives with the models, which sit above ``face``; naming it here keeps
#: ``face`` from importing ``models`` while ``create_embedder("checkpoint", ...)`` still finds it.
PROVIDERS: dict[str, tuple[str, ...]] = {
    "embedder": ("synthfr.models.embedders",),
}


class Registry:
    """A name -> component table for one kind of component.

    Args:
        kind: singular name of the kind ("sampler"), used in messages and by ``synthfr list``.
        package: dotted name of the package whose modules register into this registry; they are
            imported lazily on first lookup. ``None`` disables discovery.
    """

    def __init__(self, kind: str, package: str | None = None):
        self.kind = kind
        self.package = package
        self._entries: dict[str, Any] = {}
        self._aliases: dict[str, str] = {}
        self._discovered = package is None

    # -- registration -------------------------------------------------------------------------------
    def register(self, name: str | None = None, *, aliases: Iterable[str] = (), overwrite: bool = False
                 ) -> Callable[[Any], Any]:
        """Decorator that registers a class or factory function under ``name`` (default: its ``__name__``)."""

        def deco(obj: Any) -> Any:
            key = name or obj.__name__
            if key in self._entries and not overwrite and self._entries[key] is not obj:
                raise ValueError(f"{self.kind} {key!r} is already registered by {self._entries[key]!r}")
            self._entries[key] = obj
            for a in aliases:
                self._aliases[a] = key
            try:
                obj.registry_name = key
            except (AttributeError, TypeError):  # builtins or slotted objects
                pass
            return obj

        return deco

    # -- lookup -------------------------------------------------------------------------------------
    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        pkg = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(pkg.__path__, prefix=pkg.__name__ + "."):
            if info.name.rsplit(".", 1)[-1].startswith("_"):
                continue
            importlib.import_module(info.name)
        for module in PROVIDERS.get(self.kind, ()):
            importlib.import_module(module)

    def get(self, name: str) -> Any:
        """Return the registered object (class or factory) for ``name``."""
        self._discover()
        key = self._aliases.get(name, name)
        if key not in self._entries:
            close = [n for n in self._entries if name.lower() in n.lower() or n.lower() in name.lower()]
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise KeyError(
                f"unknown {self.kind} {name!r}.{hint} Registered {self.kind}s: {', '.join(sorted(self._entries))}. "
                f"Run `synthfr list {self.kind}` to see them with descriptions."
            )
        return self._entries[key]

    def create(self, name: str, **kwargs: Any) -> Any:
        """Instantiate (or call) the component ``name`` with ``kwargs``."""
        return self.get(name)(**kwargs)

    def list(self, pattern: str = "*") -> list[str]:
        """Sorted registered names matching a shell-style ``pattern``."""
        self._discover()
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def describe(self, name: str) -> str:
        """First line of the component's docstring."""
        doc = inspect.getdoc(self.get(name)) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    def __contains__(self, name: str) -> bool:
        self._discover()
        return name in self._entries or name in self._aliases

    def __iter__(self):
        return iter(self.list())

    def __len__(self) -> int:
        self._discover()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"


def get_registry(kind: str) -> Registry:
    """The registry of one kind ("sampler", "generator", ...)."""
    if kind not in KINDS:
        # accept plurals: `synthfr list samplers`
        if kind.endswith("s") and kind[:-1] in KINDS:
            kind = kind[:-1]
        else:
            raise KeyError(f"unknown component kind {kind!r}; kinds are: {', '.join(KINDS)}")
    module = importlib.import_module(KINDS[kind])
    return module.REGISTRY


def all_registries() -> dict[str, Registry]:
    """Every stage registry, keyed by kind."""
    return {k: get_registry(k) for k in KINDS}


def parse_spec(spec: str | None) -> tuple[str | None, dict[str, Any]]:
    """``"name:key=value,key2=value2"`` -> ``("name", {key: value, ...})`` with YAML-typed values (the one spec
    syntax of generators, variations, embedders and samplers on the command line)."""
    from synthfr.config import parse_assignment

    if spec is None or str(spec).strip() == "":
        return None, {}
    spec = str(spec).strip()
    name, _, rest = spec.partition(":")
    what = f"option in {spec!r} (syntax: NAME[:key=value,...])"
    return name.strip(), dict(parse_assignment(p, what) for p in filter(None, (p.strip() for p in rest.split(","))))


def _accepted(factory: Any, offered: dict[str, Any]) -> dict[str, Any]:
    """The items of ``offered`` that ``factory`` names as parameters (a ``**kwargs`` catch-all does not count:
    it usually forwards to a constructor that may not take them)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    return {k: v for k, v in offered.items() if k in params and params[k].kind is not params[k].VAR_KEYWORD}


def create_from_spec(kind: str, spec: Any, *, offer: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """The one resolver from a spec string to a component: ``create_from_spec("embedder", "onnx:path=m.onnx")``.

    Args:
        kind: component kind ("embedder", "generator", ...; see :data:`KINDS`).
        spec: ``NAME[:key=value,...]`` (``parse_spec``), or a component that is already built (returned as is,
            so every function taking a spec also takes an object).
        offer: context the caller can give (``device``, ``dim``): passed only to components whose factory
            names that parameter, so a caller need not know which components take a device.
        kwargs: options every component of the call must take; they override the spec's options.

    Raises :class:`synthfr.errors.UsageError` (one line, the registered names) for an unknown name.
    """
    if spec is not None and not isinstance(spec, str):
        return spec
    name, opts = parse_spec(spec)
    reg = get_registry(kind)
    if not name or name not in reg:
        from synthfr.errors import UsageError

        raise UsageError(f"unknown {reg.kind} {spec!r}: give NAME[:key=value,...] with a NAME from "
                         f"{', '.join(reg.list())} (`synthfr list {reg.kind}s`)")
    factory = reg.get(name)
    return factory(**{**_accepted(factory, offer or {}), **opts, **kwargs})
