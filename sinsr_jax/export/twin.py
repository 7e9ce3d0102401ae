"""A run's generator written again in PyTorch, reading the run's Flax parameters as they are.

ONNX (and TorchScript) come from this twin through ``torch.onnx``, not from JAX: the JAX route
(jax2onnx) pins an orbax-checkpoint older than this project's, so it cannot share one install
(docs/fiji.md). Each function below mirrors one Flax module of sinsr_jax.models on NCHW tensors,
with the same parameter names (the unrolled layout: sinsr_jax.models.layout converts scanned
runs), so the weights are the run's own bit for bit; tests/test_export.py checks the outputs
against JAX on tiles of a real micrograph.

The twin has a fixed LR tile size: MATLAB bicubic (SINSR's and VDSR's skip) is a pair of resize
matrices of that size, exactly as sinsr_jax.data.degradations computes them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from sinsr_jax.data import degradations

# Generators this twin mirrors, and for the others the layer it has no mirror for.
SUPPORTED = ("bicubic", "esrgan", "sinsr", "vdsr")
UNSUPPORTED = {
    "srresnet": "BatchNorm + PReLU (nn.BatchNorm, nn.PReLU)",
    "swinir": "shifted-window self-attention (SwinIR's WindowAttention)",
    "spsr": "SPSR's gradient-branch fusion (spsr.SPSR)",
    "dsrvae": "the VAE's strided 4x4 encoder and latent resize (dsrvae.DSRVAE)",
}


class Params(torch.nn.Module):
  """A Flax parameter tree as torch parameters; ``self[path]`` is the subtree at ``path``."""

  def __init__(self, tree: dict):
    super().__init__()
    self.tensors = torch.nn.ParameterDict()
    self._walk(tree, ())

  def _walk(self, tree, path):
    for key, value in tree.items():
      if isinstance(value, dict):
        self._walk(value, (*path, key))
      else:
        self.tensors["__".join((*path, key))] = torch.nn.Parameter(
            torch.from_numpy(np.array(value, np.float32)), requires_grad=False)

  def get(self, *path: str) -> torch.Tensor:
    return self.tensors["__".join(path)]

  def has(self, *path: str) -> bool:
    prefix = "__".join(path) + "__"
    return any(k.startswith(prefix) for k in self.tensors)


def lrelu(x):
  return F.leaky_relu(x, 0.2)


def conv(p: Params, path: tuple[str, ...], x, stride: int = 1):
  """flax Conv (HWIO kernel, "SAME" padding, odd kernels) on NCHW."""
  kernel = p.get(*path, "kernel").permute(3, 2, 0, 1)
  bias_key = "__".join((*path, "bias"))
  bias = p.tensors[bias_key] if bias_key in p.tensors else None
  return F.conv2d(x, kernel, bias, stride, (kernel.shape[-1] - 1) // 2)


def dense(p: Params, path: tuple[str, ...], x):
  return F.linear(x, p.get(*path, "kernel").t(), p.get(*path, "bias"))


class Bicubic(torch.nn.Module):
  """MATLAB bicubic x``scale`` of a fixed (h, w): degradations.resize_matrix on each axis."""

  def __init__(self, scale: int, height: int, width: int):
    super().__init__()
    mat = lambda n: torch.from_numpy(np.asarray(degradations.resize_matrix(n, n * scale),
                                                np.float32))
    self.register_buffer("rows", mat(height))
    self.register_buffer("cols", mat(width))

  def forward(self, x):  # (N, C, h, w) -> (N, C, h*s, w*s)
    return torch.matmul(torch.matmul(self.rows, x), self.cols.t())


def cbam(p: Params, path, x):
  mlp = lambda v: dense(p, (*path, "mlp_out"), F.relu(dense(p, (*path, "mlp_hidden"), v)))
  att = torch.sigmoid(mlp(x.mean((2, 3))) + mlp(x.amax((2, 3))))
  x = x * att[:, :, None, None]
  pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
  return x * torch.sigmoid(conv(p, (*path, "spatial_conv"), pooled))


def dense_block(p: Params, path, x):
  feats = [x]
  for i in range(4):
    feats.append(lrelu(conv(p, (*path, f"Conv_{i}"), torch.cat(feats, 1))))
  return x + 0.2 * conv(p, (*path, "Conv_4"), torch.cat(feats, 1))


def rrdb(p: Params, path, x):
  y = x
  for i in range(3):
    y = dense_block(p, (*path, f"ResidualDenseBlock_{i}"), y)
    if p.has(*path, f"CBAM_{i}"):
      y = cbam(p, (*path, f"CBAM_{i}"), y)
  return x + 0.2 * y


def pixel_shuffle_upsample(p: Params, path, x, scale: int):
  factors = [3] if scale == 3 else [2] * {2: 1, 4: 2, 8: 3}[scale]
  for i, r in enumerate(factors):
    x = lrelu(F.pixel_shuffle(conv(p, (*path, f"Conv_{i}"), x), r))
  return x


def gradient_kernels(channels: int) -> torch.Tensor:
  """(2C, 1, 3, 3): SPSR's central differences (d/dy, d/dx) per channel, as the depthwise conv
  of sinsr_jax.models.gradient.gradient_map."""
  dy = torch.tensor([[0.0, -1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
  return torch.stack([dy, dy.t()])[:, None].repeat(channels, 1, 1, 1)


def gradient_map(x, kernels, eps: float = 1e-6):
  """sinsr_jax.models.gradient.gradient_map: gradient magnitude, zero padding, per channel."""
  c = kernels.shape[0] // 2
  d = F.conv2d(x, kernels, padding=1, groups=c)
  d = d.reshape(d.shape[0], c, 2, *d.shape[2:])
  return torch.sqrt((d * d).sum(2) + eps)


class Generator(torch.nn.Module):
  """LR (N, C, h, w) in [0, 1] -> SR (N, C, h*s, w*s): one generator of sinsr_jax.models."""

  def __init__(self, name: str, fields: dict, params: dict, tile: int):
    super().__init__()
    if name not in SUPPORTED:
      raise ValueError(f"unsupported generator {name!r}")
    self.name, self.fields, self.scale = name, fields, int(fields["scale"])
    self.p = Params(params)
    self.bicubic = Bicubic(self.scale, tile, tile)
    self.register_buffer("gradient_kernels", gradient_kernels(int(fields["channels"])))
    self._forward: Callable = getattr(self, f"_{name}")

  def forward(self, lr):
    return self._forward(lr)

  def _bicubic(self, lr):
    return self.bicubic(lr)

  def _vdsr(self, lr):
    up = self.bicubic(lr)
    depth = int(self.fields["depth"])
    x = F.relu(conv(self.p, ("conv_0",), up))
    for i in range(1, depth - 1):
      x = F.relu(conv(self.p, (f"conv_{i}",), x))
    return up + conv(self.p, (f"conv_{depth - 1}",), x)

  def _esrgan(self, lr):
    p, x = self.p, lr
    if self.scale == 2:
      x = F.pixel_unshuffle(lr, 2)
    feat = conv(p, ("conv_first",), x)
    body = feat
    for i in range(int(self.fields["num_blocks"])):
      body = rrdb(p, (f"rrdb_{i}",), body)
    feat = feat + conv(p, ("conv_body",), body)
    for i, r in enumerate([3] if self.scale == 3 else [2, 2]):
      feat = F.interpolate(feat, scale_factor=r, mode="nearest")
      feat = lrelu(conv(p, (f"conv_up{i + 1}",), feat))
    return conv(p, ("conv_last",), lrelu(conv(p, ("conv_hr",), feat)))

  def _stack(self, name: str, x):
    outputs = []
    for i in range(int(self.fields["num_rrdb"])):
      x = rrdb(self.p, (name, f"RRDB_{i}"), x)
      outputs.append(x)
    return x, outputs

  def _sinsr(self, lr):
    p, f = self.p, self.fields
    h, w = lr.shape[-2:]
    feats = conv(p, ("stem_proj",), conv(p, ("stem",), lr))
    paths, taps = [], []
    for path in f["scales"]:
      if path == "full":
        last, taps = self._stack("full", feats)
        paths.append(last)
      elif path == "down_up":
        low = self._stack("down_up", F.avg_pool2d(feats, 2))[0]
        paths.append(F.interpolate(low, size=(h, w), mode="bilinear"))
      else:  # up_down
        high = F.interpolate(feats, size=(2 * h, 2 * w), mode="bilinear")
        paths.append(F.avg_pool2d(self._stack("up_down", high)[0], 2))
    fused = conv(p, ("fuse",), torch.cat(paths, 1)) + feats
    up = pixel_shuffle_upsample(p, ("upsample",), fused, self.scale)
    up = lrelu(conv(p, ("hr_conv",), up))
    bicubic = self.bicubic(lr)
    if not f["gradient_branch"]:
      return bicubic + conv(p, ("out_conv",), up)
    taps = [*taps[::max(1, len(taps) // 3)][:3], fused]
    features = self._gradient_branch(gradient_map(lr, self.gradient_kernels), taps)
    up = lrelu(conv(p, ("fusion",), torch.cat([up, features], 1)))
    return bicubic + conv(p, ("out_conv",), up)

  def _gradient_branch(self, lr_gradient, taps):
    """sinsr_jax.models.gradient.GradientBranch's HR features (its gradient map is not exported:
    the SR image is the model's output)."""
    p, g = self.p, ("gradient_branch",)
    start = conv(p, (*g, "in_conv"), lr_gradient)
    x = start
    for i, tap in enumerate(taps):
      x = rrdb(p, (*g, f"rrdb_{i}"), torch.cat([x, tap], 1))
      x = conv(p, (*g, f"reduce_{i}"), x)
    x = start + conv(p, (*g, "lr_conv"), x)
    return pixel_shuffle_upsample(p, ("branch_upsample",), x, self.scale)
