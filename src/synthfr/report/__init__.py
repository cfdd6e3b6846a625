"""Reports: self-contained HTML and plots."""
