"""Federated fine-tuning with Flower: the skin-specific parts on top of the frozen encoder (the
prompt encoder and mask decoder, as in ``litemedsam-boxaug``) trained across sites whose photos
never leave them. Each site computes its own embeddings (the teacher-embedding cache of
:mod:`skinscreen.train.cache`) and trains on them; only parameters travel (docs/federated.md).

Modules: :mod:`.site` (a site's photos, split and cached embeddings), :mod:`.task` (parameters,
local training, evaluation), :mod:`.apps` (Flower ServerApp / ClientApp on the Message API),
:mod:`.asset` (the fine-tuned decoder with its provenance, registered and exported like
``litemedsam-boxaug``), :mod:`.deploy` (SuperLink / SuperNode processes for real deployments).
"""
