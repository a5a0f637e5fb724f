"""The sentence every result carries: a screening aid, never a diagnosis."""

DISCLAIMER = (
    "skinscreen is a screening aid for research and triage, not a medical device and never a "
    "diagnosis. Any lesion that worries you, or that changes, must be seen by a clinician."
)
