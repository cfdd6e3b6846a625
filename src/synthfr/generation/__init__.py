"""Generation, the stage that turns identity vectors into a training set (``synthfr generate``/``merge``).

    config.py      GenerateConfig (one field per flag) and its up-front validation
    identities.py  the identity vectors with their embedding space (one hand-over), sampler specs
    plan.py        per image: condition vector + render seed (variations, AttrOP gets the seeds)
    checks.py      identity filter and landmark alignment check (regenerate what fails)
    scheduler.py   generator batches over a small dataclass per image; writer and committer threads
    folder.py      the dataset folder: settings, resume state, inputs, final manifest, card
    merge.py       join the folders of a sharded run
    run.py         generate_dataset: the sharded, resumable run

Exactness. Image ``k`` of identity row ``i`` gets the seed ``derive_seed(S, i, k)`` (attempt ``a > 0`` of the
filter: ``derive_seed(S, i, k, a)``); the variation gets ``derive_seed(S, "variation")`` and is a function of
``(seed, i, k)`` too. Generators must make the same pixels for the same ``(condition, seed)`` in any batch
(or declare ``batch_invariant = False`` and get one identity per batch), so batch size, sharding,
``torchrun`` ranks and resuming never change a byte of the output.
"""
from synthfr.generation.checks import LandmarkAlignmentCheck
from synthfr.generation.config import RUN_ONLY_FIELDS, GenerateConfig, validate_generate_config
from synthfr.generation.merge import merge_shards
from synthfr.generation.plan import image_seed
from synthfr.generation.run import generate_dataset

__all__ = ["GenerateConfig", "generate_dataset", "validate_generate_config", "merge_shards", "image_seed",
           "LandmarkAlignmentCheck", "RUN_ONLY_FIELDS"]
