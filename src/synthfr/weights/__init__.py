"""Built-in weights shipped with the package (safetensors + model cards)."""
