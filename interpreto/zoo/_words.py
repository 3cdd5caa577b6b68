"""Word lists written in code: the WordPiece vocabulary of the tiny BERT and the corpus of the tiny BPEs."""

from __future__ import annotations

import random

BERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

DETERMINERS = (
    "the", "a", "an", "this", "that", "these", "those", "my", "your", "our", "their", "every", "some",
)  # fmt: skip
PRONOUNS = ("i", "you", "he", "she", "it", "we", "they", "me", "him", "her", "us", "them", "his", "its")
PREPOSITIONS = (
    "in", "on", "at", "by", "for", "with", "about", "from", "to", "of", "into", "over", "under",
    "near", "after", "before", "during", "without", "behind", "between",
)  # fmt: skip
CONJUNCTIONS = ("and", "but", "or", "so", "because", "while", "if", "when", "than", "then")
AUXILIARIES = (
    "is", "are", "was", "were", "be", "been", "am", "do", "does", "did", "has", "have", "had",
    "will", "would", "can", "could", "should", "may", "might", "must", "not", "no", "yes",
)  # fmt: skip
ADVERBS = (
    "very", "really", "quite", "too", "also", "just", "still", "never", "always", "often", "here",
    "there", "now", "today", "again", "soon", "almost", "rather", "only", "even", "well",
)  # fmt: skip
NOUNS = (
    "cat", "dog", "bird", "horse", "fish", "man", "woman", "child", "friend", "teacher", "doctor",
    "student", "family", "people", "house", "home", "room", "door", "window", "table", "chair",
    "bed", "car", "bus", "train", "road", "street", "city", "town", "country", "world", "river",
    "lake", "sea", "mountain", "tree", "garden", "park", "school", "office", "shop", "market",
    "book", "paper", "letter", "story", "song", "music", "film", "movie", "game", "phone",
    "computer", "picture", "food", "bread", "water", "coffee", "tea", "apple", "dinner", "lunch",
    "breakfast", "day", "night", "morning", "evening", "week", "year", "time", "hour", "minute",
    "weather", "rain", "snow", "sun", "moon", "sky", "color", "idea", "plan", "question",
    "answer", "problem", "result", "service", "price", "money", "work", "job", "team", "box",
    "bag", "hat", "shirt", "shoe", "key", "clock", "lamp", "cup", "plate", "spoon", "glass",
    "hotel", "trip", "flight", "ticket", "restaurant", "meal", "waiter", "show", "actor", "plot",
)  # fmt: skip
VERBS = (
    "see", "saw", "look", "watch", "read", "write", "walk", "run", "go", "went", "come", "came",
    "eat", "ate", "drink", "make", "made", "take", "took", "give", "gave", "find", "found",
    "think", "know", "want", "like", "love", "hate", "need", "feel", "seem", "become", "keep",
    "open", "close", "play", "sing", "buy", "sell", "bring", "carry", "call", "talk", "say",
    "said", "tell", "ask", "help", "try", "start", "stop", "wait", "visit", "order", "cook",
    "clean", "paint", "build", "move", "sit", "stand", "sleep", "live", "leave", "meet", "pay",
)  # fmt: skip
ADJECTIVES = (
    "good", "bad", "great", "awful", "nice", "terrible", "happy", "sad", "fine", "poor", "best",
    "worst", "excellent", "horrible", "wonderful", "boring", "funny", "lovely", "ugly", "pretty",
    "big", "small", "large", "little", "long", "short", "old", "new", "young", "hot", "cold",
    "warm", "cool", "fast", "slow", "early", "late", "easy", "hard", "simple", "clear", "dark",
    "light", "red", "blue", "green", "yellow", "white", "black", "brown", "quiet", "loud", "busy",
    "empty", "full", "clean", "dirty", "cheap", "rich", "strong", "weak", "soft", "bright",
)  # fmt: skip
NUMBERS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
PREFIX_WORDS = ("un", "re", "dis", "pre", "over", "under")

WHOLE_WORDS = (
    DETERMINERS + PRONOUNS + PREPOSITIONS + CONJUNCTIONS + AUXILIARIES + ADVERBS + NOUNS + VERBS
    + ADJECTIVES + NUMBERS + PREFIX_WORDS
)  # fmt: skip

# Continuation pieces, so that words outside WHOLE_WORDS split into several tokens
# ("unbelievable" -> "un", "##believ", "##able"; "cats" -> "cat", "##s").
SUFFIX_PIECES = (
    "##s", "##es", "##ed", "##ing", "##ly", "##er", "##ers", "##est", "##able", "##ible", "##ness",
    "##ful", "##less", "##ment", "##tion", "##ity", "##ous", "##ive", "##al", "##ize", "##believ",
    "##expect", "##happy", "##like", "##do", "##pay",
)  # fmt: skip

LETTERS = tuple("abcdefghijklmnopqrstuvwxyz")
DIGITS = tuple("0123456789")
PUNCTUATION = tuple(".,!?;:'\"()-/&%$#@*+=<>[]_")


def wordpiece_vocabulary() -> list[str]:
    """Return the tiny BERT vocabulary: special tokens, then words, pieces, characters, digits and punctuation."""
    characters = LETTERS + DIGITS + PUNCTUATION
    continuation_characters = tuple(f"##{character}" for character in LETTERS + DIGITS)
    tokens = BERT_SPECIAL_TOKENS + WHOLE_WORDS + SUFFIX_PIECES + characters + continuation_characters
    return list(dict.fromkeys(tokens))  # drop repeats, keep first position


def bpe_training_corpus(n_sentences: int = 400, seed: int = 0) -> list[str]:
    """Return ``n_sentences`` short English-like sentences, the same for the same ``seed``."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(n_sentences):
        subject = f"{rng.choice(DETERMINERS)} {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
        verb_phrase = (
            f"{rng.choice(ADVERBS)} {rng.choice(VERBS)}s {rng.choice(DETERMINERS)} {rng.choice(NOUNS)}"
        )
        place = f"{rng.choice(PREPOSITIONS)} the {rng.choice(NOUNS)}"
        ending = rng.choice((".", ".", ".", "!", "?"))
        sentence = f"{subject} {verb_phrase} {place}{ending}"
        sentences.append(sentence[0].upper() + sentence[1:])
    return sentences
