"""Distillation and fine-tuning (PyTorch; the ``export`` extra). Never imported by the runtime.

- :mod:`~skinscreen.train.student`: compact RepViT-style student encoders (re-parameterisable);
- :mod:`~skinscreen.train.data`: photo folders, augmentation, model inputs (numpy/OpenCV);
- :mod:`~skinscreen.train.teacher`, :mod:`~skinscreen.train.cache`: teacher and its embedding cache;
- :mod:`~skinscreen.train.distill`: the resumable distillation loop (``skinscreen distill``);
- :mod:`~skinscreen.train.finetune`: decoder fine-tuning with grouped k-fold CV (``skinscreen finetune``);
- :mod:`~skinscreen.train.ship`: fp16 safetensors weights and the student's ONNX bundle.
"""
