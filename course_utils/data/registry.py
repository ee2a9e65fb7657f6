"""The registry of every real dataset the course uses: where it lives and how to check it.

URLs and sha256 checksums come from the fetch registry of NeMoS 0.2.8
(``nemos/fetch/fetch_data.py``), whose team converted these recordings to NWB and hosts them
on OSF. Sizes are ``None`` until someone measures them on a real download: a wrong size is
worse than none.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from course_utils.data.errors import UnknownDatasetError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
OSF_DOWNLOAD = "https://osf.io/download/{}/"


@dataclass(frozen=True)
class Dataset:
    """One downloadable data file.

    Attributes
    ----------
    name
        Short name used in the course, e.g. ``"place_cells"``.
    filename
        Name of the file in the cache folder (and on a mirror).
    urls
        Download addresses: the primary first, then mirrors.
    sha256
        Hex digest the downloaded file must match.
    size_bytes
        Size of the file, or ``None`` when not known.
    description
        What the file holds, in one or two sentences.
    citation
        What to cite when using the data.
    license
        Terms of use of the data.
    chapters
        Numbers of the chapters that use it.
    loader
        Name of the function of :mod:`course_utils.data` that loads it, or ``None``.
    bundled
        ``True`` when the file ships inside the package (``course_utils/data/files``,
        beside the notice its license asks for): :func:`~course_utils.data.fetch` then
        verifies and returns that copy and never downloads. Only small files whose license
        allows redistribution are bundled.
    """

    name: str
    filename: str
    urls: tuple[str, ...]
    sha256: str
    size_bytes: int | None
    description: str
    citation: str
    license: str
    chapters: tuple[int, ...]
    loader: str | None
    bundled: bool = False

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError(f"Dataset {self.name!r} needs at least one URL.")
        if not _SHA256.match(self.sha256):
            raise ValueError(f"Dataset {self.name!r}: sha256 must be 64 lowercase hex digits.")
        if "/" in self.filename or "\\" in self.filename:
            raise ValueError(f"Dataset {self.name!r}: filename must not contain a folder.")
        if self.size_bytes is not None and self.size_bytes <= 0:
            raise ValueError(f"Dataset {self.name!r}: size_bytes must be positive or None.")

    @property
    def size_text(self) -> str:
        """The size for humans, e.g. ``"12.3 MB"``, or ``"size unknown"``."""
        if self.size_bytes is None:
            return "size unknown"
        return f"{self.size_bytes / 1e6:.1f} MB"


_ENTRIES = (
    Dataset(
        name="place_cells",
        filename="Achilles_10252013.nwb",
        urls=(OSF_DOWNLOAD.format("hu5ma"),),
        sha256="42857015aad4c2f7f6f3d4022611a69bc86d714cf465183ce30955731e614990",
        size_bytes=None,
        description=(
            "Rat hippocampal CA1 units (pyramidal cells 'pE' and interneurons) while the rat "
            "runs back and forth on a linear track: spike times, linear position (cm), theta "
            "phase and the runs along the track (trials)."
        ),
        citation=(
            "Grosmark, A. D., & Buzsaki, G. (2016). Diversity in neural firing dynamics "
            "supports both rigid and learned hippocampal sequences. Science, 351(6280), "
            "1440-1443. Data: CRCNS hc-11."
        ),
        license="CRCNS terms of use (crcns.org); cite the paper and the data set.",
        chapters=(1,),
        loader="load_place_cells",
    ),
    Dataset(
        name="current_injection",
        filename="allen_478498617.nwb",
        urls=(OSF_DOWNLOAD.format("vf2nj"),),
        sha256="262393d7485a5b39cc80fb55011dcf21f86133f13d088e35439c2559fd4b49fa",
        size_bytes=None,
        description=(
            "Patch-clamp recording of one neuron of mouse primary visual cortex under current "
            "injection (Allen Cell Types Database, specimen 478498617): injected current (A), "
            "membrane voltage, spike times and the sweeps of each protocol ('Noise 1', ...)."
        ),
        citation=(
            "Allen Institute for Brain Science (2015). Allen Cell Types Database, "
            "celltypes.brain-map.org/experiment/electrophysiology/478498617."
        ),
        license="Allen Institute terms of use (alleninstitute.org/legal/terms-use).",
        chapters=(1,),
        loader="load_current_injection",
    ),
    Dataset(
        name="head_direction",
        filename="Mouse32-140822.nwb",
        urls=(OSF_DOWNLOAD.format("jb2gd"),),
        sha256="1a919a033305b8f58b5c3e217577256183b14ed5b436d9c70989dee6dafe0f35",
        size_bytes=None,
        description=(
            "Units of the anterodorsal thalamic nucleus (ADn) and the head direction of a "
            "mouse, during wake exploration and sleep."
        ),
        citation=(
            "Peyrache, A., Lacroix, M. M., Petersen, P. C., & Buzsaki, G. (2015). Internally "
            "organized mechanisms of the head direction sense. Nature Neuroscience, 18(4), "
            "569-575. Data: CRCNS th-1."
        ),
        license="CRCNS terms of use (crcns.org); cite the paper and the data set.",
        chapters=(2,),
        loader="load_head_direction",
    ),
    # Not from NeMoS: the file of the hnn repository (jonescompneurolab/hnn, last changed in
    # commit 0633f75c), the target of hnn-core's "optimize evoked" example. It ships with the
    # package (course_utils/data/files, with the repository's license notice in
    # NOTICE_hnn.txt), so chapter 6 fits it offline; its sha256 is that of the repository's
    # file, and the URL stays as its source.
    Dataset(
        name="evoked_dipole",
        filename="yes_trial_S1_ERP_all_avg.txt",
        urls=(
            "https://raw.githubusercontent.com/jonescompneurolab/hnn/master/data/"
            "MEG_detection_data/yes_trial_S1_ERP_all_avg.txt",
        ),
        sha256="39c8fd83db876106f9d7350319dd495437e1addb923cbecc8513bd6cd234f77d",
        size_bytes=5201,
        description=(
            "Source-localized MEG current dipole (nAm) from the hand area of human primary "
            "somatosensory cortex after a threshold-level tap to the middle finger, averaged "
            "over 100 trials in which the tap was detected; 0-170 ms at about 600 Hz. Two "
            "columns of text: time (ms), dipole (nAm)."
        ),
        citation=(
            "Jones, S. R., Pritchett, D. L., Stufflebeam, S. M., Hamalainen, M., & Moore, C. I. "
            "(2007). Neural correlates of tactile detection: a combined magnetoencephalography "
            "and biophysically based computational modeling study. Journal of Neuroscience, "
            "27(40), 10751-10764. Distributed with HNN (Neymotin et al., 2020, eLife 9:e51214)."
        ),
        license=(
            "Distributed in the hnn repository under Brown University's permission notice "
            "(use, copy and distribute for any purpose other than a commercial product or "
            "service, with the notice kept): see LICENSE in jonescompneurolab/hnn. Shipped "
            "with the course for non-commercial teaching, the notice in "
            "course_utils/data/files/NOTICE_hnn.txt."
        ),
        chapters=(6,),
        loader="load_evoked_dipole",
        bundled=True,
    ),
)

#: Every dataset by short name. Tests replace entries with ``monkeypatch.setitem``.
REGISTRY: dict[str, Dataset] = {entry.name: entry for entry in _ENTRIES}


def dataset_names() -> tuple[str, ...]:
    """Return the short names of all registered datasets, sorted."""
    return tuple(sorted(REGISTRY))


def get_dataset(name: str) -> Dataset:
    """Return the registry entry of one dataset.

    Parameters
    ----------
    name
        Short dataset name, e.g. ``"place_cells"``.

    Returns
    -------
    Dataset
        The entry.

    Raises
    ------
    UnknownDatasetError
        A ``KeyError`` naming the known datasets (and the closest one, for a typo or a
        file name).
    """
    if name in REGISTRY:
        return REGISTRY[name]
    by_filename = {entry.filename: entry.name for entry in REGISTRY.values()}
    if name in by_filename:
        hint = f" {name!r} is the file of dataset {by_filename[name]!r}: use that name."
    else:
        close = difflib.get_close_matches(str(name), list(REGISTRY), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UnknownDatasetError(f"Unknown dataset {name!r}.{hint} Known datasets: {', '.join(dataset_names())}.")


def describe_datasets() -> str:
    """Return a plain-text listing of every dataset: name, file, size, chapters, description.

    Returns
    -------
    str
        One paragraph per dataset; sizes that are not known read ``size unknown``.
    """
    blocks = []
    for name in dataset_names():
        entry = REGISTRY[name]
        chapters = ", ".join(str(c) for c in entry.chapters)
        blocks.append(
            f"{entry.name}: {entry.filename} ({entry.size_text}; chapter {chapters}"
            f"{'; ships with the package' if entry.bundled else ''})\n"
            f"  {entry.description}\n"
            f"  Cite: {entry.citation}\n"
            f"  License: {entry.license}"
        )
    return "\n\n".join(blocks)
