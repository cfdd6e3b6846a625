"""The built-in embedding-to-face generator (``synthfr-small``): architecture, losses, trainer, export.

* :mod:`synthfr.genmodel.model` — the network (:class:`FaceGenerator`, a Vec2Face-style feature masked
  autoencoder conditioned on a 128-D ``dlib-torch`` identity vector) and its config.
* :mod:`synthfr.genmodel.trainer` — ``synthfr train-generator``: resumable CPU/GPU training loop.
* :mod:`synthfr.genmodel.export` — turning a training checkpoint into the shipped weights folder.

The registered generator lives in :mod:`synthfr.generators.builtin`; the pose estimator used by AttrOP in
:mod:`synthfr.face.pose`.
"""
