"""Applying a trained generator to real micrographs: file I/O and instrument metadata
(micrographs.py), pixel-size calibration, tiled inference, the upscaling pipeline, test-time
adaptation (adaptation.py) and the upscale command (command.py).
"""
