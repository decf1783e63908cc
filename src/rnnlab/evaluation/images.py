"""Image grids as PNG files. The code lives in :mod:`rnnlab.utils` (any layer may save a grid:
training writes sample grids, the CLI writes ``sample`` output); this module keeps the names
that evaluation code and older scripts import."""

from rnnlab.utils import save_image_grid, tile_images

__all__ = ["save_image_grid", "tile_images"]
