"""sem_synthetic: procedural SEM-like scenes, generated locally (no download)."""
