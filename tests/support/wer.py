"""Word error rate as the speech tests measure it: jiwer over lower-cased words without
punctuation, the same normalisation on both sides."""

from __future__ import annotations

import jiwer

_normalise = jiwer.Compose(
    [
        jiwer.ToLowerCase(),
        jiwer.RemovePunctuation(),
        jiwer.RemoveMultipleSpaces(),
        jiwer.Strip(),
        jiwer.ReduceToListOfListOfWords(),
    ]
)


def word_error_rate(reference: str, hypothesis: str) -> float:
    return float(
        jiwer.wer(
            reference, hypothesis, reference_transform=_normalise, hypothesis_transform=_normalise
        )
    )
