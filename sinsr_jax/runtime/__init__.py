"""What every command shares: process setup and one-line failures (cli.py), the console
and log file, XLA CPU flags, the compile cache, provenance, workdir locks and folder checks.
"""
