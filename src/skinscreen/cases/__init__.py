"""Opt-in local case history: lesions (an id, a body site) and their visits (photo + report).

Off by default: nothing is stored unless the user names a database file (``skinscreen cases
--db FILE``, ``$SKINSCREEN_CASES``, or the web app's setting). One SQLite file (Python's
``sqlite3``), kept where the user chose; deleting a lesion removes its rows and overwrites their
bytes (``secure_delete``, then ``VACUUM``), so nothing of it is left in the file.
"""

from skinscreen.cases.store import CASES_ENV, CaseStore, LesionRecord, VisitRecord, open_store

__all__ = ["CASES_ENV", "CaseStore", "LesionRecord", "VisitRecord", "open_store"]
