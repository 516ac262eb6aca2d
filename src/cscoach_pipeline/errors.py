"""Errors that mean "this consultation's input is bad", as opposed to a bug or an outage.

Their message is shown verbatim to supervisors (Dagster UI) and analysts
(`consultation_status.error`), so it must say what is wrong in plain words.
"""


class ConsultationInputError(Exception):
    """The file itself cannot be processed (empty, corrupt, too large, no audio, not text...)."""


class UnsupportedFileType(ConsultationInputError):
    """The object's extension is not one the pipeline reads."""
