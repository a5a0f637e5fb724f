"""PyTorch definitions of the segmentation models (export side only; needs torch).

``build.build_model(spec)`` builds a :class:`build.SamModel` whose ``state_dict()`` keys are the
official ones (``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``).
"""
