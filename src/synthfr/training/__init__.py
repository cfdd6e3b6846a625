"""FR training: one readable loop, augmentations, mixups, distributed helpers."""
