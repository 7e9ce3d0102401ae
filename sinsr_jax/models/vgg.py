"""ImageNet feature extractors for the perceptual loss and LPIPS: VGG16/19 and AlexNet features.

Layers follow torchvision's ``features`` stacks (the layout the pretrained weights come in) and
are named as BasicSR names them: ``conv3_4`` is the 4th conv of block 3 *before* its ReLU,
``relu3_4`` after it, ``pool3`` the block's max-pool. Parameters are frozen inputs: nothing
here is trained, and every conv is run at full float32 precision so features match the
reference implementations.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from sinsr_jax.models.conv import Conv

VGG_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
VGG_WIDTHS = (64, 128, 256, 512, 512)
# torchvision AlexNet ``features``: (out channels, kernel, stride, padding) per conv; max-pool
# 3x3 stride 2 after conv1, conv2 and conv5.
ALEXNET_CONVS = ((64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1))
ALEXNET_POOLS = (1, 2, 5)
ARCHS = (*VGG_BLOCKS, "alexnet")

# Input conventions of the two weight families (see weights.py). ``torch``: RGB in [0, 1],
# normalised by ImageNet mean/std; ``caffe`` (Keras applications): BGR in [0, 255] minus the
# ImageNet mean.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
PREPROCESSING = ("torch", "caffe")


def layer_names(arch: str) -> tuple[str, ...]:
  """Every named output of ``arch``, in forward order."""
  if arch == "alexnet":
    names = []
    for i in range(1, len(ALEXNET_CONVS) + 1):
      names += [f"conv{i}", f"relu{i}"] + ([f"pool{i}"] if i in ALEXNET_POOLS else [])
    return tuple(names)
  if arch not in VGG_BLOCKS:
    raise ValueError(f"unknown feature extractor {arch!r}; valid: {', '.join(ARCHS)}")
  names = []
  for block, depth in enumerate(VGG_BLOCKS[arch], start=1):
    for i in range(1, depth + 1):
      names += [f"conv{block}_{i}", f"relu{block}_{i}"]
    names.append(f"pool{block}")
  return tuple(names)


def conv_names(arch: str) -> tuple[str, ...]:
  """The parameterised layers of ``arch``, in order (the keys of its params)."""
  return tuple(n for n in layer_names(arch) if n.startswith("conv"))


def check_layers(arch: str, layers) -> None:
  valid = layer_names(arch)
  unknown = [layer for layer in layers if layer not in valid]
  if unknown:
    raise ValueError(f"{arch} has no layer {', '.join(unknown)}; valid: {', '.join(valid)}")


def imagenet_input(images, preprocessing: str = "torch"):
  """[0, 1] NHWC images (1 or 3 channels) -> the input the pretrained weights expect.

  Grayscale is replicated to three channels: SEM images are luma, and the ImageNet filters
  respond to it as to a neutral grey colour image.
  """
  if images.shape[-1] == 1:
    images = jnp.repeat(images, 3, axis=-1)
  elif images.shape[-1] != 3:
    raise ValueError(f"feature extractors take 1 or 3 channels, got {images.shape[-1]}")
  if preprocessing == "torch":
    return (images - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)
  if preprocessing == "caffe":
    return images[..., ::-1] * 255.0 - jnp.asarray(CAFFE_MEAN_BGR)
  raise ValueError(f"unknown preprocessing {preprocessing!r}; valid: {', '.join(PREPROCESSING)}")


class Features(nn.Module):
  """(N, H, W, 3) preprocessed images -> {layer name: features} for the requested ``outputs``.

  Runs only as far as the deepest requested layer. ``widths`` (VGG: one per block) come from
  the weights being loaded, so narrow test-made networks work the same way.
  """

  arch: str = "vgg19"
  outputs: tuple[str, ...] = ("relu5_4",)
  widths: tuple[int, ...] = ()  # () = the published widths

  @nn.compact
  def __call__(self, x):
    check_layers(self.arch, self.outputs)
    names = layer_names(self.arch)
    last = max(names.index(o) for o in self.outputs)
    convs = _conv_specs(self.arch, self.widths)
    features = {}
    for name in names[:last + 1]:
      kind = name[:4]
      if kind == "conv":
        features_out, kernel, stride, pad = convs[name]
        x = Conv(features_out, (kernel, kernel), strides=(stride, stride),
                    padding=((pad, pad), (pad, pad)), precision=jax.lax.Precision.HIGHEST,
                    name=name)(x)
      elif kind == "relu":
        x = nn.relu(x)
      else:  # torchvision: VGG pools 2x2/2, AlexNet 3x3/2, both without padding (floor)
        window = 3 if self.arch == "alexnet" else 2
        x = nn.max_pool(x, (window, window), strides=(2, 2), padding="VALID")
      if name in self.outputs:
        features[name] = x
    return features


def _conv_specs(arch: str, widths: tuple[int, ...]) -> dict[str, tuple[int, int, int, int]]:
  if arch == "alexnet":
    widths = widths or tuple(c[0] for c in ALEXNET_CONVS)
    return {f"conv{i + 1}": (w, k, s, p)
            for i, (w, (_, k, s, p)) in enumerate(zip(widths, ALEXNET_CONVS, strict=True))}
  widths = widths or VGG_WIDTHS
  specs = {}
  for block, (depth, width) in enumerate(zip(VGG_BLOCKS[arch], widths, strict=True), start=1):
    for i in range(1, depth + 1):
      specs[f"conv{block}_{i}"] = (width, 3, 1, 1)
  return specs


def widths_of(arch: str, params) -> tuple[int, ...]:
  """The widths a params tree was made with: one per VGG block, one per AlexNet conv."""
  if arch == "alexnet":
    return tuple(int(params[n]["kernel"].shape[-1]) for n in conv_names(arch))
  return tuple(int(params[f"conv{b}_1"]["kernel"].shape[-1])
               for b in range(1, len(VGG_BLOCKS[arch]) + 1))
