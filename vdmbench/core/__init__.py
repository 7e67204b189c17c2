"""The bottom layer: the Video type and its IO, errors, hashing, naming, atomic writes, paths,
statistics and compute resources. Imports nothing else of vdmbench."""
