"""Training: the loop (train.py), pure per-device steps, data-parallel mapping, checkpoints,
monitoring, preemption, precision, multi-host setup, config checks, the networks a config
builds, in-training validation and reading a trained run back (runs.py).
"""
