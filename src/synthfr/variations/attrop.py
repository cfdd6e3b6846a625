"""AttrOP (Vec2Face's attribute operation), bounded: steer condition vectors towards a head pose / quality.

For every image with a target, the condition vector ``c`` (starting at the identity vector ``x``) takes at
most ``steps`` normalised gradient steps of length ``step_size`` on

    loss = ((yaw(G(c, s)) − yaw*) / 10°)² + ((pitch − pitch*) / 10°)² + relu(q* − q)
           + id_weight · relu(1 − cos(E(G(c, s)), x) − 0.8·id_bound)

where ``G`` is a differentiable generator (``synthfr-small`` by default), ``s`` the image's seed, ``yaw``/
``pitch`` the differentiable pose estimator of :mod:`synthfr.face.pose`, ``E`` the generator's embedder
(``dlib-torch``) and ``q`` the quality proxy: the norm of dlib's raw descriptor before normalisation
(``--quality`` targets are in those units; it is a proxy, not a trained quality head). An image *meets* its
target when ``|yaw − yaw*| ≤ tol_deg`` (and pitch, quality likewise) **and** ``1 − cos(E(G(c, s)), x) ≤
id_bound``. It stops as soon as it does; otherwise the vector with the smallest violation seen is kept. No
image ever takes more than ``steps`` steps (Vec2Face's loop can run forever); each image's ``params`` record
the target, the estimates, the identity cosine, the steps taken and ``met``.

Targets per identity: ``targets="20:yaw=60,10:yaw=85"`` (groups separated by ``,`` or ``;`` — use ``;`` inside a
``--variation`` spec) gives images 0–19 yaw ±60°, 20–29 yaw ±85° (signs alternate with the image index when
``mirror_yaw``), the rest the start vector. Keys: ``yaw``, ``pitch`` (degrees) and ``quality``.
``images="20-49"`` chooses which image indices of every identity the groups fill, in order (ranges joined by
``+``), so Vec2Face's extreme-pose set — 30 of an identity's 50 images replaced by pose-steered ones — is
``--images-per-id 50 --variation attrop:generator=vec2face,weights=W,start=vec2face-sigma,images=20-49,
targets=30:yaw=60``: images 0–19 keep their σ-mixture vectors, 20–49 are steered from theirs.
``start``: the vector every image starts from — ``identity`` (the identity vector) or a registered variation
(``vec2face-sigma``: the σ-mixture, as the official pose script starts from σ-perturbed vectors), applied with
its default options in the generator's space.

Embedder of the identity term: ``embedder`` (default: the generator's own, e.g. ``dlib-torch`` for
``synthfr-small``, ``arcface-r100-glint360k`` for ``vec2face``, whose weights sit in the Vec2Face folder and are
taken from ``weights`` unless ``embedder_weights`` is given).

Seeds: the optimisation is for the seed the image is generated with. Callers that know the generation seeds
pass them (``apply_to(..., image_seeds=...)``); otherwise AttrOP uses ``derive_seed(seed, "attrop-image", i, k)``
and records it as ``params["image_seed"]`` — generate the image with that seed to get the optimised pose.
AttrOP works in the generator's own embedding space (``synthfr generate`` hands it the identity vectors in that
space even when the identity file carries a standardisation, and renders its vectors unchanged); with
``space=FILE`` (an embedding-space file), for direct API use, it maps standardised inputs there and its outputs
back.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from synthfr.utils.seeds import derive_seed
from synthfr.variations import REGISTRY
from synthfr.variations._attrop_config import AttrOPConfig, parse_indices, parse_targets
from synthfr.variations._base import Variation, VariationResult

__all__ = ["AttrOP", "AttrOPConfig", "parse_targets"]


@REGISTRY.register("attrop")
class AttrOP(Variation):
    """Vec2Face AttrOP, bounded: ≤ N gradient steps per image towards a target yaw/pitch/quality, identity kept."""

    Config = AttrOPConfig
    #: `synthfr generate` hands AttrOP the identity vectors in the generator's own space (not standardised) and
    #: renders its vectors as they are, so the image written is the image optimised
    generator_space = True

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.groups = parse_targets(self.config.targets)
        self.steered = parse_indices(self.config.images)
        if self.steered is not None and len(self.steered) < sum(n for n, _ in self.groups):
            raise ValueError(f"AttrOP: images={self.config.images!r} names {len(self.steered)} indices but targets="
                             f"{self.config.targets!r} steer {sum(n for n, _ in self.groups)}; make them agree")
        self._components: tuple[Any, Any, Any] | None = None
        self._shared_generator: Any = None

    def share_generator(self, generator: Any, spec: str, weights: str | None) -> bool:
        """Steer the dataset's own generator (``synthfr generate`` passes the one it renders with, built from
        ``spec``/``weights``) when it is the one configured here (same spec, weights and device), instead of
        loading a second copy. A bare name here (the default ``synthfr-v2``) also matches that generator with
        options (``synthfr-v2:z_scale=1``): the vectors must be steered through the network and options that
        render them, or ``params["met"]`` describes another image. Returns whether it is used."""
        from synthfr.utils.device import resolve_device

        mine = self.config.generator
        named = mine == spec or (":" not in mine and mine == spec.partition(":")[0])
        same = (named and self.config.weights == weights
                and str(resolve_device(self.config.device)) == str(getattr(generator, "device", None)))
        if same and self._components is None and getattr(generator, "differentiable", False):
            self._shared_generator = generator
            return True
        return False

    @classmethod
    def with_components(cls, generator: Any, pose: Any, embedder: Any, **kwargs: Any) -> "AttrOP":
        """An AttrOP using given objects (a differentiable generator, a pose net, a differentiable embedder)."""
        from synthfr.face.embedders import refuse_judge

        refuse_judge(embedder, "AttrOP")  # the judge (sface) never steers a condition vector
        obj = cls(**kwargs)
        obj._components = (generator, pose, embedder)
        return obj

    # -- components ----------------------------------------------------------------------------------------
    def components(self) -> tuple[Any, Any, Any]:
        if self._components is None:
            from synthfr.face.pose import load_pose_estimator
            from synthfr.registry import create_from_spec

            # the loop's own generator when it handed one in (share_generator); else the one named by spec, built
            # through the registry: a variation never imports a generator backend
            gen = self._shared_generator
            if gen is None:
                kw = {"weights": self.config.weights} if self.config.weights else {}
                gen = create_from_spec("generator", self.config.generator, device=self.config.device, **kw)
            if not getattr(gen, "differentiable", False):
                raise ValueError(f"AttrOP needs a differentiable generator; {self.config.generator!r} is not")
            pose = load_pose_estimator(self.config.pose_weights, device=self.config.device)
            emb = self._embedder(gen)
            self._components = (gen, pose, emb)
        return self._components

    def _embedder(self, gen: Any, create_embedder: Any = None) -> Any:
        """The identity term's differentiable embedder: ``embedder`` if set, else the one the generator declares
        for its weights (Vec2Face: the ArcFace released in its weights folder)."""
        from synthfr.face.embedders import REGISTRY as EMBEDDERS, refuse_judge
        from synthfr.registry import create_from_spec, parse_spec

        cfg = self.config
        spec = cfg.embedder or getattr(gen, "embedder_spec", None) or getattr(gen, "embedder", None)
        name = parse_spec(spec)[0]
        if name:
            refuse_judge(name, "AttrOP")  # the judge (sface) never steers a condition vector
        if not name or name not in EMBEDDERS:
            raise ValueError(f"AttrOP: generator {cfg.generator!r} declares embedder {name!r}, which is not registered "
                             f"(`synthfr list embedders`: {', '.join(EMBEDDERS.list())}); pass embedder=NAME")
        kw = {"weights": cfg.embedder_weights} if cfg.embedder_weights else {}
        emb = create_from_spec("embedder", spec, offer={"device": cfg.device}, **kw)
        if not getattr(emb, "differentiable", False):
            raise ValueError(f"AttrOP needs a differentiable embedder; {name!r} is not (pass embedder=NAME)")
        return emb

    def target_of(self, k: int) -> dict[str, float] | None:
        """The target of image index ``k`` (None: untouched), with the yaw sign applied."""
        if self.steered is not None:
            if k not in self.steered:
                return None
            pos = self.steered.index(k)
        else:
            pos = k
        start = 0
        for n, kv in self.groups:
            if start <= pos < start + n:
                t = dict(kv)
                if "yaw" in t and self.config.mirror_yaw and k % 2 == 1:
                    t["yaw"] = -t["yaw"]
                return t
            start += n
        return None

    # -- the variation ---------------------------------------------------------------------------------------
    def apply_to(self, identity_vectors: np.ndarray, identity_indices: Sequence[int], images_per_id: int,
                 seed: int = 0, image_seeds: np.ndarray | None = None) -> VariationResult:
        """Conditions for identities ``identity_indices``; ``image_seeds`` (len×K) are the generation seeds."""
        x = np.asarray(identity_vectors, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"identity vectors must be an N×D array, got shape {x.shape}")
        space = None
        if self.config.space:
            from synthfr.spaces import EmbeddingSpace

            space = EmbeddingSpace.load(self.config.space)
            x = space.from_standard(x)
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        gdim = getattr(self.components()[0], "dim", None)
        if gdim is not None and x.shape[1] != gdim:
            raise ValueError(f"AttrOP steers generator {self.config.generator!r}, which takes {gdim}-D vectors in "
                             f"its embedder's space; got {x.shape[1]}-D identity vectors (sample identities in "
                             "that space, or pass space=FILE for standardised vectors)")
        ids = np.asarray(identity_indices, dtype=np.int64).reshape(-1)
        k = int(images_per_id)
        if k < 1:
            raise ValueError(f"images per identity must be ≥ 1, got {k}")
        if image_seeds is not None:
            image_seeds = np.asarray(image_seeds, dtype=np.int64).reshape(len(ids), k)
        m = len(ids) * k
        cond = np.repeat(x[ids], k, axis=0).astype(np.float32)
        params: list[dict[str, Any]] = [{} for _ in range(m)]
        if self.config.start != "identity":
            from synthfr.variations import create_variation

            if self.config.start == self.registry_name:
                raise ValueError("AttrOP: start must be 'identity' or another variation, not attrop itself")
            res = create_variation(self.config.start).apply_to(x, ids, k, derive_seed(seed, "attrop-start"))
            cond = np.asarray(res.conditions, dtype=np.float32).copy()
            params = [{"start": self.config.start, **{f"start_{a}": b for a, b in (p or {}).items()}}
                      for p in res.params]
        jobs: list[tuple[int, int, int, dict[str, float]]] = []  # (row, identity, seed, target)
        for r in range(m):
            i, kk = int(ids[r // k]), r % k
            t = self.target_of(kk)
            s = int(image_seeds[r // k, kk]) if image_seeds is not None else derive_seed(seed, "attrop-image", i, kk)
            params[r]["image_seed"] = s
            if t is not None:
                jobs.append((r, i, s, t))
        bs = max(1, int(self.config.batch_size))
        for j in range(0, len(jobs), bs):
            chunk = jobs[j:j + bs]
            # always optimise exactly `bs` images (padding with copies of the first): every network then sees
            # the same batch shape, so an image's result does not depend on which others share its chunk
            pad = chunk + [chunk[0]] * (bs - len(chunk))
            vecs, recs = self.optimise(np.stack([x[i] for _, i, _, _ in pad]), [s for _, _, s, _ in pad],
                                       [t for _, _, _, t in pad], start=np.stack([cond[r] for r, _, _, _ in pad]))
            for (r, _, _, _), v, rec in zip(chunk, vecs, recs):
                cond[r] = v
                params[r].update(rec)
        if space is not None:
            cond = space.to_standard(cond)
        return VariationResult(conditions=cond, identity=np.repeat(ids, k), index=np.tile(np.arange(k), len(ids)),
                               params=params, soft_label=[None] * m, variation=self.registry_name)

    def apply(self, identity_vectors: np.ndarray, images_per_id: int, seed: int = 0,
              rows: Sequence[int] | None = None, image_seeds: np.ndarray | None = None) -> VariationResult:
        """Pipeline entry point: only the identities ``rows`` (all when None) are optimised.

        ``image_seeds`` (len(rows)×K) should be the seeds the generation loop will use for those images."""
        rows = np.arange(len(identity_vectors)) if rows is None else np.asarray(rows, dtype=np.int64)
        return self.apply_to(identity_vectors, rows, images_per_id, seed, image_seeds=image_seeds)

    def optimise(self, identity: np.ndarray, seeds: Sequence[int], targets: Sequence[dict[str, float]],
                 start: np.ndarray | None = None) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Bounded AttrOP on a batch: returns the chosen vectors and one record per image. ``start`` (default the
        identity vectors) is where each image's vector starts; the identity term is always to ``identity``."""
        import torch
        import torch.nn.functional as F

        gen, pose, emb = self.components()
        cfg = self.config
        dev = torch.device(cfg.device)
        xi = torch.as_tensor(identity, dtype=torch.float32, device=dev)
        b = xi.shape[0]
        nan = float("nan")

        def col(key: str) -> tuple[torch.Tensor, torch.Tensor]:
            v = torch.tensor([t.get(key, nan) for t in targets], dtype=torch.float32, device=dev)
            return torch.nan_to_num(v), ~torch.isnan(v)

        ty, hy = col("yaw")
        tp, hp = col("pitch")
        tq, hq = col("quality")
        c = xi.clone() if start is None else F.normalize(torch.as_tensor(start, dtype=torch.float32, device=dev), dim=1)
        best = c.clone()
        best_score = torch.full((b,), float("inf"), device=dev)
        best_rec: list[dict[str, Any]] = [{} for _ in range(b)]
        done = torch.zeros(b, dtype=torch.bool, device=dev)
        steps = torch.zeros(b, dtype=torch.long, device=dev)
        seeds = list(seeds)
        eot = max(0, int(cfg.pose_eot))
        # one stream of EOT transforms per image seed: an image's result never depends on its batch-mates
        rngs = [np.random.default_rng(derive_seed(int(s), "attrop-eot")) for s in seeds]
        for t in range(cfg.steps + 1):
            cv = c.detach().requires_grad_(True)
            img = gen.generate_tensor(cv, seeds)
            ang = pose(img) if eot == 0 else self._pose_eot(pose, img, rngs, eot)
            desc = emb.descriptors(img) if hasattr(emb, "descriptors") else emb(img)
            e = F.normalize(desc, dim=1)
            q = desc.norm(dim=1)
            idd = 1 - (e * xi).sum(1)
            ey = (ang[:, 0] - ty).abs()
            ep = (ang[:, 1] - tp).abs()
            eq = F.relu(tq - q)
            ok_attr = (~hy | (ey <= cfg.tol_deg)) & (~hp | (ep <= cfg.tol_deg)) & (~hq | (eq <= 0))
            met = ok_attr & (idd <= cfg.id_bound)
            violation = (torch.where(hy, F.relu(ey - cfg.tol_deg), 0) + torch.where(hp, F.relu(ep - cfg.tol_deg), 0)
                         + torch.where(hq, eq, 0) + 100 * F.relu(idd - cfg.id_bound))
            with torch.no_grad():
                improve = (~done) & (violation.detach() < best_score)
                for j in torch.nonzero(improve).flatten().tolist():
                    best[j] = c[j]
                    best_score[j] = violation[j].detach()
                    best_rec[j] = {"yaw": round(float(ang[j, 0]), 3), "pitch": round(float(ang[j, 1]), 3),
                                   "quality": round(float(q[j]), 4), "id_cos": round(float(1 - idd[j]), 5),
                                   "steps": int(steps[j]), "met": bool(met[j])}
                newly = (~done) & met
                done |= newly
            if bool(done.all()) or t == cfg.steps:
                break
            loss = (torch.where(hy, ((ang[:, 0] - ty) / 10) ** 2, 0) + torch.where(hp, ((ang[:, 1] - tp) / 10) ** 2, 0)
                    + torch.where(hq, eq, 0) + cfg.id_weight * F.relu(idd - 0.8 * cfg.id_bound))
            (g,) = torch.autograd.grad(loss.sum(), cv)
            with torch.no_grad():
                g = g - (g * c).sum(1, keepdim=True) * c  # tangent to the sphere
                stepv = -cfg.step_size * F.normalize(g, dim=1)
                move = (~done)[:, None]
                c = torch.where(move, F.normalize(c + stepv, dim=1), c)
                steps += (~done).long()
        recs = []
        for j in range(b):
            r = dict(best_rec[j])
            r["target"] = dict(targets[j])
            r["steps_taken"] = int(steps[j])
            r["step_bound"] = int(cfg.steps)
            recs.append(r)
        return best.detach().cpu().numpy().astype(np.float32), recs

    def _pose_eot(self, pose: Any, img: Any, rngs: Sequence[np.random.Generator], n: int) -> Any:
        """Pose estimates averaged over ``n`` random affine copies of each image (differentiable)."""
        import torch
        import torch.nn.functional as F

        cfg = self.config
        b = img.shape[0]
        u = np.stack([r.uniform(-1.0, 1.0, size=(n, 4)) for r in rngs]).reshape(b * n, 4)
        ang = np.deg2rad(cfg.eot_rotate * u[:, 0])
        zoom = 1.0 + cfg.eot_scale * u[:, 1]
        theta = np.zeros((b * n, 2, 3), np.float32)
        theta[:, 0, 0] = np.cos(ang) / zoom
        theta[:, 0, 1] = -np.sin(ang) / zoom
        theta[:, 1, 0] = np.sin(ang) / zoom
        theta[:, 1, 1] = np.cos(ang) / zoom
        theta[:, :, 2] = cfg.eot_shift * u[:, 2:]
        rep = img.repeat_interleave(n, dim=0)
        grid = F.affine_grid(torch.from_numpy(theta).to(img.device), list(rep.shape), align_corners=False)
        warped = F.grid_sample(rep, grid, padding_mode="border", align_corners=False)
        return pose(warped).view(b, n, -1).mean(dim=1)

    def _image(self, x, i, k, rng):  # pragma: no cover - apply_to is overridden
        raise NotImplementedError
