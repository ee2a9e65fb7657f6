"""Loaders of each chapter's data, one module per dataset, all on one contract.

Every loader is called as ``load_<dataset>(source="simulated", *, data=None, seed=None, ...)``:
``"simulated"`` (the default, offline) returns simulated data with its ground truth in
``truth``; ``"real"`` reads the course's recording (downloaded once and verified, or shipped
with the package); ``"user"`` reads yours, passed as ``data=``. Simulation options apply to
``"simulated"`` only (see :mod:`course_utils.data.loaders._contract`).

The spike sessions of chapters 1 and 2 are pynapple objects: ``units`` holds all the spikes,
``epochs`` says which part to analyse, and the behavioural or stimulus series (``position``,
``current``, ``heading``) are restricted to ``epochs``, their ``time_support``. Chapter 3's
photostimulation and chapter 4's assemblies are frame- or bin-indexed arrays, the unit of
their models; chapter 6's dipole is one time course.
"""

from course_utils.data.loaders._contract import SOURCES
from course_utils.data.loaders.assemblies import ZEBRAFISH_DATA_URL, AssemblyData, load_assemblies
from course_utils.data.loaders.current_injection import CurrentInjectionSession, load_current_injection
from course_utils.data.loaders.dipole import EvokedDipole, load_evoked_dipole
from course_utils.data.loaders.head_direction import HeadDirectionSession, load_head_direction
from course_utils.data.loaders.photostim import PhotostimSession, load_photostim
from course_utils.data.loaders.place_cells import PlaceCellSession, load_place_cells

__all__ = [
    "SOURCES",
    "ZEBRAFISH_DATA_URL",
    "AssemblyData",
    "CurrentInjectionSession",
    "EvokedDipole",
    "HeadDirectionSession",
    "PhotostimSession",
    "PlaceCellSession",
    "load_assemblies",
    "load_current_injection",
    "load_evoked_dipole",
    "load_head_direction",
    "load_photostim",
    "load_place_cells",
]
