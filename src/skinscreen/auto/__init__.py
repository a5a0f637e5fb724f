"""Automatic lesion localisation: find the lesion's box without user input.

Two entry points:

- :func:`find_lesion_boxes` ``(image, predictor=None) -> list[Candidate]``: every lesion
  candidate, best first, boxes XYXY in photo pixels. Without a predictor the candidates are
  classical (colour contrast to the surrounding skin, see :mod:`skinscreen.auto.classical`); with
  a predictor the top three are checked with one decoder run each (no encoder run when the
  predictor already holds the photo) and those where the decoder finds nothing are dropped
  (:mod:`skinscreen.auto.refine` also offers decoder-only box refinement). An empty list means
  no lesion was found: nothing is invented.
- :func:`auto_box` ``(image, predictor) -> (box | None, info)``: the single box
  ``LesionPredictor.predict()`` uses when no box is given.

A screening aid, never a diagnosis.
"""

from skinscreen.auto.locate import Candidate, auto_box, find_lesion_boxes

__all__ = ["Candidate", "auto_box", "find_lesion_boxes"]
