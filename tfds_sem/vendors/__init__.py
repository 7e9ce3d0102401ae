"""Instrument makers' metadata, one reader per maker: what a file (or its sidecar) states of
its pixel size, databar rows and acquisition. tfds_sem.instrument picks the reader."""
