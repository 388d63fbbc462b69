"""Framework-neutral parts of the bring-your-own-model trainers (PyTorch, Keras 3, JAX/Flax):
the shared config, the search, the tracked loop's bookkeeping and the ONNX-served package."""
