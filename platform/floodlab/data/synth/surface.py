"""Surface classes of synthetic scenes and their SEN12MS land-cover codes."""

from __future__ import annotations

from enum import IntEnum


class Surface(IntEnum):
    """Surface classes of a synthetic scene."""

    OPEN_WATER = 0
    FLOODED_VEG = 1
    FOREST = 2
    CROP = 3
    URBAN = 4
    DARK_LAND = 5  # sand, tarmac, smooth bare soil: specular like water in SAR
    SNOW = 6  # wet snow: dark in SAR, as bright as cloud in optical


# SEN12MS land-cover codes per surface: (IGBP, LCCS land cover, LCCS land use, LCCS
# surface hydrology). IGBP 17 is water, 11 permanent wetlands, 15 snow and ice; LCCS
# code 3 is water, 2 permanent snow and ice.
LC_CODES: dict[Surface, tuple[int, int, int, int]] = {
    Surface.OPEN_WATER: (17, 3, 3, 3),
    Surface.FLOODED_VEG: (11, 31, 30, 50),
    Surface.FOREST: (4, 14, 10, 10),
    Surface.CROP: (12, 31, 36, 30),
    Surface.URBAN: (13, 1, 9, 1),
    Surface.DARK_LAND: (16, 1, 1, 1),
    Surface.SNOW: (15, 2, 2, 2),
}
