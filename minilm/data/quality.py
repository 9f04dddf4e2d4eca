"""Quality filters: which documents are worth training on.

Two kinds, as in the data pipelines of Gopher, C4, CCNet and FineWeb:

1. **Heuristic rules** (``heuristic_reasons``): cheap statistics of a document with thresholds,
   from Gopher (Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights from
   Training Gopher", appendix A.1.1 and table A1) and C4 (Raffel et al. 2020, "Exploring the
   Limits of Transfer Learning with a Unified Text-to-Text Transformer", section 2.2). They catch
   what is obviously not prose: too short, symbol soup, menus, repeated lines, keyword spam, code.
2. **A model-based filter** (``ReferenceModel``): a character n-gram language model trained on
   text we trust, scoring a document by how surprised it is (bits per character). CCNet (Wenzek
   et al. 2020) scored Common Crawl with a 5-gram Kneser-Ney model of Wikipedia and split it into
   head, middle and tail by perplexity; here, documents less likely than nearly all of the
   reference's own held-out text are dropped. "Quality" here means "like the reference":
   a model trained on Shakespeare also finds a good modern news article surprising, which is the
   bias every reference-based filter has (choose the reference with care).

``low_quality_examples`` writes synthetic junk of the usual kinds to measure both against.

>>> heuristic_reasons("Buy cheap shoes! " * 40)
['no_stop_words', 'top_ngram_2']
"""

from __future__ import annotations

import math
import pickle
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .cleaning import check_column, check_not_one_text, check_str

STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
BULLETS = ("•", "·", "‣", "◦", "▪", "●", "-", "*", "–")
_LETTER = re.compile(r"[^\W\d_]")
_PUNCTUATION = "\"'.,;:!?()[]{}<>«»“”‘’—–-…*#/\\|"


@dataclass(frozen=True)
class QualityThresholds:
    """Thresholds of the heuristic rules. Defaults are the papers' values unless noted.

    Gopher (Rae et al. 2021, A.1.1): 50 to 100,000 words; mean word length 3 to 10 characters;
    at most 0.1 hash symbols and 0.1 ellipses per word; at most 90% of lines starting with a
    bullet and 30% ending with an ellipsis; at least 80% of words with a letter; at least two of
    the stop words. Gopher repetition (table A1): at most 30% duplicate lines and paragraphs, 20%
    of characters in duplicate lines and paragraphs; the most frequent 2-, 3-, 4-gram covering at
    most 20%, 18%, 16% of the characters; duplicated 5- to 10-grams covering at most 15% down to
    10%. C4 (Raffel et al. 2020): no "lorem ipsum", no curly bracket.

    Ours: ``max_duplicate_line_fraction`` is 0.5, not Gopher's 0.3, because in a play the
    speakers' names are lines of their own and repeat: up to 38% of a scene's lines are repeats,
    and at 0.3 this one rule drops 21 of Shakespeare's 783 scenes. (Names are short, so the
    character-based duplicate-line rule, at Gopher's 0.2, still applies unchanged.)
    ``max_uppercase_fraction`` (letters in capitals) is not from either paper; it catches
    shouting, which every rule above lets through.
    """

    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1
    max_bullet_line_fraction: float = 0.9
    max_ellipsis_line_fraction: float = 0.3
    min_alpha_word_fraction: float = 0.8
    min_stop_words: int = 2
    max_duplicate_line_fraction: float = 0.5
    max_duplicate_paragraph_fraction: float = 0.3
    max_duplicate_line_char_fraction: float = 0.2
    max_duplicate_paragraph_char_fraction: float = 0.2
    max_top_ngram_char_fraction: tuple[tuple[int, float], ...] = ((2, 0.20), (3, 0.18), (4, 0.16))
    max_duplicate_ngram_char_fraction: tuple[tuple[int, float], ...] = (
        (5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))
    no_lorem_ipsum: bool = True
    no_curly_brackets: bool = True
    max_uppercase_fraction: float = 0.5

    def __post_init__(self):
        from ..core.checks import ConfigError, check_range

        check_range("min_words", self.min_words, 0, 10**9)
        check_range("max_words", self.max_words, max(1, self.min_words), 10**9)
        check_range("min_mean_word_length", self.min_mean_word_length, 0.0, 100.0)
        check_range("max_mean_word_length", self.max_mean_word_length, self.min_mean_word_length, 1000.0)
        check_range("min_stop_words", self.min_stop_words, 0, len(STOP_WORDS))
        for name in ("max_symbol_word_ratio", "max_bullet_line_fraction", "max_ellipsis_line_fraction",
                     "min_alpha_word_fraction", "max_duplicate_line_fraction", "max_duplicate_paragraph_fraction",
                     "max_duplicate_line_char_fraction", "max_duplicate_paragraph_char_fraction",
                     "max_uppercase_fraction"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        for name in ("no_lorem_ipsum", "no_curly_brackets"):
            if not isinstance(getattr(self, name), bool):  # a string such as 'no' would count as True
                raise ConfigError(f"{name}={getattr(self, name)!r} must be True or False")
        for n, fraction in self.max_top_ngram_char_fraction + self.max_duplicate_ngram_char_fraction:
            check_range("n-gram length", n, 1, 100)
            check_range(f"{n}-gram fraction", fraction, 0.0, 1.0)


DEFAULT_THRESHOLDS = QualityThresholds()


def _duplicates(items: list[str]) -> tuple[int, int]:
    """(how many items repeat an earlier one, how many characters those repeats hold).

    >>> _duplicates(["a", "bb", "a", "bb", "a"])
    (3, 4)
    """
    seen, count, chars = set(), 0, 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars


def _check_words(caller: str, words) -> None:
    # A str would be read as a list of one-character words.
    if not isinstance(words, (list, tuple)):
        raise TypeError(f"{caller} needs words to be a list of str, not {type(words).__name__}")


def top_ngram_chars(words: list[str], n: int) -> int:
    """Characters covered by the most frequent word n-gram (its length times its count), as Gopher
    measures it; 0 when no n-gram occurs twice (in a short text one n-gram is a large share).

    >>> top_ngram_chars("buy now buy now buy now".split(), 2), top_ngram_chars(["lorem", "ipsum"], 2)
    (18, 0)
    """
    _check_words("top_ngram_chars", words)
    grams = Counter(zip(*(words[i:] for i in range(n))))
    if not grams:
        return 0
    gram, count = grams.most_common(1)[0]
    return sum(map(len, gram)) * count if count > 1 else 0


def duplicate_ngram_chars(words: list[str], n: int) -> int:
    """Characters of the words covered by an n-gram that repeats an earlier one, each word counted
    once however many repeated n-grams overlap it (Gopher's "duplicate n-gram character fraction").

    >>> duplicate_ngram_chars("a b c d e a b c d e f".split(), 5)
    5
    """
    _check_words("duplicate_ngram_chars", words)
    if len(words) < n:
        return 0
    grams = list(zip(*(words[i:] for i in range(n))))
    # gram -> where it first occurs (filling from the end, so that the earliest index wins).
    first = dict(zip(reversed(grams), range(len(grams) - 1, -1, -1)))
    first_index = np.fromiter(map(first.__getitem__, grams), dtype=np.int64, count=len(grams))
    starts = np.flatnonzero(first_index != np.arange(len(grams)))  # n-grams seen before
    # Mark the words each repeated n-gram covers: +1 where it starts, -1 after it ends, running sum.
    cover = np.zeros(len(words) + 1, dtype=np.int64)
    np.add.at(cover, starts, 1)
    np.add.at(cover, starts + n, -1)
    covered = np.cumsum(cover[:-1]) > 0
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    return int(lengths[covered].sum())


def heuristic_reasons(text: str, thresholds: QualityThresholds = DEFAULT_THRESHOLDS) -> list[str]:
    """Why a document fails the heuristic rules (the names of the rules it breaks); [] = keep it.

    Every rule looks at the whole document. Verse breaks line-level rules (C4 keeps only lines that
    end in punctuation and have 5 words or more): its lines are short, and most lack stop words.

    >>> heuristic_reasons("Lorem ipsum dolor sit amet.")
    ['too_few_words', 'no_stop_words', 'lorem_ipsum']
    """
    check_str("heuristic_reasons", "text", text)
    t = thresholds
    reasons = []
    tokens = text.split()
    words = [w.strip(_PUNCTUATION) for w in tokens]
    words = [w for w in words if w]  # a token of punctuation only is not a word
    n_words = len(words)
    if n_words < t.min_words:
        reasons.append("too_few_words")
    if n_words > t.max_words:
        reasons.append("too_many_words")
    if words:
        mean_length = sum(map(len, words)) / n_words
        if not t.min_mean_word_length <= mean_length <= t.max_mean_word_length:
            reasons.append("mean_word_length")
        symbols = max(text.count("#"), text.count("...") + text.count("…"))
        if symbols / n_words > t.max_symbol_word_ratio:
            reasons.append("symbol_word_ratio")
    if tokens and sum(1 for w in tokens if _LETTER.search(w)) / len(tokens) < t.min_alpha_word_fraction:
        reasons.append("non_alpha_words")
    vocabulary = {w.lower() for w in words}
    if sum(w in vocabulary for w in STOP_WORDS) < t.min_stop_words:
        reasons.append("no_stop_words")

    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if lines:
        if sum(line.startswith(BULLETS) for line in lines) / len(lines) > t.max_bullet_line_fraction:
            reasons.append("bullet_lines")
        if sum(line.endswith(("...", "…")) for line in lines) / len(lines) > t.max_ellipsis_line_fraction:
            reasons.append("ellipsis_lines")

    # Repetition (Gopher table A1). Characters are counted against the whole text.
    n_chars = max(1, len(text))
    dup_lines, dup_line_chars = _duplicates(lines)
    if lines and dup_lines / len(lines) > t.max_duplicate_line_fraction:
        reasons.append("duplicate_lines")
    if dup_line_chars / n_chars > t.max_duplicate_line_char_fraction:
        reasons.append("duplicate_line_chars")
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    dup_paragraphs, dup_paragraph_chars = _duplicates(paragraphs)
    if paragraphs and dup_paragraphs / len(paragraphs) > t.max_duplicate_paragraph_fraction:
        reasons.append("duplicate_paragraphs")
    if dup_paragraph_chars / n_chars > t.max_duplicate_paragraph_char_fraction:
        reasons.append("duplicate_paragraph_chars")
    lower_tokens = [w.lower() for w in tokens]
    for n, fraction in t.max_top_ngram_char_fraction:
        if top_ngram_chars(lower_tokens, n) / n_chars > fraction:
            reasons.append(f"top_ngram_{n}")
            break  # one repetition reason is enough, and the rest cost time
    else:
        for n, fraction in t.max_duplicate_ngram_char_fraction:
            if duplicate_ngram_chars(lower_tokens, n) / n_chars > fraction:
                reasons.append(f"duplicate_ngrams_{n}")
                break

    if t.no_lorem_ipsum and "lorem ipsum" in text.lower():
        reasons.append("lorem_ipsum")
    if t.no_curly_brackets and "{" in text:
        reasons.append("curly_bracket")
    letters = sum(map(str.isalpha, text))
    if letters and sum(map(str.isupper, text)) / letters > t.max_uppercase_fraction:
        reasons.append("uppercase")
    return reasons


def passes_heuristics(text: str, thresholds: QualityThresholds = DEFAULT_THRESHOLDS) -> bool:
    """True when ``heuristic_reasons`` finds nothing wrong.

    >>> passes_heuristics("{}")
    False
    """
    check_str("passes_heuristics", "text", text)
    return not heuristic_reasons(text, thresholds)


def heuristic_filter(dataset, thresholds: QualityThresholds = DEFAULT_THRESHOLDS, column: str = "text",
                     num_proc: int | None = None):
    """The documents of a ``datasets.Dataset`` that pass every heuristic rule."""
    check_column(dataset, column)
    return dataset.filter(lambda texts: [passes_heuristics(t, thresholds) for t in texts], input_columns=column,
                          batched=True, num_proc=num_proc, desc="quality heuristics")


# ----------------------------------------------------------------------------------------------
# A model-based filter: perplexity under a character n-gram model of reference text


START = "\x02"  # pads the start of every document (cleaning removes control characters from text)


class ReferenceModel:
    """A character n-gram language model with interpolated Kneser-Ney smoothing.

    ``fit`` counts every n-gram of 1 to ``order`` characters in the reference texts. The
    probability of the next character mixes all orders, longest context first::

        P(c | h) = max(count(h c) - d, 0) / count(h) + d * types(h) / count(h) * P(c | h[1:])

    where ``types(h)`` is how many different characters follow ``h`` (so the mass taken from seen
    continuations by the discount ``d`` is exactly what goes to the shorter context ``h[1:]``).
    The Kneser-Ney twist: the shorter orders count how many *different* characters precede an
    n-gram, not how often it occurs (the word-level example: "Francisco" is frequent, but nearly
    always after "San", so after any other word it should be unlikely). Below order 1 is a uniform
    distribution over the characters seen in training plus one for "any other character". Every
    document starts after ``order - 1`` copies of a start symbol, so its first characters are
    predicted as the opening of a document.

    >>> model = ReferenceModel(order=3).fit(["the cat sat on the mat. " * 20])
    >>> model.bits_per_char("the cat sat on the mat.") < model.bits_per_char("zqx vkj wpf jgh")
    True
    """

    def __init__(self, order: int = 5, discount: float = 0.75):
        from ..core.checks import check_range

        check_range("order", order, 1, 12)
        check_range("discount", discount, 0.01, 0.99)
        self.order, self.discount = order, discount
        self.counts: list[dict[str, int]] = []  # counts[k]: k-gram -> (continuation) count
        self.context_total: list[dict[str, int]] = []  # context_total[k]: (k-1)-gram -> sum of counts[k]
        self.context_types: list[dict[str, int]] = []  # context_types[k]: (k-1)-gram -> distinct next chars
        self.vocab_size = 0

    def fit(self, texts) -> "ReferenceModel":
        """Count the n-grams of ``texts`` (an iterable of documents); returns the model itself."""
        texts = _list_of_texts("ReferenceModel.fit", "texts", [texts] if isinstance(texts, str) else texts,
                               "a str or a list of str")
        texts = [t for t in texts if t]
        if not texts:
            raise ValueError("ReferenceModel.fit needs at least one non-empty text")
        # Highest order: n-grams counted as they occur, one ending at every character.
        counts = [Counter() for _ in range(self.order + 1)]
        for text in texts:
            padded = START * (self.order - 1) + text
            counts[self.order].update(padded[i : i + self.order] for i in range(len(text)))
        # Lower orders: continuation counts, how many distinct characters precede each n-gram.
        for k in range(self.order - 1, 0, -1):
            counts[k] = Counter(gram[1:] for gram in counts[k + 1])
        self.counts = [dict(c) for c in counts]
        self.context_total, self.context_types = [{}], [{}]
        for k in range(1, self.order + 1):
            total, types = defaultdict(int), defaultdict(int)
            for gram, count in self.counts[k].items():
                total[gram[:-1]] += count
                types[gram[:-1]] += 1
            self.context_total.append(dict(total))
            self.context_types.append(dict(types))
        self.vocab_size = len(self.counts[1]) + 1  # + "any other character"
        return self

    def __getstate__(self) -> dict:
        # One bytes object instead of a million dictionary entries: ``datasets`` hashes every map
        # function, with the objects it refers to, in pure Python (and sends them to the worker
        # processes); bytes go through both quickly.
        tables = (self.counts, self.context_total, self.context_types)
        return {"order": self.order, "discount": self.discount, "vocab_size": self.vocab_size,
                "tables": pickle.dumps(tables, protocol=pickle.HIGHEST_PROTOCOL)}

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        self.counts, self.context_total, self.context_types = pickle.loads(state.pop("tables"))
        self.__dict__.update(state)

    def _check_fitted(self) -> None:
        if not self.vocab_size:
            raise RuntimeError("the ReferenceModel is not fitted yet: call .fit(texts) first")

    def char_log2probs(self, text: str) -> list[float]:
        """log2 P(character | the characters before it) for every character of ``text``."""
        check_str("ReferenceModel.char_log2probs", "text", text)
        self._check_fitted()
        d, out = self.discount, []
        padded = START * (self.order - 1) + text
        for i, char in enumerate(text):
            history = padded[i : i + self.order - 1]  # the order - 1 characters before this one
            p = 1.0 / self.vocab_size
            for k in range(1, self.order + 1):
                context = history[len(history) - k + 1 :]
                total = self.context_total[k].get(context)
                if not total:
                    break  # a longer context ending in this one was never seen either
                count = self.counts[k].get(context + char, 0)
                p = (max(count - d, 0.0) + d * self.context_types[k][context] * p) / total
            out.append(math.log2(p))
        return out

    def bits_per_char(self, text: str) -> float:
        """Mean surprise per character in bits (lower = more like the reference); inf for ''."""
        check_str("ReferenceModel.bits_per_char", "text", text)  # None would score inf, as '' does
        if not text:
            return math.inf
        return -sum(self.char_log2probs(text)) / len(text)

    def threshold(self, heldout_texts, quantile: float = 0.99) -> float:
        """The score below which ``quantile`` of held-out reference documents fall: documents above
        it are less like the reference than all but 1 - quantile of the reference itself."""
        from ..core.checks import check_range

        check_range("quantile", quantile, 0.0, 1.0)
        check_not_one_text("threshold", heldout_texts, "held-out texts")  # else scored character by character
        heldout_texts = _list_of_texts("threshold", "heldout_texts", heldout_texts, "a list of str")
        scores = [self.bits_per_char(t) for t in heldout_texts if t]
        if not scores:
            raise ValueError("threshold needs at least one non-empty held-out text")
        return float(np.quantile(scores, quantile))


def _list_of_texts(caller: str, name: str, texts, expected: str) -> list[str]:
    """``texts`` as a list, after checking it is an iterable of str (an item that is not is named)."""
    if not isinstance(texts, Iterable):
        raise TypeError(f"{caller} needs {name} to be {expected}, not {type(texts).__name__}")
    texts = list(texts)
    for i, text in enumerate(texts):
        check_str(caller, f"{name}[{i}]", text)
    return texts


def shakespeare_reference(max_chars: int = 0, order: int = 5, quantile: float = 0.99,
                          heldout_every: int = 8) -> tuple[ReferenceModel, float]:
    """A ReferenceModel fitted on the training plays, and its threshold.

    Every ``heldout_every``-th training play is kept out of the fit and sets the threshold. Whole
    plays, not scenes: a held-out scene of a play the model was fitted on shares its names and
    subject, scores far better than a new play would, and the threshold would then reject much of
    the validation plays (which stay untouched, for measuring). Plays still differ (names, verse or
    prose), so a threshold set on a few plays rejects some scenes of new ones: measure it on the
    validation plays. ``max_chars`` limits the training text used (0 = all; the first plays, in the
    corpus's order).
    """
    from ..core.checks import check_range
    from ..text.corpus import load_shakespeare

    check_range("heldout_every", heldout_every, 2, 10**6)  # 1 would hold out every play, 0 is no step
    docs, total = [], 0
    for doc in load_shakespeare():
        if doc.split == "train" and not (max_chars and total >= max_chars):
            docs.append(doc)
            total += len(doc.text)
    plays = list(dict.fromkeys(doc.play for doc in docs))
    heldout_plays = set(plays[::heldout_every]) if len(plays) > 1 else set()
    model = ReferenceModel(order=order).fit(d.text for d in docs if d.play not in heldout_plays)
    heldout = [d.text for d in docs if d.play in heldout_plays] or [d.text for d in docs]
    return model, model.threshold(heldout, quantile)


def perplexity_filter(dataset, model: ReferenceModel, threshold: float, column: str = "text",
                      score_column: str = "bits_per_char", num_proc: int | None = None):
    """Score every document (``score_column``, bits per character) and keep those at or below
    ``threshold``."""
    check_column(dataset, column)
    if not threshold > 0:  # NaN too: every document would be dropped without a word
        raise ValueError(f"threshold={threshold} must be a positive number of bits per character")
    scored = dataset.map(lambda texts: {score_column: [model.bits_per_char(t) for t in texts]},
                         input_columns=column, batched=True, num_proc=num_proc, desc="reference perplexity")
    return scored.filter(lambda scores: [s <= threshold for s in scores], input_columns=score_column,
                         batched=True, num_proc=num_proc, desc="perplexity filter")


# ----------------------------------------------------------------------------------------------
# Synthetic low-quality documents to measure the filters against

LOW_QUALITY_KINDS = ("seo_spam", "symbol_soup", "repeated_lines", "navigation", "lorem_ipsum", "code", "shouting")

_PRODUCTS = ("running shoes", "phone case", "weight loss pills", "cheap flights", "car insurance", "gaming laptop",
             "crypto wallet", "dog food", "wireless earbuds", "hair dryer")
_SEO_WORDS = ("best", "cheap", "buy", "online", "sale", "discount", "top", "2024", "free shipping", "review",
              "deals", "near me", "price", "official", "store", "original", "low cost", "shop")
_SYMBOLS = ("★", "☆", "»", "«", ">>>", "###", "@@", "~~~", "|", "$$$", "%", "^^", "***", "+++", "==", "::", "•",
            "✓", "→", "(!)", "[x]", "<<", "##", "&&")
_MENU = ("Home", "About", "About Us", "Contact", "Blog", "News", "Shop", "Cart", "Login", "Sign up", "Register",
         "FAQ", "Help", "Search", "Careers", "Products", "Services", "Privacy", "Terms", "Sitemap", "Gallery")
_LOREM = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et "
          "dolore magna aliqua ut enim ad minim veniam quis nostrud exercitation ullamco laboris nisi ut aliquip ex "
          "ea commodo consequat duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu "
          "fugiat nulla pariatur excepteur sint occaecat cupidatat non proident sunt in culpa qui officia deserunt "
          "mollit anim id est laborum").split()
_CODE = (
    "function init(){var e=document.getElementById('app');if(!e)return;"
    "e.addEventListener('click',function(t){t.preventDefault();track('click',t.target.id)})}",
    "window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments)}"
    "gtag('js',new Date());gtag('config','UA-000000-1');",
    ".nav{display:flex;margin:0 auto;padding:4px 8px}.nav a{color:#333;text-decoration:none}.btn:hover{opacity:.8}",
    "var _0x3f2a=['push','shift','length'];"
    "(function(a,b){var c=function(d){while(--d){a['push'](a['shift']())}};c(++b)}(_0x3f2a,0x1b3));",
    "$(document).ready(function(){$('.slider').slick({autoplay:true,dots:false,arrows:true,speed:300});});",
    "@media (max-width:768px){.sidebar{display:none}.content{width:100%;float:none}}",
    "if(typeof jQuery==='undefined'){var s=document.createElement('script');s.src='/js/jquery.min.js';"
    "document.head.appendChild(s);}",
)
_RANT = (
    "i cannot believe what they did to us at the store today", "this is the worst service i have ever had in my life",
    "you need to read this before you buy anything from them", "they promised a refund and never sent a single cent",
    "everyone should know the truth about this company", "do not trust the reviews on their website",
    "the manager laughed at me when i asked for help", "share this with all your friends and family now",
    "i waited three hours and nobody came to fix it",
    "we have been customers for ten years and this is how they treat us",
    "the product broke after two days and support hung up on me", "why does nobody in this town care about the people",
)
_REPEATED = ("Limited offer! Order today and save 50%.", "Click the link below to claim your prize.",
             "Free shipping on all orders over $25.", "Call now, operators are standing by.",
             "Best prices guaranteed.", "Only 3 left in stock!")


def _seo_spam(rng: random.Random) -> str:
    product = rng.choice(_PRODUCTS)
    phrases = [f"{rng.choice(_SEO_WORDS)} {product} {rng.choice(_SEO_WORDS)}" for _ in range(rng.randint(25, 45))]
    return " ".join(phrases).capitalize() + "."


def _symbol_soup(rng: random.Random) -> str:
    pieces = [rng.choice(_SYMBOLS) if rng.random() < 0.7 else str(rng.randint(0, 999))
              for _ in range(rng.randint(60, 120))]
    pieces += [rng.choice(("WIN", "free", "click", "now", "bonus")) for _ in range(8)]
    rng.shuffle(pieces)
    return " ".join(pieces)


def _repeated_lines(rng: random.Random) -> str:
    lines = rng.sample(_REPEATED, 3)
    return "\n".join(rng.choice(lines) for _ in range(rng.randint(20, 40)))


def _navigation(rng: random.Random) -> str:
    rows = [" | ".join(rng.sample(_MENU, rng.randint(3, 7))) for _ in range(rng.randint(3, 8))]
    rows.insert(rng.randrange(len(rows)), rng.choice(("Welcome!", "Menu", "Follow us", "Page 1 of 12")))
    return "\n".join(rows)


def _lorem_ipsum(rng: random.Random) -> str:
    sentences = []
    for _ in range(rng.randint(5, 10)):
        start = rng.randrange(len(_LOREM) - 12)
        sentences.append(" ".join(_LOREM[start : start + rng.randint(6, 12)]).capitalize() + ".")
    return " ".join(sentences)


def _code(rng: random.Random) -> str:
    return "\n".join(rng.choice(_CODE) for _ in range(rng.randint(3, 8)))


def _shouting(rng: random.Random) -> str:
    sentences = [rng.choice(_RANT) + rng.choice(("!!!", "!", ".", "!!")) for _ in range(rng.randint(6, 10))]
    return " ".join(sentences).upper()


def low_quality_examples(n: int = 70, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n`` synthetic low-quality web documents and their kinds (the kinds take turns).

    seo_spam: product keywords stuffed into phrases; symbol_soup: symbols and numbers with a few
    words; repeated_lines: a few advert lines over and over; navigation: a page of menus;
    lorem_ipsum: placeholder Latin; code: JavaScript and CSS dumps; shouting: an all-caps rant
    (real sentences, stop words and all, so only the upper-case rule and the reference model see it).
    They were written to show what each rule is for, so the rules catching them is a check that
    the rules work, not an estimate of how much real junk they catch.

    >>> texts, kinds = low_quality_examples(7, seed=0)
    >>> kinds == list(LOW_QUALITY_KINDS)
    True
    """
    if n < 0:
        raise ValueError(f"n={n} must be at least 0")
    rng = random.Random(f"low-quality-{seed}")
    makers = {"seo_spam": _seo_spam, "symbol_soup": _symbol_soup, "repeated_lines": _repeated_lines,
              "navigation": _navigation, "lorem_ipsum": _lorem_ipsum, "code": _code, "shouting": _shouting}
    kinds = [LOW_QUALITY_KINDS[i % len(LOW_QUALITY_KINDS)] for i in range(n)]
    return [makers[kind](rng) for kind in kinds], kinds
