"""Bundled reference video-diffusion models (3D U-Net, temporal-attention U-Net) and training."""
