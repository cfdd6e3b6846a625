"""The app over the library (open_clip's split): the ``synthfr`` command line (:mod:`~synthfr.app.cli`, one
module per subcommand in :mod:`~synthfr.app.commands`, each generated from its config dataclass), the pipeline
(:mod:`~synthfr.app.pipeline`), its shipped presets (``presets/``; the demo is one: :mod:`~synthfr.app.demo`)
and the report's folder discovery (:mod:`~synthfr.app.report`).

The app uses only the library's public jobs (``sample``, ``generate_dataset``, ``measure_quality``,
``evaluate``, ``train``, ...); nothing in the library imports the app.
"""
