"""FR models: backbones (registry ``backbone``) and margin heads (registry ``head``). Never imports data."""
