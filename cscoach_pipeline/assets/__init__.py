from .consultation import (
    consultation_analysis,
    consultation_audio,
    consultation_upload,
    quality_metrics,
    raw_transcript,
    transcript,
)

consultation_assets = [
    consultation_upload,
    consultation_audio,
    raw_transcript,
    transcript,
    consultation_analysis,
    quality_metrics,
]

__all__ = ["consultation_assets"]
