"""Cross-resolution person re-identification workbook.

The notebooks in ``notebooks/`` are thin: every piece of logic lives here and is unit-tested.

Sub-packages
------------
``lib.data``     dataset readers (original release layouts), the embedded synthetic dataset,
                 MLR synthesis, identity splits, torch datasets and samplers.
``lib.metrics``  ranking evaluation (CMC / mAP / mINP), single-shot protocol, feature extraction.
``lib.utils``    seeding, atomic file writes, repository paths.
"""

__version__ = "0.1.0"
