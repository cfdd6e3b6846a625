"""Face tools: detection and landmarks, five-point alignment, embedders."""
