"""Procedural data: the "shapes" text-to-video domain with exact ground truth."""
