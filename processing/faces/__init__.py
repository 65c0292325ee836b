"""Face detectors: a CNN (BlazeFace) that draws the anonymization mask, Haar cascades that check it.

Two detectors of different kinds, so the check after the encode is not fooled
by the same blind spots as the mask.
"""

from .blazeface import BlazeFace, Face, ModelMissing
from .haar import Box, FaceDetector

__all__ = ["BlazeFace", "Box", "Face", "FaceDetector", "ModelMissing"]
