"""SINSR: structure-informed super-resolution GAN for SEM images.

    python -m sinsr_jax.main --config=configs/sinsr.py            # paper-scale recipe
    python -m sinsr_jax.main --config=configs/sinsr.py:quick      # minutes on a laptop CPU
    python -m sinsr_jax.main --config=configs/sinsr.py:quick,scale=2 --config.train.batch_size=8

The part after ':' is a comma list of variants: bare names (``quick``) and ``key=value``
shortcuts (``scale=2``, ``seed=1``, ``data=sem_synthetic|nffa_sem|folder``, ``path=DIR``).
Everything else is overridden with ``--config.a.b=value``.

    python -m sinsr_jax.main --config=configs/sinsr.py:data=nffa_sem          # the real archive
    python -m sinsr_jax.main --config=configs/sinsr.py:data=folder,path=~/my_sem_images
"""

import ml_collections

VARIANTS = ("quick", "gradient_branch")
SHORTCUTS = ("scale", "seed", "data", "path")
DATASETS = {"sem_synthetic": "sem_synthetic", "nffa_sem": "nffa_sem", "folder": "sem_folder"}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variants, shortcuts = _parse_arg(arg)
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.name = "sem_synthetic"  # TFDS name: sem_synthetic | nffa_sem | sem_folder
  c.data.builder_config = ""  # TFDS builder config ("" = default; nffa_sem: sem | majority |
  #                             100percent | hierarchical)
  c.data.data_dir = ""  # "" = TFDS default (~/tensorflow_datasets or $TFDS_DATA_DIR)
  c.data.manual_dir = ""  # nffa_sem: the downloaded tars ("" = <data_dir>/downloads/manual)
  c.data.path = ""  # sem_folder: the folder of your own SEM images
  c.data.split_percent = ()  # nffa_sem / sem_folder: train, validation, test (() = 90, 5, 5)
  c.data.train_split = "train"
  c.data.eval_split = "validation"
  c.data.scale = 4  # super-resolution factor: 2, 3 or 4
  c.data.patch_size = 128  # HR training patch; LR patch = patch_size // scale
  c.data.augment = True  # random flips and 90-degree rotations
  c.data.quantize_lr = True  # LR rounded to 8-bit levels, as a stored LR image would be
  # LR = noise(bicubic_downscale(blur(HR))). Each entry is (value,) or a (low, high) range
  # sampled per image; all zero = plain MATLAB bicubic, the SR community's default.
  c.data.degradation = ml_collections.ConfigDict()
  c.data.degradation.blur_sigma = (0.0,)  # Gaussian blur of HR before downscaling, HR pixels
  c.data.degradation.dose = (0.0,)  # Poisson shot noise: electrons/pixel at full brightness
  c.data.degradation.gamma_shape = (0.0,)  # Gamma speckle (mean 1, shape k), fast dwell times
  c.data.degradation.read_noise = (0.0,)  # Gaussian read noise sigma on [0, 1]
  # Structure-aware sampling: redraw crops whose mean Sobel magnitude is below this (0 = off),
  # at most max_patch_retries times (SEM frames have large empty areas).
  c.data.min_patch_gradient = 0.0
  c.data.max_patch_retries = 10
  c.data.num_workers = 2  # grain worker processes (0 = in the main process)
  c.data.prefetch_buffer = 2  # batches per worker
  c.data.eval_max_images = 0  # 0 = the whole eval split
  c.data.eval_crop = 0  # centre crop of eval images, HR pixels (0 = whole images)

  c.model = ml_collections.ConfigDict()
  c.model.name = "sinsr"
  c.model.channels = 1  # SEM is grayscale
  c.model.stem_width = 128
  c.model.width = 64
  c.model.num_rrdb = 4  # per scale path
  c.model.growth = 32
  c.model.attention = "cbam"  # none | cbam | se
  c.model.gradient_branch = False  # SPSR-style gradient branch fused into the output

  c.discriminator = ml_collections.ConfigDict()
  c.discriminator.name = "sinsr_patch"
  c.discriminator.width = 32
  c.discriminator.stage_widths = (64, 128, 256, 512)
  c.discriminator.norm = "layer"  # none | layer | instance

  c.loss = ml_collections.ConfigDict()  # GAN-phase weights (pretraining: the pixel loss alone)
  c.loss.pixel_kind = "l1"  # l1 | l2 | charbonnier, in both phases
  c.loss.gan_kind = "vanilla"  # vanilla (BCE) | ragan (relativistic average) | hinge
  c.loss.pixel = 1.0
  c.loss.adversarial = 5e-3
  c.loss.ssim = 0.1
  c.loss.gradient = 0.1  # Sobel gradient MSE
  c.loss.second_order = 0.0  # MSE of second derivatives (Sobel of Sobel)
  c.loss.tv = 0.0  # total variation of SR
  c.loss.gradient_pixel = 0.0  # L1 between gradient maps of SR and HR (SPSR)
  c.loss.gradient_branch = 0.5  # L1 of the gradient branch's map (models with a branch only)
  c.loss.vae_reconstruction = 0.0  # dSRVAE: L1 of its denoised LR to the input LR
  c.loss.kl = 0.0  # dSRVAE: KL divergence of its latent from N(0, 1)

  c.optim = ml_collections.ConfigDict()
  c.optim.g_lr = 1e-4
  c.optim.d_lr = 1e-4
  c.optim.b1 = 0.9
  c.optim.b2 = 0.99
  c.optim.decay_rate = 0.96  # exponential decay of both learning rates ...
  c.optim.decay_steps = 100_000  # ... every this many steps
  c.optim.ema_decay = 0.999  # generator EMA (warmed up: min(decay, (1+t)/(10+t)))

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 16  # global, across all devices and hosts
  c.train.num_steps = 400_000
  c.train.pretrain_steps = 100_000  # pixel-loss (PSNR-oriented) phase before the GAN phase
  c.train.log_every = 100
  c.train.image_every = 5_000  # sample images to TensorBoard
  c.train.eval_every = 5_000
  c.train.checkpoint_every = 5_000
  c.train.keep_checkpoints = 3

  if "quick" in variants:  # a small model and budget that beats bicubic in minutes on a CPU
    c.data.patch_size = 64
    c.data.eval_max_images = 16
    c.model.stem_width = 32
    c.model.width = 32
    c.model.num_rrdb = 1
    c.model.growth = 16
    c.discriminator.width = 16
    c.discriminator.stage_widths = (32, 64, 128, 128)
    c.optim.g_lr = 5e-4
    c.optim.d_lr = 2e-4
    c.optim.decay_steps = 200
    c.optim.decay_rate = 0.8
    c.optim.ema_decay = 0.99
    c.train.batch_size = 16
    c.train.num_steps = 1200
    c.train.pretrain_steps = 1000
    c.train.log_every = 50
    c.train.image_every = 400
    c.train.eval_every = 400
    c.train.checkpoint_every = 400

  if "gradient_branch" in variants:  # the seed's phase 5: SPSR-style gradient branch
    c.model.gradient_branch = True
  if "scale" in shortcuts:
    c.data.scale = int(shortcuts["scale"])
  if "seed" in shortcuts:
    c.seed = int(shortcuts["seed"])
  if "data" in shortcuts:
    if shortcuts["data"] not in DATASETS:
      raise ValueError(f"unknown data={shortcuts['data']!r}; valid: {', '.join(DATASETS)}")
    c.data.name = DATASETS[shortcuts["data"]]
    if c.data.name != "sem_synthetic":
      c.data.eval_crop = 256  # real micrographs vary in size: one compiled eval shape
  if "path" in shortcuts:
    c.data.path = shortcuts["path"]
  return c


def _parse_arg(arg):
  variants, shortcuts = set(), {}
  for item in filter(None, (arg or "").split(",")):
    key, sep, value = item.partition("=")
    if sep and key in SHORTCUTS:
      shortcuts[key] = value
    elif not sep and key in VARIANTS:
      variants.add(key)
    else:
      raise ValueError(f"unknown config variant {item!r}; valid: {', '.join(VARIANTS)}, "
                       f"or {', '.join(k + '=...' for k in SHORTCUTS)}")
  return variants, shortcuts
