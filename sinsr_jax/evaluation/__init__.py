"""Scoring trained runs: the evaluate command, its tables (report.py), comparison figures
(figures.py) and the user's own HR micrographs as a test set (image_folder.py).
"""
