"""Image-quality metrics. Conventions (border crop, data range, quantization) are arguments."""

from sinsr_jax.metrics.lpips import LPIPS, lpips_distance
from sinsr_jax.metrics.psnr_ssim import CONVENTION, psnr_db, ssim, to_pixel_range

__all__ = ["CONVENTION", "LPIPS", "lpips_distance", "psnr_db", "ssim", "to_pixel_range"]
