from .consultation import (
    analyse_and_score,
    consultation_audio,
    consultation_upload,
    raw_transcript,
    transcript,
)

consultation_assets = [
    consultation_upload,
    consultation_audio,
    raw_transcript,
    transcript,
    analyse_and_score,  # materializes consultation_analysis and quality_metrics
]

__all__ = ["consultation_assets"]
