"""Pretrained ImageNet weights for the perceptual loss and LPIPS: find, verify, convert, cache.

Published weights come as PyTorch ``.pth`` files (torchvision VGG16/19 and AlexNet, the LPIPS
linear heads) or Keras HDF5 files, read by readers.py WITHOUT torch or TensorFlow: ``.pth``
files through a restricted unpickler that only rebuilds tensors (no code runs), ``.h5`` files
through h5py. Each is converted once to the parameter tree of ``vgg.Features`` and cached as
``<cache>/<name>.msgpack``; the cache is ``$SINSR_WEIGHTS_DIR`` or ``~/.cache/sinsr_jax/weights``.
Missing weights are an error that says which file to put where, never a silent random init.

Command line: ``python -m sinsr_jax.weights {list,convert,verify} ...``.
"""

from sinsr_jax.weights.cache import (
                                     check_hash,
                                     default_cache_dir,
                                     file_hashes,
                                     load,
                                     load_lpips_heads,
                                     write_checkpoint,
)
from sinsr_jax.weights.command import main
from sinsr_jax.weights.convert import (
                                     alexnet_params_from_torch,
                                     lpips_heads_from_torch,
                                     vgg_params_from_keras,
                                     vgg_params_from_torch,
)
from sinsr_jax.weights.readers import WeightsError, read_keras_h5, read_torch_state_dict
from sinsr_jax.weights.sources import SOURCES, Source, WeightsNotFound, source

__all__ = ["SOURCES", "Source", "WeightsError", "WeightsNotFound", "alexnet_params_from_torch",
           "check_hash", "default_cache_dir", "file_hashes", "load", "load_lpips_heads",
           "lpips_heads_from_torch", "main", "read_keras_h5", "read_torch_state_dict", "source",
           "vgg_params_from_keras", "vgg_params_from_torch", "write_checkpoint"]
