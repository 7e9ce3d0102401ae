"""The README's figure: LR | bicubic | SINSR | HR on a crop of a real micrograph, PSNR vs HR.

    python benchmarks/readme_figure.py --run=runs/quick
    python benchmarks/readme_figure.py --run=/tmp/runs/q_v2 --box=160,384,256

HR is a square crop (--box=top,left,size, HR pixels) of the image area above the databar of
--image; LR is its MATLAB-bicubic x<scale> downscale rounded to 8 bits (the BasicSR setting,
sinsr_jax.data.degradations), saved as a PNG and upscaled by the trained --run through
``python -m sinsr_jax.upscale`` exactly as a user would; bicubic is the MATLAB-bicubic upscale of
the same LR. PSNR follows BasicSR's convention (8-bit levels, ``scale`` border pixels cropped).
Writes a grayscale PNG (default docs/assets/readme_figure.png) and prints the PSNRs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from sinsr_jax.data.degradations import bicubic_downscale, bicubic_upscale, quantize_8bit  # noqa: E402
from sinsr_jax.inference import micrographs  # noqa: E402
from sinsr_jax.metrics import psnr_db  # noqa: E402
from tfds_sem.databar import find_databar  # noqa: E402

DEFAULT_IMAGE = "/work/shared/real_sem/aquami_Sample.tif"
CREDIT = ("Nanoporous gold, Zeiss 1550, InLens, 20 kV, 500 kX (aquami 1.1.0 Sample.tif, "
          "© 2017 Joshua Stuckner, MIT licence)")


def hr_crop(path: str, box: tuple[int, int, int]) -> np.ndarray:
  """(size, size, 1) float32 in [0, 1]: the crop of the image area above the databar."""
  micrograph = micrographs.read(path)
  gray = micrographs.gray_levels(micrograph)
  row = micrograph.instrument.databar_row or find_databar(gray)
  area = micrographs.model_input(micrograph, 1)[: row if row > 0 else None]
  top, left, size = box
  if top + size > area.shape[0] or left + size > area.shape[1]:
    raise SystemExit(f"--box {box} does not fit the image area {area.shape[:2]}")
  return area[top:top + size, left:left + size]


def sinsr_upscale(run: str, lr: np.ndarray, workdir: str) -> np.ndarray:
  """The run applied to ``lr`` through the upscale command line, as float32 in [0, 1]."""
  lr_path = os.path.join(workdir, "lr.png")
  Image.fromarray(np.round(lr[..., 0] * 255).astype(np.uint8)).save(lr_path)
  out = os.path.join(workdir, "out")
  subprocess.run([sys.executable, "-m", "sinsr_jax.upscale", f"--run={run}", "--databar=none",
                  "--quiet", f"--out={out}", lr_path], check=True, cwd=ROOT)
  (name,) = [f for f in os.listdir(out) if f.endswith(".png")]  # lr_x<scale>.png
  sr = np.asarray(Image.open(os.path.join(out, name)))
  return (sr.astype(np.float32) / 255.0)[..., None]


def draw(panels: list[tuple[str, np.ndarray]], out: str, caption: str) -> None:
  """Panels side by side at their pixel size, titles above, caption below; 8-bit gray PNG."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  size = panels[0][1].shape[0]
  dpi = 100
  fig, axes = plt.subplots(1, len(panels), figsize=(len(panels) * size / dpi * 1.04,
                                                    size / dpi + 0.75), dpi=dpi)
  for ax, (title, image) in zip(axes, panels, strict=True):
    ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
  fig.text(0.5, 0.02, caption, ha="center", fontsize=7.5)
  fig.subplots_adjust(left=0.01, right=0.99, top=0.86, bottom=0.09, wspace=0.04)
  with tempfile.NamedTemporaryFile(suffix=".png") as tmp:
    fig.savefig(tmp.name, dpi=dpi)
    plt.close(fig)
    Image.open(tmp.name).convert("L").save(out, optimize=True)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--run", required=True, help="trained run folder (the Quickstart's)")
  parser.add_argument("--image", default=DEFAULT_IMAGE, help="the real micrograph")
  parser.add_argument("--box", default="160,384,256", help="top,left,size of the HR crop")
  parser.add_argument("--scale", type=int, default=4)
  parser.add_argument("--out", default=os.path.join(ROOT, "docs", "assets", "readme_figure.png"))
  args = parser.parse_args()

  box = tuple(int(v) for v in args.box.split(","))
  hr = hr_crop(os.path.expanduser(args.image), box)
  lr = quantize_8bit(bicubic_downscale(hr, args.scale))
  bicubic = np.clip(bicubic_upscale(lr, args.scale), 0.0, 1.0)
  with tempfile.TemporaryDirectory() as workdir:
    sr = sinsr_upscale(args.run, lr, workdir)
  if sr.shape != hr.shape:
    raise SystemExit(f"the run upscales x{sr.shape[0] // lr.shape[0]}, not x{args.scale}")

  def psnr(image):
    return float(psnr_db(image[None], hr[None], crop_border=args.scale)[0])

  nearest = np.repeat(np.repeat(lr, args.scale, axis=0), args.scale, axis=1)
  panels = [(f"LR ({lr.shape[0]} px, shown x{args.scale})", nearest),
            (f"bicubic  {psnr(bicubic):.2f} dB", bicubic),
            (f"SINSR  {psnr(sr):.2f} dB", sr),
            ("HR", hr)]
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  draw(panels, args.out, f"x{args.scale}, PSNR vs HR (BasicSR convention). {CREDIT}")
  print(f"bicubic {psnr(bicubic):.2f} dB, SINSR {psnr(sr):.2f} dB "
        f"({psnr(sr) - psnr(bicubic):+.2f} dB); box {box}; "
        f"wrote {args.out} ({os.path.getsize(args.out) / 1024:.0f} KB)")


if __name__ == "__main__":
  main()
