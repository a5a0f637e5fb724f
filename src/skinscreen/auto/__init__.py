"""Automatic lesion localisation: find the lesion's box without user input.

Two entry points:

- :func:`find_lesion_boxes` ``(image, predictor=None) -> list[Candidate]``: every lesion
  candidate, best first, boxes XYXY in photo pixels. Without a predictor the candidates are
  classical (colour contrast to the surrounding skin, see :mod:`skinscreen.auto.classical`); with
  a predictor that holds the encoded photo each candidate is refined by decoder-only iterations
  and re-scored by the decoder's IoU head (:mod:`skinscreen.auto.refine`). An empty list means no
  lesion was found: nothing is invented.
- :func:`auto_box` ``(image, predictor) -> (box | None, info)``: the single box
  ``LesionPredictor.predict()`` uses when no box is given.

A screening aid, never a diagnosis.
"""

from skinscreen.auto.locate import Candidate, auto_box, find_lesion_boxes

__all__ = ["Candidate", "auto_box", "find_lesion_boxes"]
