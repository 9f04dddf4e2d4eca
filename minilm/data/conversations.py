"""SFT conversations from the tiny world: endless seeded streams per source, mixed and measured.

By source, all from the tiny world:

- ``facts``: questions about the ``sft_known`` people (:func:`minilm.text.world.people_split`), several
  paraphrases per question, answered in one sentence;
- ``refusals``: the same questions about ``sft_unknown`` people (never in pretraining), answered
  "I don't know ..." (Llama 3's recipe: teach refusals where the model has no knowledge);
  with ``knowledge=`` (:func:`minilm.evals.probes.probe_knowledge`: what the model, before SFT, actually recalls of
  the ``sft_known`` people), the ``facts`` source answers only the facts the model knows and
  refuses the others (:func:`knowledge_aware_conversations`), so SFT does not teach it to assert
  facts it cannot recall;
- ``arithmetic`` (asked directly, answered ``a + b = c.``), ``arithmetic_worked`` (asked with
  :data:`minilm.text.world.WORKED_SUFFIX`, answered with the worked solution ending ``Answer: c``) and
  ``calculator`` (operands of 4 or 5 digits, answered with a calculator call as mid-training
  taught): training-side problems only;
- ``letters``: letter counting and spelling of training-side words;
- ``multi_turn``: 2 to ``max_turns`` user turns (follow-up questions about one person, or a mix);
- ``identity``: "Who are you?" and its paraphrases -> "I am minilm, ...".

Every source is an endless, seeded stream, and :func:`conversations`
takes its first ``n``: a smaller data set is a subset of a larger one, so a data-size sweep compares
nested data sets. With a tokenizer, conversations longer than the context are skipped while
drawing, so every source still gives its count.

Knowledge-aware data (Llama 3): given what a model recalls of each fact (a knowledge dict, from
:func:`minilm.evals.probes.probe_knowledge`), :func:`knowledge_aware_conversations` answers the facts it
knows and refuses the others.

>>> from minilm.core.config import SFTConfig
>>> from minilm.text.world import World, WorldConfig
>>> world = World(WorldConfig(people=4, heldout_people=2))
>>> data = conversations(world, SFTConfig(mix=(("facts", 2), ("refusals", 1), ("identity", 1))))
>>> {source: len(convs) for source, convs in data.items()}
{'facts': 2, 'refusals': 1, 'identity': 1}
>>> data["refusals"][0][1]["content"].startswith("I")
True
"""

from __future__ import annotations

import itertools
import random
from typing import Callable, Iterator

import numpy as np

from ..core.checks import ConfigError, check_count
from ..core.config import SFT_SOURCES, SFTConfig
from ..text.chat_template import render_conversation
from ..text.world import ATTRIBUTES, BIO_TEMPLATES, QUESTIONS, REFUSAL, WORKED_SUFFIX, people_split, tool_call_text


SOURCES = SFT_SOURCES


# Several wordings of each question; the first is the one the evaluation asks (about other people).
FACT_QUESTIONS = {
    "birthplace": (QUESTIONS["birthplace"], "What is {name}'s hometown?", "Which city does {name} come from?",
                   "Where is {name} from?"),
    "birth_year": (QUESTIONS["birth_year"], "When was {name} born?", "What is {name}'s birth year?",
                   "Which year was {name} born in?"),
    "occupation": (QUESTIONS["occupation"], "What is {name}'s job?", "What is {name}'s profession?",
                   "What does {name} work as?"),
    "employer": (QUESTIONS["employer"], "Who employs {name}?", "Where does {name} work?",
                 "What company employs {name}?"),
}
# One sentence per answer, worded as the biographies first state the fact: the model read those
# words in pretraining, so SFT only has to connect the question to them.
FACT_ANSWERS = {attribute: BIO_TEMPLATES[attribute][0] for attribute in ATTRIBUTES}
# Refusals name the person but no value: a value would be a guess (minilm.evals.chat_eval counts those as
# hallucinations). All match the world's refusal pattern.
REFUSALS = (REFUSAL, "I don't know who {name} is.", "I'm not sure. I have no information about {name}.")
ARITHMETIC_QUESTIONS = ("What is {a} {op} {b}?", "Compute {a} {op} {b}.", "How much is {a} {op} {b}?",
                        "{a} {op} {b} = ?")


IDENTITY = (
    (("Who are you?", "What is your name?", "What are you?", "Introduce yourself.", "What should I call you?",
      "Tell me about yourself.", "What's your name?"),
     ("I am minilm, a small language model trained in the minilm course.",
      "My name is minilm. I am a small language model.",
      "I'm minilm, a tiny language model trained from scratch in the minilm course.")),
    (("Are you a person?", "Are you human?", "Are you ChatGPT?"),
     ("No, I am minilm, a small language model.", "No. I'm minilm, a small language model from the minilm course.")),
    (("Who made you?", "Who trained you?"),
     ("I was trained in the minilm course. I am minilm, a small language model.",
      "The minilm course trained me from scratch. My name is minilm.")),
)
CALCULATOR_MIN_DIGITS = 4  # numbers this long are done with the calculator; shorter ones in the head


Conversation = list  # of {"role": ..., "content": ...} messages


def _exchange(question: str, answer: str) -> Conversation:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def _cycle(pool: list, rng: random.Random) -> Iterator:
    """Endless passes over ``pool``, each in a fresh random order (every item once per pass)."""
    if not pool:
        return
    while True:
        order = list(pool)
        rng.shuffle(order)
        yield from order


def _chunks(make: Callable[[int], list]) -> Iterator:
    """The items of ``make(0)``, ``make(1)``, ...: an endless stream from a finite generator."""
    for index in itertools.count():
        yield from make(index)


def _fact_reply(person, attribute: str, knowledge: dict | None, wording: random.Random | None) -> str:
    """The true answer, or, with ``knowledge`` (:func:`minilm.evals.probes.probe_knowledge`), a refusal where the model
    does not know the fact. A person the model knows something about is not told "I don't know
    who {name} is": only the plain "I don't know." fits a single unknown fact."""
    if knowledge is None or _known(knowledge, person.name, attribute):
        return FACT_ANSWERS[attribute].format(name=person.name, **{attribute: person.value(attribute)})
    knows_some = any(_known(knowledge, person.name, a) for a in ATTRIBUTES)
    return wording.choice((REFUSAL,) if knows_some else REFUSALS).format(name=person.name)


def _fact_stream(people, rng: random.Random, knowledge: dict | None = None, tag: str = "") -> Iterator[Conversation]:
    pool = [(p, a, q) for p in people for a in ATTRIBUTES for q in FACT_QUESTIONS[a]]
    # Refusal wordings come from their own generator, so the questions are drawn in the same
    # order with and without knowledge: the two data sets differ only in the answers.
    wording = random.Random(f"{tag}-refusal-wording") if knowledge is not None else None
    for person, attribute, question in _cycle(pool, rng):
        yield _exchange(question.format(name=person.name), _fact_reply(person, attribute, knowledge, wording))


def _refusal_stream(people, rng: random.Random) -> Iterator[Conversation]:
    pool = [(p, a, q, r) for p in people for a in ATTRIBUTES for q in FACT_QUESTIONS[a] for r in REFUSALS]
    for person, _, question, refusal in _cycle(pool, rng):
        yield _exchange(question.format(name=person.name), refusal.format(name=person.name))


def _arithmetic_stream(world, rng: random.Random, tag: str) -> Iterator[Conversation]:
    problems = _chunks(lambda c: world.arithmetic_problems(256, heldout=False, seed=f"{tag}-{c}"))
    for item in problems:
        a, op, b = item.meta["a"], item.meta["op"], item.meta["b"]
        question = rng.choice(ARITHMETIC_QUESTIONS).format(a=a, op=op, b=b)
        yield _exchange(question, f"{a} {op} {b} = {item.answer}.")


def _worked_stream(world, tag: str) -> Iterator[Conversation]:
    for item in _chunks(lambda c: world.arithmetic_problems(256, heldout=False, seed=f"{tag}-{c}")):
        yield _exchange(item.question + WORKED_SUFFIX, item.solution)


def _calculator_stream(world, rng: random.Random, tag: str) -> Iterator[Conversation]:
    for item in _chunks(lambda c: world.operand_problems(256, max_digits=5, seed=f"{tag}-{c}")):
        a, op, b = item.meta["a"], item.meta["op"], item.meta["b"]
        if max(len(str(a)), len(str(b))) < CALCULATOR_MIN_DIGITS:
            continue
        question = rng.choice(ARITHMETIC_QUESTIONS).format(a=a, op=op, b=b)
        yield _exchange(question, tool_call_text(a, op, b))


def _letter_stream(world, tag: str) -> Iterator[Conversation]:
    for item in _chunks(lambda c: world.letter_items(256, f"{tag}-{c}", heldout=False)):
        yield _exchange(item.question, item.solution)


def _identity_stream(rng: random.Random) -> Iterator[Conversation]:
    pool = [(q, a) for questions, answers in IDENTITY for q in questions for a in answers]
    for question, answer in _cycle(pool, rng):
        yield _exchange(question, answer)


def _multi_turn_stream(world, split, rng: random.Random, max_turns: int, tag: str,
                       knowledge: dict | None = None) -> Iterator[Conversation]:
    """Half follow-ups about one known person ("... And where was she born?"), half a mix of turns
    from the other sources (their own streams, so the single-turn sources are not disturbed).
    With ``knowledge``, fact turns refuse what the model does not know, as the ``facts`` source does."""
    wording = random.Random(f"{tag}-refusal-wording") if knowledge is not None else None
    turns = {"facts": _fact_stream(split["sft_known"], random.Random(f"{tag}-facts"), knowledge, f"{tag}-facts"),
             "refusals": _refusal_stream(split["sft_unknown"], random.Random(f"{tag}-refusals")),
             "arithmetic": _arithmetic_stream(world, random.Random(f"{tag}-arithmetic"), f"{tag}-arithmetic"),
             "letters": _letter_stream(world, f"{tag}-letters"),
             "identity": _identity_stream(random.Random(f"{tag}-identity"))}
    kinds = [k for k in turns if k != "refusals" or split["sft_unknown"]]
    kinds = [k for k in kinds if k != "facts" or split["sft_known"]]
    while True:
        n_turns = rng.randint(2, max_turns)
        if split["sft_known"] and rng.random() < 0.5:
            person = rng.choice(split["sft_known"])
            conversation = []
            for number, attribute in enumerate(rng.sample(ATTRIBUTES, min(n_turns, len(ATTRIBUTES)))):
                question = rng.choice(FACT_QUESTIONS[attribute]).format(name=person.name)
                if number:
                    question = "And " + question[0].lower() + question[1:]
                conversation += _exchange(question, _fact_reply(person, attribute, knowledge, wording))
            yield conversation
        else:
            yield [message for _ in range(n_turns) for message in next(turns[rng.choice(kinds)])]


def source_stream(world, source: str, config: SFTConfig, seed: int = 0,
                  knowledge: dict | None = None) -> Iterator[Conversation]:
    """The endless, seeded stream of one source's conversations (see the module docstring).

    With ``knowledge`` (:func:`minilm.evals.probes.probe_knowledge` of the ``sft_known`` people), the
    fact questions of
    ``facts`` and ``multi_turn`` are answered where the model knows the fact and refused where it
    does not (:func:`knowledge_aware_conversations`); the questions drawn are the same.

    >>> from minilm.text.world import World, WorldConfig
    >>> stream = source_stream(World(WorldConfig(people=2, heldout_people=1)), "arithmetic_worked", SFTConfig())
    >>> next(stream)[0]["content"].endswith("Show your steps.")
    True
    """
    if source not in SOURCES:
        raise ConfigError(f"source={source!r} is not allowed: choose one of {', '.join(map(repr, SOURCES))}")
    split = people_split(world)
    if knowledge is not None and source in ("facts", "multi_turn"):
        _check_knowledge(knowledge, split["sft_known"])
    tag = f"sft-{source}-{seed}"
    rng = random.Random(tag)
    if source == "facts":
        return _fact_stream(split["sft_known"], rng, knowledge, tag)
    if source == "refusals":
        return _refusal_stream(split["sft_unknown"], rng)
    if source == "arithmetic":
        return _arithmetic_stream(world, rng, tag)
    if source == "arithmetic_worked":
        return _worked_stream(world, tag)
    if source == "calculator":
        return _calculator_stream(world, rng, tag)
    if source == "letters":
        return _letter_stream(world, tag)
    if source == "identity":
        return _identity_stream(rng)
    return _multi_turn_stream(world, split, rng, config.max_turns, tag, knowledge)


def source_counts(mix: dict[str, int] | SFTConfig, total: int | None = None) -> dict[str, int]:
    """Conversations per source: the mix itself, or ``total`` of them shared in the mix's proportions.

    The shares are dealt one conversation at a time by smooth weighted round-robin, so each source
    gets its share to within one conversation, and a larger total never gives a source fewer:
    the data sets of a size sweep are nested.

    >>> source_counts({"facts": 6, "identity": 2}, total=5)
    {'facts': 4, 'identity': 1}
    >>> source_counts({"facts": 6, "identity": 2})
    {'facts': 6, 'identity': 2}
    """
    mix = mix.counts() if isinstance(mix, SFTConfig) else dict(mix)
    if total is None:
        return mix
    check_count("total", total, 0, note=" (conversations)")
    weights = {source: count for source, count in mix.items() if count > 0}
    if not weights:
        raise ValueError(f"the mix {mix} has no source with a positive count")
    whole = sum(weights.values())
    counts, current = {source: 0 for source in mix}, {source: 0 for source in weights}
    for _ in range(total):
        for source in weights:
            current[source] += weights[source]
        chosen = max(current, key=current.get)  # ties go to the source listed first
        current[chosen] -= whole
        counts[chosen] += 1
    return counts


def conversation_length(tokenizer, conversation: Conversation) -> int:
    """Tokens of a conversation rendered with the chat template."""
    return len(render_conversation(tokenizer, conversation)[0])


def _take(stream: Iterator[Conversation], n: int, fits: Callable[[Conversation], bool] | None, source: str):
    out: list[Conversation] = []
    if n == 0:
        return out
    for tried, conversation in enumerate(stream, start=1):
        if fits is None or fits(conversation):
            out.append(conversation)
            if len(out) == n:
                return out
        if tried >= 1000 + 100 * n and len(out) * 1000 < tried:
            break  # almost nothing fits: give up rather than search forever
    raise ValueError(f"source {source!r}: found only {len(out)} of {n} conversations that fit the context; "
                     "use a longer context or fewer conversations from this source")


def conversations(world, config: SFTConfig, seed: int = 0, total: int | None = None, tokenizer=None,
                  max_tokens: int | None = None, knowledge: dict | None = None) -> dict[str, list[Conversation]]:
    """SFT conversations by source: the first ``count`` of each source's stream.

    ``count`` comes from ``config.mix``, or with ``total`` from :func:`source_counts` (the sizes of
    a data-size sweep: nested sets). With ``tokenizer`` and ``max_tokens``, conversations longer
    than ``max_tokens`` tokens are skipped as they are drawn, so each source still gives ``count``
    (:func:`length_stats` says how many the streams would have given that do not fit). With
    ``knowledge`` (:func:`minilm.evals.probes.probe_knowledge`), fact questions the model cannot answer are refused
    (Llama 3's recipe; see :func:`knowledge_aware_conversations`).
    """
    if (tokenizer is None) != (max_tokens is None):
        raise ValueError("give both tokenizer and max_tokens (to keep conversations that fit), or neither")
    fits = None
    if tokenizer is not None:
        check_count("max_tokens", max_tokens, 2)
        fits = lambda conversation: conversation_length(tokenizer, conversation) <= max_tokens  # noqa: E731
    counts = source_counts(config, total)
    return {source: _take(source_stream(world, source, config, seed, knowledge), n, fits, source)
            for source, n in counts.items()}


def mix_conversations(by_source: dict[str, list[Conversation]], seed: int = 0) -> list[Conversation]:
    """All conversations in one list, shuffled (seeded), so that packed rows mix the sources.

    >>> mix_conversations({"a": [["x"]], "b": [["y"], ["z"]]}, seed=0)
    [['x'], ['z'], ['y']]
    """
    everything = [c for source in by_source for c in by_source[source]]
    random.Random(f"sft-mix-{seed}").shuffle(everything)
    return everything


def length_stats(by_source: dict[str, list[Conversation]], tokenizer, max_tokens: int | None = None) -> dict:
    """Token lengths per source with the chat template: n, mean, median, 90th percentile, max and,
    with ``max_tokens``, how many are longer (``over``) and their share.

    >>> from minilm.text.tokenizer import Tokenizer
    >>> tok = Tokenizer.train("Who are you? I am minilm.", vocab_size=280)
    >>> stats = length_stats({"identity": [_exchange("Who are you?", "I am minilm.")]}, tok, max_tokens=30)
    >>> stats["identity"]["max"], stats["identity"]["over"]
    (35, 1)
    """
    stats = {}
    for source, convs in by_source.items():
        lengths = np.array([conversation_length(tokenizer, c) for c in convs]) if convs else np.zeros(0, dtype=int)
        entry = {"n": len(convs)}
        if len(lengths):
            entry.update(mean=round(float(lengths.mean()), 1), median=float(np.median(lengths)),
                         p90=float(np.percentile(lengths, 90)), max=int(lengths.max()))
        if max_tokens is not None:
            entry["over"] = int((lengths > max_tokens).sum())
            entry["over_share"] = round(entry["over"] / len(convs), 4) if convs else 0.0
        stats[source] = entry
    return stats


def knowledge_key(name: str, attribute: str) -> str:
    """The key of one fact in a knowledge dict (JSON keys are strings).

    >>> knowledge_key("Ada Holm", "birthplace")
    'Ada Holm|birthplace'
    """
    return f"{name}|{attribute}"


def is_known(right: int, samples: int) -> bool:
    """The rule: a fact is known when a strict majority of the sampled answers is right.

    A tie is not a majority: half right is a coin flip, and SFT then teaches a refusal.

    >>> is_known(3, 4), is_known(2, 4), is_known(1, 1)
    (True, False, True)
    """
    return 2 * right > samples


def _known(knowledge: dict, name: str, attribute: str) -> bool:
    entry = knowledge[knowledge_key(name, attribute)]
    return is_known(entry["right"], entry["samples"])


def _check_knowledge(knowledge: dict, people) -> None:
    """Every fact of ``people`` has an entry with sensible counts, or a ValueError that names one."""
    if not isinstance(knowledge, dict):
        raise ValueError(f"knowledge must be the dict probe_knowledge returns, got {type(knowledge).__name__}")
    keys = [knowledge_key(p.name, a) for p in people for a in ATTRIBUTES]
    missing = [key for key in keys if key not in knowledge]
    if missing:
        raise ValueError(f"knowledge has no probe of {len(missing)} facts, e.g. {missing[0]!r}: probe these people "
                         "first (probe_knowledge(model, tokenizer, world, people))")
    for key in keys:
        entry = knowledge[key]
        right, samples = entry.get("right"), entry.get("samples")
        if not (isinstance(samples, int) and isinstance(right, int) and samples >= 1 and 0 <= right <= samples):
            raise ValueError(f"knowledge[{key!r}] has right={right!r}, samples={samples!r}: need 0 <= right <= "
                             "samples and samples >= 1")


def knowledge_aware_conversations(world, knowledge: dict, people=None, rng_seed: int = 0) -> list[Conversation]:
    """Fact Q/A about ``people`` (default: the ``sft_known`` half) answered as the model can.

    Every fact with every question wording of :data:`FACT_QUESTIONS`, once, shuffled (seeded):
    a fact the model knows (:func:`is_known` on its probe) gets the true one-sentence answer; one it
    does not gets a refusal from :data:`REFUSALS` (only "I don't know." when the model knows other
    facts of that person). People the evaluation asks about are refused with a ValueError.

    >>> from minilm.text.world import World, WorldConfig
    >>> world = World(WorldConfig(people=4, heldout_people=2))
    >>> ada = people_split(world)["sft_known"][0]  # the model knows where Ada is from, nothing else
    >>> knowledge = {knowledge_key(ada.name, a): {"right": 4 if a == "birthplace" else 0, "samples": 4}
    ...              for a in ATTRIBUTES}
    >>> convs = knowledge_aware_conversations(world, knowledge, [ada])
    >>> len(convs), sum(c[1]["content"] == "I don't know." for c in convs)
    (16, 12)
    """
    split = people_split(world)
    people = split["sft_known"] if people is None else list(people)
    evaluated = {p.name for p in split["eval_known"] + split["eval_unknown"]}
    leaked = [p.name for p in people if p.name in evaluated]
    if leaked:
        raise ValueError(f"{leaked[0]!r} is a person the evaluation asks about (minilm.evals.chat_eval.people_split): SFT data "
                         "must not mention them")
    _check_knowledge(knowledge, people)
    tag = f"sft-knowledge-{rng_seed}"
    one_pass = len(people) * sum(len(FACT_QUESTIONS[a]) for a in ATTRIBUTES)
    return list(itertools.islice(_fact_stream(people, random.Random(tag), knowledge, tag), one_pass))
