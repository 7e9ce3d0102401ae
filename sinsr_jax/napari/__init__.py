"""The napari plugin (npe2 manifest napari.yaml): reader, Upscale widget, sample data."""
