"""Feature extractors shared by metrics (I3D for FVD/KVD, optical flow), and their on-disk cache."""
