"""The scheduler: rows of the plan -> generator batches -> checks -> image files and manifest fragments.

Rows are planned in chunks (:class:`~.plan.ImagePlan`), their images cut into generator batches, checked
(:class:`~.checks.ImageChecks`), encoded by a thread pool into ``OUT/.tmp/<row>/``; a single committer thread
renames a finished row into ``images/`` and writes its fragment ``parts/<row>.jsonl``, so the main thread
keeps generating. Images that fail a check are queued again with the next attempt's seed.

Batches. A ``batch_invariant`` generator makes the same pixels for an image in any batch, so batches are
filled across rows (and with regenerations). Any other generator (real networks: kernels differ with the
batch size) gets batches cut from one identity at a time, the same way in every run, so its outputs stay
byte-identical whatever the settings that are not recorded.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthfr.generation.checks import ImageChecks, Verdict
from synthfr.generation.plan import ImagePlan, RowPlan, image_seed

__all__ = ["Scheduler", "Progress"]


@dataclass
class Kept:
    """The attempt of one image that is written."""

    seed: int
    attempt: int
    verdict: Verdict | None = None
    """None when no check ran."""
    passed: bool | None = None


@dataclass
class Failed:
    """The best failing attempt of one image so far (kept when the attempts run out)."""

    score: float
    image: np.ndarray
    seed: int
    attempt: int
    verdict: Verdict


@dataclass
class RowState:
    """One identity row while its images are rendered."""

    row: int
    plan: RowPlan | None
    """Conditions, seeds, labels (dropped once the row is written)."""
    remaining: int
    next_k: int = 0
    """Next image index whose first attempt is still to be scheduled."""
    kept: dict[int, Kept] = field(default_factory=dict)
    dropped: dict[int, int] = field(default_factory=dict)
    """Image index -> attempts dropped by the checks."""
    best: dict[int, Failed] = field(default_factory=dict)
    futures: list[Future] = field(default_factory=list)
    retry: deque["Job"] = field(default_factory=deque)
    """Regenerations waiting (non-invariant generators: rendered with this row's batches)."""


@dataclass
class Job:
    """One render: image ``k`` of a row, attempt ``attempt``."""

    state: RowState
    k: int
    attempt: int = 0
    global_seed: int = 0
    """The run's seed (later attempts derive theirs from it)."""

    @property
    def seed(self) -> int:
        """The render seed: the plan's for the first attempt, ``image_seed(S, row, k, attempt)`` after."""
        st = self.state
        if self.attempt == 0:
            return st.plan.seeds[self.k]
        return image_seed(self.global_seed, st.row, self.k, self.attempt)


class Progress:
    """A tqdm bar of images (or nothing)."""

    def __init__(self, total: int, enabled: bool, desc: str):
        self.bar = None
        if enabled and total > 0:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="img", desc=desc, dynamic_ncols=True, smoothing=0.05)

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Scheduler:
    """Renders the rows given to :meth:`run`; ``stats`` counts images, drops and failures."""

    def __init__(self, plan: ImagePlan, generator: Any, checks: ImageChecks, writer: Any, *, seed: int,
                 batch_size: int, max_attempts: int, workers: int, ext: str, jpeg_quality: int, fsync: bool,
                 n_rows: int, generator_name: str):
        self.plan, self.generator, self.checks, self.writer = plan, generator, checks, writer
        self.seed, self.K = int(seed), plan.k
        self.bs, self.max_attempts = max(1, int(batch_size)), int(max_attempts)
        self.workers, self.ext, self.quality, self.fsync = max(1, int(workers)), ext, jpeg_quality, fsync
        self.n_rows = n_rows
        self.gname = getattr(generator, "name", generator_name)
        self.wsha = getattr(generator, "weights_sha256", None)
        self.invariant = bool(getattr(generator, "batch_invariant", False))
        K, bs = self.K, self.bs
        # rows planned per variation call: a few batches' worth (a variation pays a fixed cost per call)
        self.chunk_rows = max(1, -(-4 * bs // K)) if plan.variation is None else max(256, -(-4 * bs // K))
        self.stats = {"images": 0, "dropped": 0, "failed": 0, "generated": 0, "dropped_similarity": 0,
                      "dropped_alignment": 0}

    # -- one row finished ---------------------------------------------------------------------------------
    def _commit(self, st: RowState) -> None:
        from synthfr.data.manifest import make_record, write_part

        for f in st.futures:
            f.result()
        self.writer.commit(st.row)
        recs, p = [], st.plan
        for k in range(self.K):
            kept, params = st.kept[k], p.params[k]
            v = kept.verdict or Verdict()
            if "image_seed" in params and int(params["image_seed"]) != int(kept.seed):
                # the filter re-rendered this image with another seed: the optimiser's estimates (AttrOP's
                # `met`, yaw, ...) describe the image it optimised, which is not the one written
                params = {**params, "met": None, "optimised_image_replaced": True}
            sim = v.similarity
            recs.append(make_record(
                identity=st.row, index=k, path=self.writer.rel_path(st.row, k, self.ext), seed=kept.seed,
                attempt=kept.attempt, variation=self.plan.name, params=params, label=p.labels[k],
                soft_label=p.soft[k], similarity=None if sim is None or not np.isfinite(sim) else round(float(sim), 6),
                align_error=v.align_error, passed=kept.passed, dropped=st.dropped.get(k, 0), generator=self.gname,
                weights_sha256=self.wsha))
        write_part(self.writer.out, st.row, recs, self.n_rows, fsync=self.fsync)
        st.plan = st.futures = None  # free memory

    def _accept(self, st: RowState, k: int, img: np.ndarray, kept: Kept) -> None:
        from synthfr.data.writers import write_image_file

        path = self.writer.tmp_dir(st.row) / f"{k}.{self.ext}"
        st.futures.append(self.pool.submit(write_image_file, path, img, self.ext, self.quality, self.fsync))
        st.kept[k] = kept
        st.remaining -= 1
        self.stats["images"] += 1
        if st.remaining == 0:
            self.commits.append(self.committer.submit(self._commit, st))

    def _drain(self, block_over: int) -> None:
        while self.commits and (self.commits[0].done() or len(self.commits) > block_over):
            self.commits.popleft().result()  # re-raises a writer error here

    # -- a failed check -------------------------------------------------------------------------------------
    def _reject(self, job: Job, img: np.ndarray, seed: int, v: Verdict) -> None:
        st, k, a, stats = job.state, job.k, job.attempt, self.stats
        stats["dropped"] += 1
        stats["dropped_similarity"] += int(v.fail_sim)
        stats["dropped_alignment"] += int(v.fail_align)
        st.dropped[k] = st.dropped.get(k, 0) + 1
        prev = st.best.get(k)
        if prev is None or v.score > prev.score:
            st.best[k] = Failed(v.score, img.copy(), seed, a, v)
        if a + 1 < self.max_attempts:
            (self.retry if self.invariant else st.retry).append(Job(st, k, a + 1, self.seed))
            return
        best = st.best.pop(k)  # out of attempts: keep the best one, marked as failing
        st.dropped[k] -= 1  # the kept attempt is not a drop
        stats["dropped"] -= 1
        stats["dropped_similarity"] -= int(best.verdict.fail_sim)
        stats["dropped_alignment"] -= int(best.verdict.fail_align)
        stats["failed"] += 1
        self._accept(st, k, best.image, Kept(best.seed, best.attempt, best.verdict, False))

    # -- batches ----------------------------------------------------------------------------------------------
    def _next_batch(self) -> list[Job]:
        K, bs, inv = self.K, self.bs, self.invariant
        active, batch = self.active, []
        while len(batch) < bs:
            if not inv and batch:
                break  # one identity per generator call, cut the same way in every run
            if inv and self.retry:
                batch.append(self.retry.popleft())
                continue
            if active and active[0].next_k < K:
                st = active[0]
                take = min(K - st.next_k, bs - len(batch))
                batch.extend(Job(st, kk, 0, self.seed) for kk in range(st.next_k, st.next_k + take))
                st.next_k += take
                continue
            if active and not inv and active[0].retry:
                st = active[0]
                while st.retry and len(batch) < bs:
                    batch.append(st.retry.popleft())
                continue
            if active and (inv or not active[0].retry):
                active.popleft()
                continue
            if not self.row_queue:
                break
            q = self.row_queue
            for rp in self.plan.rows(np.array([q.popleft() for _ in range(min(self.chunk_rows, len(q)))])):
                self.writer.begin(rp.row)
                active.append(RowState(rp.row, rp, K))
        return batch

    def run(self, rows: list[int], bar: Progress) -> dict[str, int]:
        """Render every image of ``rows``; returns the counts."""
        self.row_queue: deque[int] = deque(rows)
        self.active: deque[RowState] = deque()  # rows whose new images are being scheduled, in order
        self.retry: deque[Job] = deque()
        self.pool = ThreadPoolExecutor(max_workers=self.workers)
        # rows with every image accepted: one committer thread waits for their files, renames the folder and
        # writes the fragment (bounded backlog)
        self.committer = ThreadPoolExecutor(max_workers=1)
        self.commits: deque[Future] = deque()
        shown, stats = 0, self.stats
        try:
            while True:
                batch = self._next_batch()
                if not batch:
                    break
                conds = np.stack([j.state.plan.conditions[j.k] for j in batch])
                seeds = np.array([j.seed for j in batch], dtype=np.int64)
                imgs = self.generator.generate(conds, seeds)
                stats["generated"] += len(batch)
                verdicts = self.checks(imgs, [j.state.row for j in batch]) if self.checks.active else None
                for i, job in enumerate(batch):
                    if verdicts is None:
                        self._accept(job.state, job.k, imgs[i], Kept(int(seeds[i]), job.attempt))
                    elif verdicts[i].passed:
                        self._accept(job.state, job.k, imgs[i], Kept(int(seeds[i]), job.attempt, verdicts[i], True))
                    else:
                        self._reject(job, imgs[i], int(seeds[i]), verdicts[i])
                for job in batch:
                    if job.k in job.state.kept:
                        job.state.best.pop(job.k, None)
                bar.update(stats["images"] - shown)
                shown = stats["images"]
                self._drain(block_over=max(8, 4 * self.bs // self.K))
            self._drain(block_over=-1)
        finally:
            self.committer.shutdown(wait=True)
            self.pool.shutdown(wait=True)
            bar.close()
        return stats
