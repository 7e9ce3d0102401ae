"""LPIPS in JAX against an independent torch implementation written here, on random weights."""

import numpy as np
import pytest
from scipy import ndimage
from test_weights import TORCH_REASON, torch_net

from sinsr_jax.metrics.lpips import LPIPS

# torchvision ``features`` indices of the ReLUs LPIPS taps.
TAPS = {"alex": (1, 4, 7, 9, 11), "vgg": (3, 8, 15, 22, 29)}


def _reference_lpips(torch, net, heads, x, y, taps):
  """LPIPS v0.1 as the paper's code computes it, on NHWC [0, 1] numpy batches."""
  shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
  scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

  def features(images):
    h = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    h = (h.repeat(1, 3 // h.shape[1], 1, 1) * 2 - 1 - shift) / scale
    out = []
    for i, module in enumerate(net.features[:max(taps) + 1]):
      h = module(h)
      if i in taps:
        out.append(h.clone())
    return out

  with torch.no_grad():
    total = 0
    for f0, f1, head in zip(features(x), features(y), heads, strict=True):
      n0 = f0 / (torch.sqrt(torch.sum(f0 ** 2, dim=1, keepdim=True)) + 1e-10)
      n1 = f1 / (torch.sqrt(torch.sum(f1 ** 2, dim=1, keepdim=True)) + 1e-10)
      weighted = torch.nn.functional.conv2d((n0 - n1) ** 2, head)  # 1x1, no bias
      total = total + weighted.mean(dim=(2, 3))
  return total[:, 0].numpy()


@pytest.mark.parametrize("net,channels", [("alex", 3), ("vgg", 1)])
def test_lpips_matches_a_torch_reference_on_the_same_random_weights(net, channels, tmp_path):
  torch = pytest.importorskip("torch", reason=TORCH_REASON)
  backbone = torch_net("alexnet" if net == "alex" else "vgg16", narrow=net == "vgg")
  backbone_path = tmp_path / "backbone.pth"
  torch.save(backbone.state_dict(), backbone_path)
  widths = [m.out_channels for m in backbone.features if isinstance(m, torch.nn.Conv2d)]
  tap_widths = [widths[sum(isinstance(m, torch.nn.Conv2d) for m in backbone.features[:t])
                       - 1] for t in TAPS[net]]
  generator = torch.Generator().manual_seed(1)
  heads = [torch.rand(1, c, 1, 1, generator=generator) for c in tap_widths]
  heads_path = tmp_path / "heads.pth"
  torch.save({f"lin{k}.model.1.weight": w for k, w in enumerate(heads)}, heads_path)

  metric = LPIPS.load(net, backbone_path=str(backbone_path), heads_path=str(heads_path),
                      cache_dir=str(tmp_path / "cache"), download=False)
  rng = np.random.default_rng(0)
  x = ndimage.gaussian_filter(rng.random((3, 64, 64, channels)), (0, 1, 1, 0)).astype(np.float32)
  y = np.clip(x + 0.1 * rng.standard_normal(x.shape), 0, 1).astype(np.float32)
  ours = metric(x, y)
  reference = _reference_lpips(torch, backbone, heads, x, y, TAPS[net])
  assert ours.shape == (3,)
  np.testing.assert_allclose(ours, reference, rtol=1e-4)
  np.testing.assert_allclose(metric(x, x), 0.0, atol=1e-10)  # identical: 0 up to rounding
  assert np.all(ours > 0)


def test_lpips_says_which_file_is_missing(tmp_path):
  from sinsr_jax.weights import WeightsNotFound

  with pytest.raises(WeightsNotFound, match="alexnet-owt-7be5be79.pth"):
    LPIPS.load("alex", cache_dir=str(tmp_path), download=False)
  with pytest.raises(ValueError, match="unknown LPIPS network 'squeeze'"):
    LPIPS.load("squeeze", cache_dir=str(tmp_path), download=False)
