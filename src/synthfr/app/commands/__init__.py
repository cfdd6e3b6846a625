"""CLI subcommands, one module each (see :mod:`synthfr.cli`)."""
