"""Terms for keywords in any language: tokens, stop words, and one key per family of word forms.

* Words in scripts with spaces are words of two or more characters with at least one letter;
  a word with an apostrophe inside stays whole ("pudd'nhead", typographic ’ too), less a
  one-letter elision ("l'application", "j'ouvre"); a contraction whose parts are stop words
  ("don't", "you're", "dell'anno") is dropped or cut to the part that is not.
  Chinese is cut into words by jieba; Japanese keeps kanji compounds and katakana words and
  drops short hiragana runs (particles, endings); Thai, Lao, Khmer and Myanmar text, which has
  no spaces and no tokenizer here, becomes overlapping trigrams of letters (with their marks).
* Stop words: ``auto`` takes the stop words of every language among en/es/de/fr/pt/it/nl/zh/ja
  that a noticeable share of the texts is written in (``detect_languages``; English is
  scikit-learn's list, the others come from the stop-words package); ``english``, ``none``, or
  a comma list of codes (``en,de``) choose instead.
* Near-duplicate terms ("crash", "crashes", "crashed"; "app", "apps") share a key: the Snowball
  stem of each word, in the main language. The keyword shown is the key's most common form.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

log = logging.getLogger(__name__)

LANGUAGES = {  # code -> name in the stop-words and snowballstemmer packages
    "en": "english",
    "es": "spanish",
    "de": "german",
    "fr": "french",
    "pt": "portuguese",
    "it": "italian",
    "nl": "dutch",
    "zh": "chinese",
    "ja": "japanese",
}
DETECT_SHARE = 0.005  # a language counts when this share of the texts (and at least 2) is in it
DETECT_SAMPLE = 2_000  # texts looked at to detect languages
ENGLISH_EXTRA = (  # what contractions leave, with and without the apostrophe; forms of "get"
    "don didn doesn isn wasn aren weren hasn haven hadn wouldn shouldn couldn mustn ain ll ve re "
    "dont didnt doesnt isnt wasnt arent werent hasnt havent wouldnt shouldnt couldnt cant im ive "
    "got gets getting gotten wont shant neednt mightnt daren"
).split()
# Japanese function words the stop-words package lacks (runs of hiragana up to 2 are dropped anyway)
JAPANESE_EXTRA = (
    "ました ません ている ています でした ください します しました こと もの よう ため という "
    "です ます ある いる なる する ない すると ですが けれど けれども そして それから ような ように"
).split()

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HIRAGANA = "\u3040-\u309f"
_KATAKANA = "\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"
_SOUTHEAST = "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"  # Thai, Lao, Myanmar, Khmer
_SPACELESS = _HAN + _HIRAGANA + _KATAKANA + _SOUTHEAST
_LETTERS = rf"(?:(?![{_SPACELESS}])\w)+"
TOKEN = re.compile(
    rf"(?P<hira>[{_HIRAGANA}]+)|(?P<kata>[{_KATAKANA}]+)|(?P<han>[{_HAN}]+)|(?P<sea>[{_SOUTHEAST}]+)"
    rf"|(?P<word>{_LETTERS}(?:'{_LETTERS})*)"
)
WORD = re.compile(r"\w+(?:'\w+)*")
APOSTROPHES = str.maketrans({"\u2019": "'", "\u02bc": "'"})  # typographic and modifier-letter apostrophes
ELISION = re.compile(r"^(?:[^\W\d_]')+")  # l'application, j'ouvre, n'est: the article is no keyword
HAS_SPACELESS = re.compile(f"[{_SPACELESS}]")
HAS_KANA = re.compile(f"[{_HIRAGANA}{_KATAKANA}]")
HAS_CJK = re.compile(f"[{_HAN}{_HIRAGANA}{_KATAKANA}]")
HAS_LETTER = re.compile(r"[^\W\d_]")
HAS_DIGIT = re.compile(r"\d")


def mixes_letters_and_digits(term: str) -> bool:
    """True when a word of ``term`` has both letters and digits ("kaa24242", "covid19")."""
    return any(HAS_DIGIT.search(w) and HAS_LETTER.search(w) for w in term.split())


def is_spaceless(term: str) -> bool:
    """True for a token of a script written without spaces (joined without one in phrases)."""
    return bool(term) and bool(re.match(f"[{_SPACELESS}]", term[0]))


def is_letter_ngram(term: str) -> bool:
    """True for a letter trigram of Thai, Lao, Khmer or Myanmar text (never part of a phrase)."""
    return bool(term) and bool(re.match(f"[{_SOUTHEAST}]", term[0]))


def overlaps(a: str, b: str) -> bool:
    """Two terms of spaceless scripts that share two characters in a row ("登录失败" and
    "登录一直", or two overlapping Thai trigrams): near-duplicates for a keyword list."""
    pairs = {a[i : i + 2] for i in range(len(a) - 1)}
    return any(b[i : i + 2] in pairs for i in range(len(b) - 1))


@lru_cache(maxsize=1)
def _jieba():
    try:
        import jieba
    except ImportError:  # character bigrams instead
        log.info("jieba is not installed: Chinese is split into character pairs")
        return None
    jieba.setLogLevel(logging.WARNING)
    return jieba


def _ngrams(run: str, n: int) -> list[str]:
    return [run] if len(run) <= n else [run[i : i + n] for i in range(len(run) - n + 1)]


def _letter_ngrams(run: str, n: int) -> list[str]:
    """``n``-grams of letters with their combining marks (Thai vowels and tones stay on their
    consonant), so no term starts with a mark."""
    letters: list[str] = []
    for ch in run:
        if letters and unicodedata.category(ch) in ("Mn", "Mc"):
            letters[-1] += ch
        else:
            letters.append(ch)
    if len(letters) <= n:
        return ["".join(letters)]
    return ["".join(letters[i : i + n]) for i in range(len(letters) - n + 1)]


def tokens(text: str, japanese: bool | None = None) -> list[str]:
    """Lower-cased tokens of ``text`` in reading order (see the module docstring)."""
    text = text.lower().translate(APOSTROPHES)
    if not HAS_SPACELESS.search(text):  # the common case, at the regex engine's speed
        return [w for w in map(_word, WORD.findall(text)) if len(w) >= 2 and HAS_LETTER.search(w)]
    if japanese is None:
        japanese = bool(HAS_KANA.search(text))
    out: list[str] = []
    for match in TOKEN.finditer(text):
        kind, piece = match.lastgroup, match.group()
        if kind == "word":
            piece = _word(piece)
            if len(piece) >= 2 and HAS_LETTER.search(piece):
                out.append(piece)
        elif kind == "kata":
            if len(piece) >= 2:
                out.append(piece)
        elif kind == "hira":
            if len(piece) >= 3:  # shorter runs are particles and verb endings
                out.append(piece)
        elif kind == "han":
            if japanese:
                out.extend(_ngrams(piece, 2) if len(piece) > 4 else [piece])
            else:
                cutter = _jieba()
                if cutter is None:
                    out.extend(_ngrams(piece, 2))
                else:  # single characters are mostly particles; keywords need more
                    out.extend(w for w in cutter.lcut(piece, HMM=True) if len(w) >= 2)
        else:
            out.extend(_letter_ngrams(piece, 3))
    return out


def _word(word: str) -> str:
    return ELISION.sub("", word) if "'" in word else word


@lru_cache(maxsize=32)
def stop_words_of(code: str) -> frozenset[str]:
    """The stop words of one language code (``LANGUAGES``); English is scikit-learn's list plus
    the pieces contractions leave ("didn", "doesn", ...)."""
    if code == "en":
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        return frozenset(ENGLISH_STOP_WORDS) | frozenset(ENGLISH_EXTRA)
    from stop_words import get_stop_words

    words = {w.lower() for w in get_stop_words(LANGUAGES[code])}
    if code == "ja":
        words |= set(JAPANESE_EXTRA)
    return frozenset(words)


def detect_languages(texts: Iterable[str], sample: int = DETECT_SAMPLE) -> list[str]:
    """Language codes present in ``texts``, the main one first (English when none shows).

    Each text votes for the language with most distinct stop words in it (Chinese or Japanese
    when a quarter of its characters are theirs; another language than English needs two
    distinct stop words and no tie);
    a language counts when at least two texts and ``DETECT_SHARE`` of the texts looked at chose
    it."""
    votes: Counter[str] = Counter()
    latin = ("en", "es", "de", "fr", "pt", "it", "nl")
    lists = {code: stop_words_of(code) for code in latin}
    looked = 0
    for text in texts:
        if looked >= sample:
            break
        looked += 1
        lowered = str(text).lower()
        cjk = len(HAS_CJK.findall(lowered))
        if cjk:
            if cjk >= 0.25 * len(re.findall(r"\w", lowered)):  # not a stray character in Latin text
                votes["ja" if HAS_KANA.search(lowered) else "zh"] += 1
            continue
        words = set(re.findall(r"[^\W\d_]+", lowered))
        hits = {code: len(words & lists[code]) for code in latin}
        best = max(hits.values(), default=0)
        top = [code for code in latin if hits[code] == best]
        if top[0] == "en" and best > 0:
            votes["en"] += 1
        elif len(top) == 1 and best >= 2:  # one stray "de" or "la" is no evidence of a language
            votes[top[0]] += 1
    found = [code for code, count in votes.most_common() if count >= 2 and count / looked >= DETECT_SHARE]
    return found or ["en"]


def resolve_stop_words(setting: str, texts: list[str]) -> tuple[frozenset[str], list[str]]:
    """(stop words, language codes with the main one first) for ``label.stop_words``."""
    if setting == "none":
        return frozenset(), detect_languages(texts)
    if setting == "english":
        return stop_words_of("en"), ["en"]
    codes = detect_languages(texts) if setting == "auto" else [c.strip() for c in setting.split(",")]
    words: set[str] = set()
    for code in codes:
        words |= stop_words_of(code)
    return frozenset(words), codes


class Stemmer:
    """One key per family of word forms, by the Snowball stemmer of the main language (a word
    in a script without spaces is its own key)."""

    def __init__(self, codes: list[str]):
        language = next((LANGUAGES[c] for c in codes if c not in ("zh", "ja")), "english")
        self._stem = None
        try:
            import snowballstemmer

            self._stem = snowballstemmer.stemmer(language)
        except (ImportError, KeyError):  # keys are then the words themselves
            log.info("no Snowball stemmer for %s: word forms are not joined", language)
        self._cache: dict[str, str] = {}

    def __call__(self, word: str) -> str:
        key = self._cache.get(word)
        if key is None:
            key = word if self._stem is None or is_spaceless(word) else self._stem.stemWord(word)
            self._cache[word] = key
        return key


def join(words: Iterable[str]) -> str:
    """A phrase: words joined by a space, except between two words of spaceless scripts."""
    out = ""
    for word in words:
        if out and not (is_spaceless(out[-1]) and is_spaceless(word)):
            out += " "
        out += word
    return out


class Analyzer:
    """For ``CountVectorizer(analyzer=...)``: the 1..``max_ngram`` term keys of a text, with stop
    words removed (a phrase never spans one) and word forms joined. It counts the words it sees,
    so ``surface`` shows each key in its most common form."""

    def __init__(self, stop_words: frozenset[str], codes: list[str], max_ngram: int):
        self.stop_words = stop_words
        self.stem = Stemmer(codes)
        self.max_ngram = max_ngram
        self.words: Counter[str] = Counter()
        self._forms: dict[str, str] | None = None

    def __call__(self, text: str) -> list[str]:
        keys: list[str] = []
        run: list[str] = []
        for key in self._keys(text, count=True):
            if key is None:
                self._phrases(run, keys)
                run = []
            else:
                run.append(key)
        self._phrases(run, keys)
        return keys

    def word_keys(self, text: str) -> list[str]:
        """The keys of the words of ``text`` that can be keywords (no stop words, no phrases),
        normalised as keywords are; ``text`` may be a keyword itself."""
        return [key for key in self._keys(text) if key is not None]

    def _keys(self, text: str, count: bool = False) -> list[str | None]:
        """One key per word of ``text`` in reading order; None for a stop word (phrases break there)."""
        words = [
            self._unstopped(w) if "'" in w else (None if w in self.stop_words else w) for w in tokens(text)
        ]
        if count:
            self.words.update(w for w in words if w is not None)
        stem = self.stem
        return [None if word is None else stem(word) for word in words]

    def _unstopped(self, word: str) -> str | None:
        """A word with apostrophes less its leading stop words ("dell'anno" -> "anno"); None when
        it is a stop word with or without its apostrophes ("don't", "it's") or nothing is left
        ("you're", "he'd")."""
        stop = self.stop_words
        while True:
            if word in stop or word.replace("'", "") in stop:
                return None
            head, _, rest = word.partition("'")
            if not rest or not (head in stop or f"{head}'" in stop):
                break
            word = rest
        return word if len(word) >= 2 and HAS_LETTER.search(word) else None

    def _phrases(self, run: list[str], keys: list[str]) -> None:
        keys.extend(run)
        if self.max_ngram < 2 or len(run) < 2:
            return
        # letter trigrams overlap each other already: phrases of them would repeat letters
        pieces = [run]
        if any(is_letter_ngram(k) for k in run):
            pieces, part = [], []
            for key in run + [""]:
                if key and not is_letter_ngram(key):
                    part.append(key)
                else:
                    pieces.append(part)
                    part = []
        for piece in pieces:
            for n in range(2, min(self.max_ngram, len(piece)) + 1):
                keys.extend(" ".join(piece[i : i + n]) for i in range(len(piece) - n + 1))

    def surface(self, key: str) -> str:
        """``key`` shown with each word in its most common form (ties: the shortest, then
        alphabetical), e.g. "crash app" -> "crashes app"."""
        if self._forms is None:
            best: dict[str, tuple[int, int, str]] = {}
            for word, count in self.words.items():
                if word in self.stop_words:
                    continue
                rank = (-count, len(word), word)
                stem = self.stem(word)
                if stem not in best or rank < best[stem]:
                    best[stem] = rank
            self._forms = {stem: rank[2] for stem, rank in best.items()}
        return join(self._forms.get(part, part) for part in key.split(" "))
