"""``skinscreen bench``: one run, the same photos, every pipeline (PyTorch reference in a child
process, ONNX Runtime fp32 and every exported variant), timed stage by stage."""
