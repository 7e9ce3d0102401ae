"""Image-quality metrics. Conventions (border crop, data range, quantization) are arguments."""

from sinsr_jax.metrics.lpips import LPIPS, lpips_distance
from sinsr_jax.metrics.psnr_ssim import CONVENTION, psnr_db, ssim, to_pixel_range
from sinsr_jax.metrics.structure import edge_f1, gmsd, particle_agreement, segment_particles

__all__ = ["CONVENTION", "LPIPS", "edge_f1", "gmsd", "lpips_distance", "particle_agreement",
           "psnr_db", "segment_particles", "ssim", "to_pixel_range"]
