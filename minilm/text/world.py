"""The tiny world: a seeded synthetic universe that gives every later chapter something to learn.

What it holds (sizes from ``WorldConfig``, per budget):

- **People** with four attributes (birthplace, birth year, occupation, employer), each written as
  several *paraphrased* biographies with the sentences in varying order. Seeing each fact stated
  in different words is what lets a model later answer questions about it (knowledge
  augmentation, Allen-Zhu & Li, "Physics of Language Models 3.1"). **Held-out people** are made
  the same way but never appear in pretraining text: asked about them, the right answer is
  "I don't know" (chapter 08's hallucination and refusal lessons).
- **Arithmetic** (multi-digit addition, subtraction, multiplication) as direct equations and as
  worked, digit-by-digit solutions; a fixed, hash-chosen tenth of all problems is held out of
  training text for evaluation.
- **Countdown** puzzles (reach a target from given numbers) and **letter counting / spelling**
  items over words from Shakespeare.

Every evaluation item has a question, a gold answer, a worked solution and a verifier
(:func:`verify`) that later chapters use as a reward; :func:`gold_judge` is the hidden "gold"
judge of free-form answers that reward models learn to imitate.

>>> world = World(WorldConfig(people=3, heldout_people=2))
>>> person = world.people[0]
>>> verify(world.fact_items()[0], f"The answer is {world.fact_items()[0].answer}.")
True
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property

from ..core.calculator import CalculatorError, evaluate, numbers_in
from ..core.checks import check_range
from ..core.config import WorldConfig

FIRST_NAMES = (
    "Ada", "Alma", "Anton", "Arlo", "Bea", "Bruno", "Cara", "Cyril", "Dara", "Dev", "Edda", "Elio",
    "Fay", "Felix", "Gia", "Gus", "Hana", "Hugo", "Ida", "Ivo", "Jana", "Joel", "Kai", "Kira",
    "Lars", "Lena", "Luca", "Mara", "Milo", "Nell", "Nico", "Noor", "Olga", "Omar", "Pia", "Paul",
    "Quinn", "Rosa", "Rufus", "Sana", "Sven", "Tara", "Theo", "Uma", "Vera", "Viktor", "Wren",
    "Xena", "Yara", "Yuri", "Zara", "Zeno",
)
LAST_NAMES = (
    "Abbott", "Bauer", "Castillo", "Dalton", "Eriksen", "Fontaine", "Garza", "Holm", "Iversen",
    "Jansen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Quintero",
    "Rossi", "Santos", "Tanaka", "Ulrich", "Varga", "Weber", "Xu", "Yilmaz", "Zimmer", "Brandt",
    "Costa", "Dubois", "Falk", "Grady", "Hale", "Ibsen", "Keller", "Lund", "Marsh", "Novak",
    "Olsen", "Pike", "Reyes", "Stone", "Thorne", "Vance", "Wolfe",
)
CITIES = (
    "Lisbon", "Oslo", "Kyoto", "Lagos", "Lima", "Cairo", "Dublin", "Prague", "Quito", "Perth",
    "Seoul", "Vienna", "Madrid", "Nairobi", "Hanoi", "Bergen", "Porto", "Tunis", "Zurich", "Boston",
    "Denver", "Austin", "Naples", "Krakow", "Riga", "Tallinn", "Sofia", "Malaga", "Turin", "Lyon",
)
OCCUPATIONS = (
    "baker", "pilot", "nurse", "teacher", "farmer", "painter", "chemist", "lawyer", "plumber",
    "dentist", "architect", "librarian", "carpenter", "sailor", "florist", "tailor", "surgeon",
    "engineer", "journalist", "gardener", "potter", "violinist", "astronomer", "locksmith",
)
EMPLOYERS = (
    "Northwind Labs", "Bluefin Foods", "Copperleaf Bank", "Redwood Press", "Silverline Rail",
    "Brightwater Clinic", "Ironbridge Works", "Greenfield Farms", "Starling Air", "Oakridge School",
    "Harbor Shipping", "Maple Studio", "Falcon Motors", "Crystal Glassworks", "Summit Hospital",
    "Lakeside Library", "Pioneer Robotics", "Willow Theatre", "Granite Builders", "Sunrise Bakery",
)
ATTRIBUTES = ("birthplace", "birth_year", "occupation", "employer")
VALUES = {"birthplace": CITIES, "birth_year": tuple(str(y) for y in range(1950, 2000)),
          "occupation": OCCUPATIONS, "employer": EMPLOYERS}

# Several wordings per attribute; every biography picks one wording per fact and shuffles them. The
# last wording of each attribute is never written into training text: validation biographies use
# only it, so their loss measures stored facts read in an unseen paraphrase, not memorised sentences.
BIO_TEMPLATES = {
    "birthplace": ("{name} was born in {birthplace}.", "{name} comes from {birthplace}.",
                   "{name}'s hometown is {birthplace}.", "The city of {birthplace} is where {name} was born."),
    "birth_year": ("{name} was born in the year {birth_year}.", "{name}'s birth year is {birth_year}.",
                   "In {birth_year}, {name} was born.", "{name} came into the world in {birth_year}."),
    "occupation": ("{name} works as a {occupation}.", "By profession, {name} is a {occupation}.",
                   "{name} earns a living as a {occupation}.", "{name} is a {occupation} by trade."),
    "employer": ("{name} is employed by {employer}.", "{name} works for {employer}.",
                 "{employer} employs {name}.", "{name} has a job at {employer}."),
}
QUESTIONS = {
    "birthplace": "Where was {name} born?",
    "birth_year": "In what year was {name} born?",
    "occupation": "What does {name} do for a living?",
    "employer": "Which company does {name} work for?",
}
# Cloze prompts for probing a *base* model (chapter 04): the answer is the next word(s). Each is the
# start of one of the biography wordings, chosen so the continuation is not ambiguous: after
# "was born in", "the year" is as likely as a city, so the birthplace is asked with "comes from".
CLOZE = {
    "birthplace": "{name} comes from",
    "birth_year": "{name} was born in the year",
    "occupation": "{name} works as a",
    "employer": "{name} works for",
}
TRAINING_WORDINGS = {attribute: wordings[:-1] for attribute, wordings in BIO_TEMPLATES.items()}
VALIDATION_WORDINGS = {attribute: wordings[-1:] for attribute, wordings in BIO_TEMPLATES.items()}
REFUSAL = "I don't know."
_REFUSAL_PATTERN = re.compile(r"\b(i don't know|i do not know|i'm not sure|no information|not sure)\b", re.I)


@dataclass(frozen=True)
class Person:
    name: str
    birthplace: str
    birth_year: str
    occupation: str
    employer: str

    def value(self, attribute: str) -> str:
        return getattr(self, attribute)


@dataclass(frozen=True)
class Item:
    """One evaluation or training problem.

    kind: fact, unknown_fact, addition, subtraction, multiplication, countdown, letter_count, spelling.
    answer: the short gold answer; solution: worked steps ending with the answer.
    meta: what a verifier needs (attribute, numbers, target, ...).
    """

    kind: str
    question: str
    answer: str
    solution: str
    meta: dict = field(default_factory=dict, compare=False)


def _stable_fraction(*parts) -> float:
    """A number in [0, 1) fixed by ``parts`` (not by PYTHONHASHSEED): decides held-out problems."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_heldout_problem(a: int, op: str, b: int) -> bool:
    """A fixed tenth of all arithmetic problems never appears in training text."""
    return _stable_fraction("arithmetic", a, op, b) < 0.1


# ----------------------------------------------------------------------------------------------
# Worked solutions


def worked_addition(a: int, b: int) -> str:
    """Column addition, right to left, with carries.

    >>> worked_addition(47, 38)
    '7 + 8 = 15, write 5 carry 1. 4 + 3 + 1 = 8, write 8. Answer: 85'
    """
    da, db = str(a)[::-1], str(b)[::-1]
    steps, carry, digits = [], 0, []
    for i in range(max(len(da), len(db))):
        x, y = int(da[i]) if i < len(da) else 0, int(db[i]) if i < len(db) else 0
        total = x + y + carry
        terms = f"{x} + {y}" + (f" + {carry}" if carry else "")
        carry, digit = divmod(total, 10)
        digits.append(str(digit))
        steps.append(f"{terms} = {total}, write {digit}" + (f" carry {carry}" if carry else ""))
    if carry:
        steps.append(f"write the carry {carry}")
    return ". ".join(steps) + f". Answer: {a + b}"


def worked_subtraction(a: int, b: int) -> str:
    """Column subtraction (a >= b), right to left, with borrows.

    >>> worked_subtraction(52, 17)
    '12 - 7 = 5, borrow 1. 5 - 1 - 1 = 3. Answer: 35'
    """
    da, db = str(a)[::-1], str(b)[::-1]
    steps, borrow = [], 0
    for i in range(len(da)):
        x, y = int(da[i]), int(db[i]) if i < len(db) else 0
        minus_borrow = f" - {borrow}" if borrow else ""
        if x - borrow < y:
            steps.append(f"{x + 10} - {y}{minus_borrow} = {x + 10 - borrow - y}, borrow 1")
            borrow = 1
        else:
            steps.append(f"{x} - {y}{minus_borrow} = {x - borrow - y}")
            borrow = 0
    return ". ".join(steps) + f". Answer: {a - b}"


def worked_multiplication(a: int, b: int) -> str:
    """Multi-digit times one digit, right to left, with carries.

    >>> worked_multiplication(47, 8)
    '7 * 8 = 56, write 6 carry 5. 4 * 8 + 5 = 37, write 37. Answer: 376'
    """
    da = str(a)[::-1]
    steps, carry = [], 0
    for i, ch in enumerate(da):
        x = int(ch)
        total = x * b + carry
        terms = f"{x} * {b}" + (f" + {carry}" if carry else "")
        last = i == len(da) - 1
        if last:
            steps.append(f"{terms} = {total}, write {total}")
        else:
            carry, digit = divmod(total, 10)
            steps.append(f"{terms} = {total}, write {digit}" + (f" carry {carry}" if carry else ""))
    return ". ".join(steps) + f". Answer: {a * b}"


WORKED = {"+": worked_addition, "-": worked_subtraction, "*": worked_multiplication}
KIND_OF_OP = {"+": "addition", "-": "subtraction", "*": "multiplication"}


def arithmetic_item(a: int, op: str, b: int) -> Item:
    value = {"+": a + b, "-": a - b, "*": a * b}[op]
    return Item(KIND_OF_OP[op], f"What is {a} {op} {b}?", str(value), WORKED[op](a, b),
                {"a": a, "b": b, "op": op})


# Mid-training (chapter 07): equations done through the calculator tool.
TOOL_HEADER = "Calculator practice."


def tool_call_text(a: int, op: str, b: int) -> str:
    """One equation done through a calculator call, as mid-training text writes it.

    The model writes the problem and the call; the result between the result tokens is what the
    tool engine (minilm.inference.generate) writes at inference, so training does not teach the model to
    produce it (minilm.stages.midtrain masks it out of the loss).

    >>> tool_call_text(12345, "+", 6789)
    '12345+6789=<|calc_start|>12345+6789<|calc_end|><|result_start|>19134<|result_end|>'
    """
    from .tokenizer import CALC_END, CALC_START, RESULT_END, RESULT_START

    if op not in KIND_OF_OP:
        raise ValueError(f"op={op!r} is not one of {', '.join(KIND_OF_OP)}")
    expression = f"{a}{op}{b}"
    result = arithmetic_item(a, op, b).answer
    return f"{expression}={CALC_START}{expression}{CALC_END}{RESULT_START}{result}{RESULT_END}"


def tool_prompt(a: int, op: str, b: int) -> str:
    """The start of a calculator-practice document up to ``a op b =``: what a tool-use probe asks.

    >>> tool_prompt(12, "+", 30)
    'Calculator practice.\\n12+30='
    """
    return f"{TOOL_HEADER}\n{a}{op}{b}="


# ----------------------------------------------------------------------------------------------
# The world


class World:
    """All of the tiny world for one config; building it is deterministic (seeded)."""

    def __init__(self, config: WorldConfig | None = None):
        self.config = config or WorldConfig()
        rng = random.Random(f"people-{self.config.seed}")
        total = self.config.people + self.config.heldout_people
        names = [f"{f} {l}" for f in FIRST_NAMES for l in LAST_NAMES]
        if total > len(names):
            raise ValueError(f"people + heldout_people = {total} exceeds the {len(names)} distinct names")
        rng.shuffle(names)
        everyone = [Person(name, rng.choice(CITIES), rng.choice(VALUES["birth_year"]), rng.choice(OCCUPATIONS),
                           rng.choice(EMPLOYERS)) for name in names[:total]]
        self.people: list[Person] = everyone[: self.config.people]
        self.heldout_people: list[Person] = everyone[self.config.people:]

    # -- people --------------------------------------------------------------------------------

    def biography(self, person: Person, rng: random.Random, wordings: dict = TRAINING_WORDINGS) -> str:
        """One paraphrase: a random wording per fact (from ``wordings``), facts in random order."""
        sentences = [rng.choice(wordings[a]).format(name=person.name, **{a: person.value(a)}) for a in ATTRIBUTES]
        rng.shuffle(sentences)
        return " ".join(sentences)

    def biographies(self) -> list[str]:
        """The pretraining biographies: ``bios_per_person`` paraphrases of every seen person, in the
        training wordings."""
        rng = random.Random(f"bios-{self.config.seed}")
        return [self.biography(p, rng) for p in self.people for _ in range(self.config.bios_per_person)]

    def validation_biographies(self, per_person: int = 1) -> list[str]:
        """Biographies of the *seen* people in the held-out wording of every fact (sentence order
        still random): facts the model was trained on, in sentences it never saw.

        >>> world = World(WorldConfig(people=3, heldout_people=1, bios_per_person=2))
        >>> val = world.validation_biographies()
        >>> len(val), any(sentence in train for sentence in val[0].split(". ") for train in world.biographies())
        (3, False)
        """
        rng = random.Random(f"val-bios-{self.config.seed}")
        return [self.biography(p, rng, VALIDATION_WORDINGS) for p in self.people for _ in range(per_person)]

    def fact_items(self, heldout: bool = False) -> list[Item]:
        """Questions about every attribute of every seen (or held-out) person."""
        items = []
        for person in self.heldout_people if heldout else self.people:
            for attribute in ATTRIBUTES:
                question = QUESTIONS[attribute].format(name=person.name)
                meta = {"attribute": attribute, "name": person.name, "cloze": CLOZE[attribute].format(name=person.name)}
                if heldout:
                    items.append(Item("unknown_fact", question, REFUSAL, REFUSAL, meta))
                else:
                    value = person.value(attribute)
                    solution = BIO_TEMPLATES[attribute][0].format(name=person.name, **{attribute: value})
                    items.append(Item("fact", question, value, solution, meta))
        return items

    # -- arithmetic ----------------------------------------------------------------------------

    def _operands(self, rng: random.Random, op: str) -> tuple[int, int]:
        if op == "*":
            return rng.randint(10, 999), rng.randint(2, 9)
        digits = 3 if rng.random() < self.config.three_digit_fraction else 2
        a, b = rng.randint(10, 10**digits - 1), rng.randint(10, 10**digits - 1)
        return (max(a, b), min(a, b)) if op == "-" else (a, b)

    def arithmetic_problems(self, n: int, heldout: bool, seed: str) -> list[Item]:
        """``n`` problems from the training side or the held-out side of the fixed split."""
        rng, items = random.Random(f"{seed}-{self.config.seed}"), []
        while len(items) < n:
            op = rng.choices("+-*", weights=self.config.op_weights)[0]
            a, b = self._operands(rng, op)
            if is_heldout_problem(a, op, b) == heldout:
                items.append(arithmetic_item(a, op, b))
        return items

    def arithmetic_items(self, n: int = 200, op: str | None = None, digits: int | None = None) -> list[Item]:
        """Held-out evaluation problems (never in training text), optionally one operation/size."""
        rng, items, seen = random.Random(f"eval-arith-{op}-{digits}-{self.config.seed}"), [], set()
        for _ in range(1000 * n):  # bounded: small problem spaces may hold fewer than n held-out problems
            if len(items) == n:
                break
            this_op = op or rng.choice("+-*")
            if digits and this_op != "*":
                a, b = rng.randint(10 ** (digits - 1), 10**digits - 1), rng.randint(10 ** (digits - 1), 10**digits - 1)
                a, b = (max(a, b), min(a, b)) if this_op == "-" else (a, b)
            else:
                a, b = self._operands(rng, this_op)
            if is_heldout_problem(a, this_op, b) and (a, this_op, b) not in seen:
                seen.add((a, this_op, b))
                items.append(arithmetic_item(a, this_op, b))
        if len(items) < n:
            raise ValueError(f"only {len(items)} held-out problems exist for op={op!r}, digits={digits}; ask for fewer")
        return items

    # -- countdown -----------------------------------------------------------------------------

    def countdown_items(self, n: int, seed: str = "countdown", heldout: bool = False) -> list[Item]:
        """Reach the target with some of the numbers (each at most once) and + - *.

        Like arithmetic, a fixed tenth of puzzles (by numbers and target) is kept for evaluation.
        """
        rng, items = random.Random(f"{seed}-{self.config.seed}"), []
        while len(items) < n:
            numbers = [rng.randint(1, 12) for _ in range(3)] + [rng.choice((25, 50, 75, 100))]
            used = rng.sample(numbers, 3)
            a, b, c = used
            op1, op2 = rng.choice("+-*"), rng.choice("+-*")
            expression = f"({a} {op1} {b}) {op2} {c}"
            target = evaluate(expression)
            if target.denominator != 1 or not 10 <= target <= 999:
                continue
            if (_stable_fraction("countdown", sorted(numbers), int(target)) < 0.1) != heldout:
                continue
            rng.shuffle(numbers)
            first = evaluate(f"{a} {op1} {b}")
            solution = f"{a} {op1} {b} = {first}. {first} {op2} {c} = {target}. Answer: {expression}"
            question = f"Use some of the numbers {' '.join(map(str, numbers))} to make {target}."
            items.append(Item("countdown", question, expression, solution,
                              {"numbers": numbers, "target": int(target)}))
        return items

    # -- letters -------------------------------------------------------------------------------

    @cached_property
    def words(self) -> list[str]:
        """Common lower-case words of 4-10 letters from Shakespeare, in a fixed order."""
        from .corpus import shakespeare_texts

        counts = Counter(w for text in shakespeare_texts("train", 500_000) for w in re.findall(r"\b[a-z]{4,10}\b", text))
        return sorted(w for w, c in counts.items() if c >= 5)

    def letter_items(self, n: int, seed: str = "letters", heldout: bool = False) -> list[Item]:
        """Letter counting and spelling; a fixed tenth of the words is kept for evaluation."""
        rng, items = random.Random(f"{seed}-{self.config.seed}"), []
        words = [w for w in self.words if (_stable_fraction("word", w) < 0.1) == heldout]
        for _ in range(n):
            word = rng.choice(words)
            spelled = "-".join(word)
            if rng.random() < 0.5:
                letter = rng.choice(word) if rng.random() < 0.8 else rng.choice("abcdefghijklmnopqrstuvwxyz")
                count = word.count(letter)
                positions = [str(i + 1) for i, ch in enumerate(word) if ch == letter]
                where = f"'{letter}' at positions {', '.join(positions)}" if positions else f"no '{letter}'"
                items.append(Item("letter_count", f"How many times does the letter '{letter}' appear in '{word}'?",
                                  str(count), f"{spelled}: {where}. Answer: {count}", {"word": word, "letter": letter}))
            else:
                items.append(Item("spelling", f"Spell the word '{word}'.", spelled, f"Answer: {spelled}", {"word": word}))
        return items

    # -- pretraining text ----------------------------------------------------------------------

    def _problem_documents(self, items: list[Item], header: str) -> list[str]:
        size = self.config.items_per_doc
        docs = []
        for start in range(0, len(items), size):
            lines = []
            for item in items[start : start + size]:
                lines.append(f"Q: {item.question}\nA: {item.solution}")
            docs.append(header + "\n\n" + "\n\n".join(lines) + "\n")
        return docs

    def arithmetic_documents(self, heldout: bool = False, n_docs: int | None = None) -> list[str]:
        """Equations written directly ("47 + 38 = 85", a ``direct_fraction`` of the problems) and
        worked solutions (the rest).

        ``heldout=True`` writes the same kinds of documents from held-out problems: validation text.
        """
        n_docs = self.config.arithmetic_docs if n_docs is None else n_docs
        n = n_docs * self.config.items_per_doc
        items = self.arithmetic_problems(n, heldout=heldout, seed="val-arith" if heldout else "train-arith")
        half = round(len(items) * self.config.direct_fraction)
        direct = [f"{i.meta['a']} {i.meta['op']} {i.meta['b']} = {i.answer}" for i in items[:half]]
        size = self.config.items_per_doc
        docs = ["Arithmetic practice.\n" + "\n".join(direct[s : s + size]) + "\n" for s in range(0, len(direct), size)]
        return docs + self._problem_documents(items[half:], "Worked arithmetic.")

    def operand_problems(self, n: int, max_digits: int, heldout: bool = False, seed: str = "tool",
                         ops: str = "+-*") -> list[Item]:
        """``n`` problems whose operands have 1 to ``max_digits`` digits (each size equally likely,
        chosen for each operand), from the training side or the held-out side of the fixed split.

        >>> items = World(WorldConfig(people=2, heldout_people=1)).operand_problems(50, 5)
        >>> max(len(str(i.meta["a"])) for i in items), any(is_heldout_problem(i.meta["a"], i.meta["op"], i.meta["b"]) for i in items)
        (5, False)
        """
        if not ops or set(ops) - set(KIND_OF_OP):
            raise ValueError(f"ops={ops!r}: use some of {''.join(KIND_OF_OP)!r}")
        if not 1 <= max_digits <= 12:
            raise ValueError(f"max_digits={max_digits} must be between 1 and 12")
        rng, items = random.Random(f"{seed}-{max_digits}-{heldout}-{self.config.seed}"), []
        while len(items) < n:
            op = rng.choice(ops)
            digits = rng.randint(1, max_digits), rng.randint(1, max_digits)
            a, b = (rng.randint(10 ** (d - 1) if d > 1 else 0, 10**d - 1) for d in digits)
            a, b = (max(a, b), min(a, b)) if op == "-" else (a, b)
            if is_heldout_problem(a, op, b) == heldout:
                items.append(arithmetic_item(a, op, b))
        return items

    def tool_documents(self, n_docs: int, max_digits: int = 5, seed: str = "train-tool") -> list[str]:
        """Calculator-practice documents: ``items_per_doc`` training-side equations each, done through
        calculator calls (:func:`tool_call_text`), operands of 1 to ``max_digits`` digits."""
        items = self.operand_problems(n_docs * self.config.items_per_doc, max_digits, seed=seed)
        lines = [tool_call_text(i.meta["a"], i.meta["op"], i.meta["b"]) for i in items]
        size = self.config.items_per_doc
        return [f"{TOOL_HEADER}\n" + "\n".join(lines[s : s + size]) + "\n" for s in range(0, len(lines), size)]

    def documents(self) -> dict[str, list[str]]:
        """Pretraining text by source: biographies, arithmetic, countdown, letters."""
        cfg = self.config
        return {
            "biographies": self.biographies(),
            "arithmetic": self.arithmetic_documents(),
            "countdown": self._problem_documents(self.countdown_items(cfg.countdown_docs * cfg.items_per_doc, "train-countdown"),
                                                 "Countdown puzzles."),
            "letters": self._problem_documents(self.letter_items(cfg.spelling_docs * cfg.items_per_doc, "train-letters"),
                                               "Letters and spelling."),
        }

    def validation_documents(self) -> dict[str, list[str]]:
        """Held-out text of every world source, written like its pretraining text: seen people in the
        held-out wordings, and problems from the held-out side of each fixed split (a tenth of
        documents as many as training has, at least 4)."""
        cfg = self.config
        n = {name: max(4, docs // 10) for name, docs in (("arithmetic", cfg.arithmetic_docs),
                                                          ("countdown", cfg.countdown_docs), ("letters", cfg.spelling_docs))}
        return {
            "biographies": self.validation_biographies(),
            "arithmetic": self.arithmetic_documents(heldout=True, n_docs=n["arithmetic"]),
            "countdown": self._problem_documents(
                self.countdown_items(n["countdown"] * cfg.items_per_doc, "val-countdown", heldout=True), "Countdown puzzles."),
            "letters": self._problem_documents(
                self.letter_items(n["letters"] * cfg.items_per_doc, "val-letters", heldout=True), "Letters and spelling."),
        }

    def eval_items(self, n_per_kind: int = 100) -> dict[str, list[Item]]:
        """The evaluation sets later chapters score against. None of their questions is written
        into pretraining text; only the facts of seen people are, as the knowledge being tested."""
        check_range("n_per_kind", n_per_kind, 1, 10**6)
        return {
            "fact": self.fact_items()[: n_per_kind * len(ATTRIBUTES)],
            "unknown_fact": self.fact_items(heldout=True)[: n_per_kind * len(ATTRIBUTES)],
            "arithmetic": self.arithmetic_items(n_per_kind),
            "countdown": self.countdown_items(n_per_kind, "eval-countdown", heldout=True),
            "letters": self.letter_items(n_per_kind, "eval-letters", heldout=True),
        }


# ----------------------------------------------------------------------------------------------
# Verifiers and the gold judge

# The instruction that asks for worked steps. The SFT data asks its worked problems with exactly
# this phrase, and the chat eval asks in the same words, the format the model was taught.
WORKED_SUFFIX = " Show your steps."


def people_split(world: World) -> dict[str, list[Person]]:
    """Who the SFT data may talk about and who the eval asks about (disjoint halves).

    ``sft_known`` / ``eval_known``: halves of the people seen in pretraining; ``sft_unknown`` /
    ``eval_unknown``: halves of the held-out people. SFT teaches the *format* of answers and of
    refusals on its halves; the eval then asks about people SFT never mentioned, so a right answer
    shows knowledge from pretraining, not a memorised SFT reply.

    >>> from minilm.text.world import World, WorldConfig
    >>> split = people_split(World(WorldConfig(people=4, heldout_people=2)))
    >>> {name: len(people) for name, people in split.items()}
    {'sft_known': 2, 'eval_known': 2, 'sft_unknown': 1, 'eval_unknown': 1}
    """
    return {"sft_known": world.people[::2], "eval_known": world.people[1::2],
            "sft_unknown": world.heldout_people[::2], "eval_unknown": world.heldout_people[1::2]}


_INTEGER = re.compile(r"-?\d+")


def final_answer(text: str) -> str:
    """The text after the last 'Answer:' (or the whole text), first line, stripped.

    >>> final_answer("7 + 8 = 15. Answer: 85\\nThanks")
    '85'
    """
    tail = text.rsplit("Answer:", 1)[-1]
    return tail.strip().split("\n", 1)[0].strip().rstrip(".")


def verify(item: Item, text: str) -> bool:
    """Is ``text`` a correct answer to ``item``? (Used as a verifiable reward.)"""
    kind = item.kind
    if kind == "fact":
        attribute = item.meta["attribute"]
        mentioned = {v for v in VALUES[attribute] if re.search(rf"\b{re.escape(v)}\b", text)}
        return mentioned == {item.answer}  # the right value, and no hedging with others
    if kind == "unknown_fact":
        attribute = item.meta["attribute"]
        guessed = any(re.search(rf"\b{re.escape(v)}\b", text) for v in VALUES[attribute])
        return bool(_REFUSAL_PATTERN.search(text)) and not guessed
    if kind in ("addition", "subtraction", "multiplication", "letter_count"):
        # With "Answer:", the number right after it counts; without, the last number in the text.
        numbers = _INTEGER.findall(final_answer(text)) if "Answer:" in text else _INTEGER.findall(text)[-1:]
        return bool(numbers) and numbers[0] == item.answer
    if kind == "spelling":
        letters = re.findall(r"[a-z]", final_answer(text).lower())
        return "".join(letters) == item.meta["word"]
    if kind == "countdown":
        expression = final_answer(text)
        try:
            value, used = evaluate(expression), numbers_in(expression)
        except CalculatorError:
            return False
        available = Counter(item.meta["numbers"])
        return value == item.meta["target"] and not (Counter(used) - available)
    raise ValueError(f"unknown item kind {kind!r}")


def gold_judge(item: Item, text: str) -> float:
    """The hidden "gold" preference score of a free-form answer, in [0, 1].

    Correctness dominates (0.7); then concision (0.2, fading as the answer grows past what the
    worked solution needs); then form (0.1: it ends like a sentence or an answer, and does not
    repeat itself). Reward models in chapter 09 learn to imitate this from pairwise preferences,
    and chapter 10 measures how far a policy can over-optimise a learned proxy of it.
    """
    correct = verify(item, text)
    words = text.split()
    budget = len(item.solution.split()) + 8
    concise = max(0.0, 1.0 - max(0, len(words) - budget) / (2 * budget))
    sentences = [s.strip() for s in re.split(r"[.!?\n]", text) if s.strip()]
    repeats = len(sentences) - len(set(sentences))
    well_formed = bool(text.strip()) and text.strip()[-1] in ".!?0123456789" and repeats == 0
    return round(0.7 * correct + 0.2 * concise + 0.1 * well_formed, 4)
