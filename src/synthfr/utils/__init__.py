"""Small shared helpers: seeds, JSON output, provenance, progress, devices, data paths."""
from synthfr.utils.seeds import derive_seed, seed_everything
from synthfr.utils.io import write_json, read_json, atomic_write_bytes, atomic_write_text
from synthfr.utils.provenance import provenance, write_provenance
from synthfr.utils.device import resolve_device
from synthfr.utils.paths import shared_data_dir

__all__ = [
    "derive_seed", "seed_everything", "write_json", "read_json", "atomic_write_bytes", "atomic_write_text",
    "provenance", "write_provenance", "resolve_device", "shared_data_dir",
]
