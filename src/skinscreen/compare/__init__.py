"""Evolving lesions: compare the same lesion across visits (registration, change, noise floor,
change report) and read the scale from a ruler in the photo. A screening aid, never a diagnosis.
"""

from skinscreen.compare.change import Comparison, compare_photos
from skinscreen.compare.registration import NotSameLesionError, Registration, register

__all__ = ["Comparison", "NotSameLesionError", "Registration", "compare_photos", "register"]
