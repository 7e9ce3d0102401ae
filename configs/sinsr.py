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
  # Repeated blocks unrolled (False) or as one nn.scan each (True: compiled once; the paper-width
  # GAN step compiles 1.8-3x faster in less memory and runs 2-5% slower on CPU, benchmarks/
  # RESULTS.md section 9). Checkpoints of either layout restore into the other. Shared by every
  # config in configs/ (baselines/baseline_recipes.py keeps them).
  c.model.scan = False
  c.model.remat = False  # recompute blocks' activations in the backward pass (large patches)

  c.discriminator = ml_collections.ConfigDict()
  c.discriminator.name = "sinsr_patch"
  c.discriminator.width = 32
  c.discriminator.stage_widths = (64, 128, 256, 512)
  c.discriminator.norm = "layer"  # none | layer | instance

  # The generator's GAN-phase loss: a convex combination of the terms below. Raw weights are
  # (value,) or (start, end): moved linearly from start to end over the GAN phase (the original
  # SINSR's dynamic weights), then divided by their sum so the weights in use sum to one.
  c.loss = ml_collections.ConfigDict()
  c.loss.pixel_kind = "l1"  # l1 | l2 | charbonnier, in both phases
  c.loss.gan_kind = "vanilla"  # vanilla (BCE) | ragan (relativistic average) | hinge
  c.loss.schedule = "linear"  # linear: start -> end over the GAN phase | fixed: start weights
  c.loss.gradient_mode = "components"  # Sobel term on the d/dy, d/dx maps | their magnitude
  c.loss.gradient_distance = "l2"  # l2 (MSE, the original's) | l1
  c.loss.second_order_kind = "sobel"  # sobel (Sobel of Sobel) | laplacian
  c.loss.weights = ml_collections.ConfigDict()
  w = c.loss.weights  # the original SINSR's weights (DESIGN.md section 4)
  w.pixel = (0.0,)  # pixel loss of pixel_kind (the original has it inside `auxiliary`)
  w.adversarial = (100.0, 60.0)
  w.perceptual = (2.0, 1.5)  # VGG19 features, see loss.vgg (needs the pretrained weights)
  w.gradient = (500.0, 350.0)  # Sobel maps of SR vs HR
  w.second_order = (150.0, 100.0)  # second derivatives (second_order_kind)
  w.ssim = (300.0, 350.0)  # 1 - SSIM (dm-pix, 11x11 Gaussian window)
  w.auxiliary = (500.0, 800.0)  # L1 of pixels + L1 of Sobel maps
  w.tv = (0.0,)  # total variation of SR (not weighted in the original's selected run)
  w.gradient_pixel = (0.0,)  # L1 between gradient maps of SR and HR (SPSR)
  w.gradient_branch = (250.0,)  # L1 of a gradient branch's map (models with a branch only)
  w.gradient_adversarial = (0.0,)  # GAN on gradient maps: a second discriminator (SPSR)
  w.vae_reconstruction = (0.0,)  # dSRVAE: L1 of its denoised LR to the input LR
  w.kl = (0.0,)  # dSRVAE: KL divergence of its latent from N(0, 1)
  # Pretraining (PSNR-oriented) phase: the pixel loss and a model's own auxiliary terms, fixed
  # weights, combined the same convex way.
  c.loss.pretrain_weights = ml_collections.ConfigDict()
  c.loss.pretrain_weights.pixel = 1.0
  c.loss.pretrain_weights.gradient_branch = 0.5  # models with a gradient branch
  c.loss.pretrain_weights.vae_reconstruction = 0.0  # dSRVAE
  c.loss.pretrain_weights.kl = 0.0  # dSRVAE
  c.loss.vgg = ml_collections.ConfigDict()  # the perceptual term's feature extractor
  c.loss.vgg.weights = ""  # converted .msgpack or source .pth/.h5 ("" = the weights cache)
  c.loss.vgg.source = "vgg19"  # known source when `weights` is "": vgg19 (torchvision) |
  #                              vgg19_keras (see `python -m sinsr_jax.weights list`)
  c.loss.vgg.download = True  # fetch the source from its official URL into the cache if absent
  # Keras VGG19 outputs (block{1,2}_conv2, block{3,4,5}_conv4) include the ReLU: relu*_* here.
  c.loss.vgg.layers = ("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4")
  c.loss.vgg.layer_weights = ()  # one per layer (() = the plain mean over layers)
  c.loss.vgg.distance = "l2"  # l2 (MSE) | l1

  c.optim = ml_collections.ConfigDict()
  c.optim.g_lr = 1e-4
  c.optim.d_lr = 1e-4
  c.optim.b1 = 0.9
  c.optim.b2 = 0.99
  # Both learning rates decay continuously with the global step: lr * rate ** (step / steps),
  # the discriminator's too although it first updates in the GAN phase.
  c.optim.decay_rate = 0.96
  c.optim.decay_steps = 100_000
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
  # Fine-tuning: a run folder whose generator (EMA weights), and discriminator when its
  # architecture matches, this run starts from; steps, schedules and optimisers start fresh.
  c.train.init_from = ""
  # A non-finite loss or gradient skips its update; this many in a row stop the run (0 = never).
  c.train.max_nonfinite_steps = 10
  # Warn when the discriminator's accuracy stays at >= 0.99 or <= 0.01 this long (0 = never).
  c.train.collapse_warning_steps = 2000
  # bfloat16: activations in bf16 on GPU/TPU, parameters, optimizer state and losses in f32.
  c.train.compute_dtype = "float32"  # float32 | bfloat16

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
    # 850 pixel-loss steps + 150 GAN steps: 9 min 22 s on a 2-core CPU; the former 1000 + 200
    # took 11 min 25 s for +0.05 dB on sem_synthetic and the same gain on a real frame.
    c.train.num_steps = 1000
    c.train.pretrain_steps = 850
    c.train.log_every = 50
    c.train.image_every = 500
    c.train.eval_every = 500
    c.train.checkpoint_every = 500
    # No download on a laptop quickstart: the perceptual term is off (its weights are external).
    c.loss.weights.perceptual = (0.0,)

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
