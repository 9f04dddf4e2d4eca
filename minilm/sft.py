"""Supervised fine-tuning (chapter 08): from a model that continues documents to an assistant.

A base model continues text. SFT trains it on *conversations* rendered with the chat template
(:mod:`minilm.chat_template`), so that after ``<|im_start|>assistant`` it writes a reply and then
``<|im_end|>``. The loss counts only the assistant's tokens, its ``<|im_end|>`` included (the mask
of :func:`minilm.chat_template.render_conversation`): the model is taught to answer and to stop,
not to write the user's questions.

**Data** (:func:`conversations`), by source, all from the tiny world:

- ``facts``: questions about the ``sft_known`` people (:func:`minilm.eval.people_split`), several
  paraphrases per question, answered in one sentence;
- ``refusals``: the same questions about ``sft_unknown`` people (never in pretraining), answered
  "I don't know ..." (Llama 3's recipe: teach refusals where the model has no knowledge);
  with ``knowledge=`` (:func:`probe_knowledge`: what the model, before SFT, actually recalls of
  the ``sft_known`` people), the ``facts`` source answers only the facts the model knows and
  refuses the others (:func:`knowledge_aware_conversations`), so SFT does not teach it to assert
  facts it cannot recall;
- ``arithmetic`` (asked directly, answered ``a + b = c.``), ``arithmetic_worked`` (asked with
  :data:`minilm.world.WORKED_SUFFIX`, answered with the worked solution ending ``Answer: c``) and
  ``calculator`` (operands of 4 or 5 digits, answered with a calculator call as mid-training
  taught): training-side problems only;
- ``letters``: letter counting and spelling of training-side words;
- ``multi_turn``: 2 to ``max_turns`` user turns (follow-up questions about one person, or a mix);
- ``identity``: "Who are you?" and its paraphrases -> "I am minilm, ...".

The evaluation (:mod:`minilm.eval`) asks about the *other* halves of the people and held-out
problems and words, so what it measures is not a memorised SFT reply. Real chat data sets
(SmolTalk, ...) come in through :func:`load_chat_dataset`.

Every source is an endless, seeded stream, and :func:`conversations` takes its first ``n``: a
smaller data set is a subset of a larger one, so chapter 08's data-size sweep (``total=``, 10 to
10,000 conversations) compares nested data sets. With a tokenizer, conversations longer than
the context are skipped while drawing, so every source still gives its count.

**Encoding** (:func:`encode_conversations`): conversations are packed into rows of ``seq_len + 1``
tokens, whole (a conversation never straddles two rows), the rest of a row padded with
``<|pad|>``; the mask is 0 on padding and on everything but assistant tokens. In a packed row a
conversation can attend to the ones before it in the same row: they are independent and each
starts with ``<|im_start|>``, so the model learns to ignore them (the usual trade: no padding
wasted, no per-document attention mask). ``pack=False`` puts each conversation alone in its row:
exact, at the price of padding.

**Training** (:func:`train_sft`): the shared loop :func:`minilm.train.train` on those rows with
their mask (whole rows are drawn, so no conversation is cut by a window). :func:`sft` is the
pipeline's stage: it starts from the mid-trained model and measures the evaluation suite before
and after.

>>> from minilm.config import SFTConfig
>>> from minilm.world import World, WorldConfig
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
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from . import midtrain, tokenizer_stage
from .artifacts import artifact_dir, as_budget, content_key, trained_model_artifact
from .chat_template import ChatFormatError, _check_messages, render_conversation
from .config import SFT_SOURCES, Budget, ConfigError, SFTConfig, check_count
from .device import best_device
from .eval import check_settings, run_eval
from .files import write_json
from .tokenizer import PAD
from .world import ATTRIBUTES, BIO_TEMPLATES, QUESTIONS, REFUSAL, WORKED_SUFFIX, World, people_split, tool_call_text

SOURCES = SFT_SOURCES

# ----------------------------------------------------------------------------------------------
# What the conversations say

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
# Refusals name the person but no value: a value would be a guess (minilm.eval counts those as
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
# Asked only when measuring (never in the SFT data): does the identity generalise to new wordings?
IDENTITY_PROBES = ("Who am I talking to?", "What is your name, please?", "Can you tell me who you are?",
                   "What kind of program are you?", "Do you have a name?", "Which model are you?")
CALCULATOR_MIN_DIGITS = 4  # numbers this long are done with the calculator; shorter ones in the head

Conversation = list  # of {"role": ..., "content": ...} messages


def _exchange(question: str, answer: str) -> Conversation:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


# ----------------------------------------------------------------------------------------------
# Endless seeded streams, one per source


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
    """The true answer, or, with ``knowledge`` (:func:`probe_knowledge`), a refusal where the model
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

    With ``knowledge`` (:func:`probe_knowledge` of the ``sft_known`` people), the fact questions of
    ``facts`` and ``multi_turn`` are answered where the model knows the fact and refused where it
    does not (:func:`knowledge_aware_conversations`); the questions drawn are the same.

    >>> from minilm.world import World, WorldConfig
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


# ----------------------------------------------------------------------------------------------
# Data sets


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
    ``knowledge`` (:func:`probe_knowledge`), fact questions the model cannot answer are refused
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

    >>> from minilm.tokenizer import Tokenizer
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


# ----------------------------------------------------------------------------------------------
# Knowledge probing (Llama 3): answer what the model knows, refuse what it does not
#
# SFT data that states a fact the model cannot recall teaches it to *assert* things it does not
# know: hallucination, in the format of a confident answer. Llama 3 (section 4.3.6) probes the
# model first: it asks questions about its pretraining data, samples several answers, has a judge
# compare them with the source, and writes refusals where the answers are consistently wrong.
# Here the questions are cloze prompts in the base model's own format (minilm.probes), the judge
# is the world's verifier (minilm.world.verify), and the rule is a strict majority.


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


def probe_knowledge(model, tokenizer, world, people, samples: int = 4, temperature: float = 0.7, seed: int = 0,
                    shots: int = 3, max_new_tokens: int = 8) -> dict[str, dict]:
    """Ask the model (before SFT) every attribute of every one of ``people``, ``samples`` times.

    The question is the fact's cloze prompt (``item.meta["cloze"]`` of
    :meth:`minilm.world.World.fact_items`, e.g. "Ada Holm comes from") after ``shots`` solved
    examples about other people, as :func:`minilm.probes.fact_prompts` writes it: the document
    format a base model continues. Each sample (``temperature``, seeded ``seed + s``) is judged by
    :func:`minilm.world.verify`: right when it names the true value and no other. A fact is
    *known* when a strict majority of the samples is right (:func:`is_known`); Llama 3 writes
    refusals where sampled answers are consistently wrong, which is the same split for 4 samples
    up to ties, which count as not known here.

    Returns ``{"Name|attribute": {"name", "attribute", "value", "right", "samples", "known",
    "answers"}}`` (JSON-friendly; ``answers`` are the sampled completions), in the order of
    ``people`` and :data:`minilm.world.ATTRIBUTES`. ``people`` may be seen or held-out people.
    """
    from .generate import check_sampling, complete
    from .probes import fact_prompts
    from .world import verify

    check_count("samples", samples)
    check_sampling(temperature)
    people = list(people)
    if not people:
        raise ValueError("people is empty: give the people to probe (e.g. people_split(world)['sft_known'])")
    names = {p.name for p in people}
    unknown = sorted(names - {p.name for p in world.people + world.heldout_people})
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not a person of this world")
    rows = {}  # (name, attribute) -> (prompt, judge item)
    for heldout in (False, True):
        group = world.heldout_people if heldout else world.people
        if not names & {p.name for p in group}:
            continue
        for (prompt, value, attribute), item in zip(fact_prompts(world, heldout, shots, seed=seed),
                                                   world.fact_items(heldout)):
            if not prompt.endswith(item.meta["cloze"]) or item.meta["attribute"] != attribute:
                raise RuntimeError("minilm.probes.fact_prompts and World.fact_items list facts in different orders")
            if item.meta["name"] in names:
                # Held-out items are "unknown_fact" (the right reply is a refusal); the probe asks
                # whether the model names the true value, so every fact is judged as a "fact".
                rows[(item.meta["name"], attribute)] = (prompt, replace(item, kind="fact", answer=value))
    keys = [(p.name, a) for p in people for a in ATTRIBUTES]
    prompts = [rows[key][0] for key in keys]
    answers = [complete(model, tokenizer, prompts, max_new_tokens=max_new_tokens, stop=".",
                        temperature=temperature, seed=seed + s) for s in range(samples)]
    knowledge = {}
    for i, (name, attribute) in enumerate(keys):
        item = rows[(name, attribute)][1]
        said = [answers[s][i].strip() for s in range(samples)]
        right = sum(verify(item, text) for text in said)
        knowledge[knowledge_key(name, attribute)] = {
            "name": name, "attribute": attribute, "value": item.answer, "right": right, "samples": samples,
            "known": is_known(right, samples), "answers": said}
    return knowledge


def knowledge_aware_conversations(world, knowledge: dict, people=None, rng_seed: int = 0) -> list[Conversation]:
    """Fact Q/A about ``people`` (default: the ``sft_known`` half) answered as the model can.

    Every fact with every question wording of :data:`FACT_QUESTIONS`, once, shuffled (seeded):
    a fact the model knows (:func:`is_known` on its probe) gets the true one-sentence answer; one it
    does not gets a refusal from :data:`REFUSALS` (only "I don't know." when the model knows other
    facts of that person). People the evaluation asks about are refused with a ValueError.

    >>> from minilm.world import World, WorldConfig
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
        raise ValueError(f"{leaked[0]!r} is a person the evaluation asks about (minilm.eval.people_split): SFT data "
                         "must not mention them")
    _check_knowledge(knowledge, people)
    tag = f"sft-knowledge-{rng_seed}"
    one_pass = len(people) * sum(len(FACT_QUESTIONS[a]) for a in ATTRIBUTES)
    return list(itertools.islice(_fact_stream(people, random.Random(tag), knowledge, tag), one_pass))


def knowledge_summary(knowledge: dict) -> dict:
    """How many probed facts are known (answered in SFT) and unknown (refused), overall and per attribute.

    >>> knowledge_summary({"A|birthplace": {"attribute": "birthplace", "right": 3, "samples": 4},
    ...                    "A|employer": {"attribute": "employer", "right": 1, "samples": 4}})["known_share"]
    0.5
    """
    by_attribute: dict[str, dict] = {}
    for key, entry in knowledge.items():
        attribute = entry.get("attribute", key.rsplit("|", 1)[-1])
        counts = by_attribute.setdefault(attribute, {"facts": 0, "known": 0, "unknown": 0})
        known = is_known(entry["right"], entry["samples"])
        counts["facts"] += 1
        counts["known" if known else "unknown"] += 1
    facts = sum(c["facts"] for c in by_attribute.values())
    known = sum(c["known"] for c in by_attribute.values())
    return {"facts": facts, "known": known, "unknown": facts - known,
            "known_share": round(known / facts, 4) if facts else 0.0, "by_attribute": by_attribute}


REFUSAL_COLUMNS = ("attribute", "facts probed", "known (answered)", "unknown (refused)", "known share")


def refusal_rows(knowledge: dict) -> list[list[str]]:
    """A table of :func:`knowledge_summary`: one row per attribute, then ``all`` (columns :data:`REFUSAL_COLUMNS`).

    >>> refusal_rows({"A|employer": {"attribute": "employer", "right": 1, "samples": 4}})
    [['employer', '1', '0', '1', '0%'], ['all', '1', '0', '1', '0%']]
    """
    summary = knowledge_summary(knowledge)
    rows = [[attribute, str(c["facts"]), str(c["known"]), str(c["unknown"]), f"{100 * c['known'] / c['facts']:.0f}%"]
            for attribute, c in summary["by_attribute"].items()]
    rows.append(["all", str(summary["facts"]), str(summary["known"]), str(summary["unknown"]),
                 f"{100 * summary['known_share']:.0f}%"])
    return rows


# ----------------------------------------------------------------------------------------------
# Real chat data


ROLE_NAMES = {"user": "user", "human": "user", "system": "system", "assistant": "assistant", "gpt": "assistant",
              "bot": "assistant", "model": "assistant"}


def normalize_conversation(turns) -> Conversation:
    """A conversation as a list of ``{"role", "content"}`` messages with our roles.

    Accepts the usual layouts: ``{"role", "content"}`` (SmolTalk, UltraChat) and ShareGPT's
    ``{"from", "value"}`` (``human``/``gpt``); other keys are dropped. Raises ChatFormatError when a
    turn has neither, an unknown role, or no assistant turn to learn from.

    >>> normalize_conversation([{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!", "weight": 1}])
    [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello!'}]
    """
    if not isinstance(turns, (list, tuple)) or not turns:
        raise ChatFormatError(f"a conversation is a non-empty list of turns, got {type(turns).__name__}")
    messages = []
    for n, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise ChatFormatError(f"turn {n} is a {type(turn).__name__}, not a dict")
        role, content = (turn.get("role"), turn.get("content")) if "role" in turn else (turn.get("from"), turn.get("value"))
        if role not in ROLE_NAMES:
            raise ChatFormatError(f"turn {n} has role {role!r}: expected one of {', '.join(ROLE_NAMES)}")
        messages.append({"role": ROLE_NAMES[role], "content": content})
    _check_messages(messages)
    if not any(m["role"] == "assistant" for m in messages):
        raise ChatFormatError("the conversation has no assistant turn: nothing to learn from")
    return messages


def _offline_help(name: str, split: str, subset: str | None) -> str:
    args = ", ".join(repr(a) for a in (name, subset) if a is not None)
    return (f"To use it offline, on a machine with a connection run\n    python -c \"import datasets; "
            f"datasets.load_dataset({args}, split={split!r}).save_to_disk('chat-data')\"\n"
            "then copy the folder here and pass its path (chat-data) instead of the name.")


def load_chat_dataset(name_or_path: str | Path, split: str = "train", limit: int | None = None,
                      subset: str | None = None) -> list[Conversation]:
    """Conversations of a chat data set, normalised (:func:`normalize_conversation`).

    ``name_or_path`` is a folder written by ``datasets``' ``save_to_disk`` (a Dataset, or a
    DatasetDict whose ``split`` is taken), a ``.json`` / ``.jsonl`` / ``.parquet`` file, or a
    Hugging Face hub name such as ``"HuggingFaceTB/smoltalk"`` (with ``subset="all"``), streamed
    so that ``limit`` conversations download only what they need. Records need a ``messages`` or
    ``conversations`` column. Records that do not normalise are skipped, with a warning that
    counts them. Offline, a hub name fails with a message that says how to get the data.
    """
    import datasets

    if limit is not None:
        check_count("limit", limit, note=" (or None for all)")
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        try:
            data = datasets.load_from_disk(str(path))
        except Exception as err:  # not a save_to_disk folder: datasets' own message, on one line
            raise ValueError(f"{path}: not a chat data folder written by datasets' save_to_disk "
                             f"({_first_line(err)})") from None
        if isinstance(data, datasets.DatasetDict):
            if split not in data:
                raise ValueError(f"{path} holds the splits {', '.join(data)}; split={split!r} is not one of them")
            data = data[split]
    elif path.is_file():
        kind = {".json": "json", ".jsonl": "json", ".parquet": "parquet"}.get(path.suffix.lower())
        if kind is None:
            raise ValueError(f"{path}: a chat data file must be .json, .jsonl or .parquet")
        with path.open("rb") as file:  # read only until the first non-blank chunk, not the whole file
            blank = not any(chunk.strip() for chunk in iter(lambda: file.read(1 << 16), b""))
        if blank:
            raise ValueError(f"{path}: the chat data file is empty")
        try:
            data = datasets.load_dataset(kind, data_files=str(path), split="train")
        except Exception as err:  # malformed JSON or parquet: datasets raises from deep inside its builder
            cause = err.__cause__ or err
            raise ValueError(f"{path}: not a readable {path.suffix} chat data file ({_first_line(cause)})") from None
    else:
        name = str(name_or_path)
        if name.startswith((".", "/", "~")) or name.endswith((".json", ".jsonl", ".parquet")):
            raise FileNotFoundError(f"{name}: no such chat data file or folder")
        try:
            data = datasets.load_dataset(name, subset, split=split, streaming=limit is not None)
            if limit is not None:
                data = data.take(limit)
            records = list(data)
        except Exception as err:  # offline, no such dataset, no such split: one clear message
            reason = _first_line(err)
            raise RuntimeError(f"could not load the chat data set {name!r} (split {split!r}) from the Hugging Face "
                               f"hub: {reason}\n{_offline_help(name, split, subset)}") from None
        return _normalize_records(records, name)
    if limit is not None:
        data = data.select(range(min(limit, len(data))))
    return _normalize_records(data, str(path))


def _first_line(err: BaseException) -> str:
    """An exception's message, first line only (or its type's name when it has none)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _normalize_records(records, where: str) -> list[Conversation]:
    out, skipped, column = [], 0, None
    for record in records:
        if column is None:
            column = next((c for c in ("messages", "conversations") if c in record), None)
            if column is None:
                raise ValueError(f"{where}: records have the columns {', '.join(record)}; a chat data set needs a "
                                 "'messages' or 'conversations' column of turns")
        try:
            out.append(normalize_conversation(record[column]))
        except ChatFormatError:
            skipped += 1
    if not out:  # training on none of them would drop the data set without a word
        raise ValueError(f"{where}: holds no conversation to train on" if not skipped else
                         f"{where}: none of its {skipped} conversations normalise (each needs user and "
                         "assistant turns with text; see minilm.sft.normalize_conversation)")
    if skipped:
        warnings.warn(f"{where}: skipped {skipped} of {skipped + len(out)} conversations that do not normalise",
                      stacklevel=3)
    return out


# ----------------------------------------------------------------------------------------------
# Encoding: rows of packed conversations and their loss mask


@dataclass
class SFTBatches:
    """Conversations as rows for :func:`minilm.train.train`.

    tokens: (rows, seq_len + 1) token ids; mask: the same shape, 1 on the tokens to learn (the
    assistant's, ``<|im_end|>`` included), 0 elsewhere (user turns, role headers, tool results,
    padding). ``conversations`` were encoded, of which ``truncated`` were cut to fit; ``dropped``
    were left out (too long, or cut to nothing to learn); ``lengths`` are the token lengths of
    every conversation given, before any was dropped; ``real_tokens`` counts the row positions
    that hold a conversation's token (the rest is padding).
    """

    tokens: np.ndarray
    mask: np.ndarray
    conversations: int
    dropped: int = 0
    truncated: int = 0
    lengths: list[int] = field(default_factory=list)
    real_tokens: int = 0

    @property
    def seq_len(self) -> int:
        return self.tokens.shape[1] - 1

    @property
    def trained_tokens(self) -> int:
        """Targets in the loss (the first token of a row is never a target)."""
        return int(self.mask[:, 1:].sum())

    def stats(self) -> dict:
        """Rows, conversations, dropped and truncated ones, how full the rows are, tokens trained."""
        return {"rows": int(self.tokens.shape[0]), "seq_len": self.seq_len, "conversations": self.conversations,
                "dropped": self.dropped, "truncated": self.truncated,
                "fill": round(self.real_tokens / self.tokens.size, 4),
                "trained_tokens": self.trained_tokens,
                "trained_share": round(self.trained_tokens / max(1, self.mask[:, 1:].size), 4)}


def encode_conversations(convs: Sequence[Conversation], tokenizer, seq_len: int, pack: bool = True,
                         too_long: str = "drop") -> SFTBatches:
    """Render each conversation (ids and assistant mask) and lay them out in rows of ``seq_len + 1``.

    With ``pack``, conversations fill a row one after another while they fit whole, then the rest
    of the row is padding; without, each has a row of its own. A conversation longer than a row is
    dropped (``too_long="drop"``) or cut to its first ``seq_len + 1`` tokens (``"truncate"``: the
    model then never sees its end, ``<|im_end|>`` included); both are counted. A cut conversation
    with no assistant token left is dropped.

    >>> from minilm.tokenizer import Tokenizer
    >>> tok = Tokenizer.train("Hi there. Hello!", vocab_size=300)
    >>> hi = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    >>> batches = encode_conversations([hi, hi, hi], tok, seq_len=49)  # 23 tokens each: two fit in a row
    >>> batches.tokens.shape, batches.conversations
    ((2, 50), 3)
    >>> tok.decode([t for t, m in zip(batches.tokens[0], batches.mask[0]) if m])
    'Hello!<|im_end|>Hello!<|im_end|>'
    """
    check_count("seq_len", seq_len)
    if too_long not in ("drop", "truncate"):
        raise ValueError(f"too_long={too_long!r} is not allowed: choose 'drop' or 'truncate'")
    width = seq_len + 1
    pad = tokenizer.special_id(PAD)
    rows_ids: list[list[int]] = []
    rows_mask: list[list[int]] = []
    kept = dropped = truncated = 0
    lengths = []
    for conversation in convs:
        ids, mask = render_conversation(tokenizer, conversation)
        lengths.append(len(ids))
        if len(ids) > width:
            if too_long == "drop" or not any(mask[:width]):
                dropped += 1
                continue
            ids, mask = ids[:width], mask[:width]
            truncated += 1
        kept += 1
        if pack and rows_ids and len(rows_ids[-1]) + len(ids) <= width:
            rows_ids[-1] += ids
            rows_mask[-1] += mask
        else:
            rows_ids.append(list(ids))
            rows_mask.append(list(mask))
    if not rows_ids:
        longest = max(lengths, default=0)
        raise ValueError(f"no conversation fits in a row of seq_len + 1 = {width} tokens ({dropped} dropped, "
                         f"the longest has {longest}): use a longer context or shorter conversations")
    tokens = np.full((len(rows_ids), width), pad, dtype=np.int64)
    masks = np.zeros((len(rows_ids), width), dtype=np.uint8)
    for r, (ids, mask) in enumerate(zip(rows_ids, rows_mask)):
        tokens[r, : len(ids)] = ids
        masks[r, : len(mask)] = mask
    real = sum(len(ids) for ids in rows_ids)
    return SFTBatches(tokens, masks, kept, dropped, truncated, lengths, real)


# ----------------------------------------------------------------------------------------------
# Training


def extend_context(model, block_size: int):
    """A copy of ``model`` that takes ``block_size`` positions (its weights unchanged).

    Only rotary positions allow it: they are computed for any length, while learned position
    embeddings have one row per position. Positions beyond those pretraining saw are new to the
    model; SFT on conversations of that length is what teaches it to use them.
    """
    from .model import GPT

    if model.config.position != "rope":
        raise ConfigError(f"context={block_size} needs rotary positions; this model has position="
                          f"{model.config.position!r} with {model.config.block_size} learned positions")
    if block_size < model.config.block_size:
        raise ConfigError(f"context={block_size} is shorter than the model's {model.config.block_size}")
    longer = GPT(replace(model.config, block_size=block_size))
    longer.load_state_dict(model.state_dict())
    return longer.to(next(model.parameters()).device)


def train_config(config: SFTConfig, seq_len: int, compile: bool = False):
    """The shared loop's settings: warmup, then the learning rate decays linearly to zero."""
    from .train import TrainConfig

    return TrainConfig(steps=config.steps, batch_size=config.batch_size, seq_len=seq_len, lr=config.lr,
                       warmup_steps=config.warmup_steps, schedule="wsd", decay_fraction=1.0, min_lr_ratio=0.0,
                       eval_every=config.eval_every, eval_tokens=10**9, checkpoint_every=max(50, config.steps // 5),
                       compile=compile, seed=config.seed + 2)


def train_sft(model, tokenizer, convs: Sequence[Conversation], config: SFTConfig,
              val_convs: Sequence[Conversation] | None = None, device: str | None = None, progress: bool = True,
              checkpoint: str | Path | None = None, compile: bool = False):
    """Fine-tune ``model`` in place on ``convs`` with the assistant-only loss; returns
    ``(TrainResult, SFTBatches)``.

    Rows are as long as the model's context. Validation (every ``config.eval_every`` steps) is
    the masked loss (and bits per byte) on the assistant tokens of ``val_convs``. With ``checkpoint``, an interrupted call resumes from it.
    Whatever the starting point (the mid-trained model, a random initialisation for the
    bootstrapping ablation), the data, schedule and batches are the same for the same config.
    """
    from .train import token_byte_lengths, train

    device = device or best_device()
    seq_len = model.config.block_size
    batches = encode_conversations(convs, tokenizer, seq_len, config.pack, config.too_long)
    val = encode_conversations(val_convs, tokenizer, seq_len, config.pack, config.too_long) if val_convs else None
    cfg = train_config(config, seq_len, compile)
    result = train(model, batches.tokens, cfg, val_tokens=val.tokens if val else None,
                   val_mask=val.mask if val else None, train_mask=batches.mask, checkpoint=checkpoint,
                   byte_lengths=token_byte_lengths(tokenizer),
                   resume=checkpoint is not None, device=device, progress=progress)
    return result, batches


def identity_rate(model, tokenizer, questions: Sequence[str] = IDENTITY_PROBES, max_new_tokens: int = 24) -> dict:
    """How often the model names itself (``minilm``) when asked who it is in words SFT never used.

    Greedy replies; returns the share, the count and the (question, reply) pairs.
    """
    from .generate import generate
    from .tokenizer import IM_END

    end = tokenizer.special_id(IM_END)
    prompts = [render_conversation(tokenizer, [{"role": "user", "content": q}], add_generation_prompt=True)[0]
               for q in questions]
    outputs = generate(model, prompts, max_new_tokens, stop_ids=(end,))
    replies = [tokenizer.decode([t for t in ids if t != end]) for ids in outputs]
    named = sum("minilm" in r.lower() for r in replies)
    return {"rate": round(named / max(1, len(replies)), 4), "named": named, "n": len(replies),
            "replies": [[q, r] for q, r in zip(questions, replies)]}


# ----------------------------------------------------------------------------------------------
# The stage


def sft_data(budget: Budget, tokenizer, seq_len: int, total: int | None = None, knowledge: dict | None = None) -> dict:
    """The stage's data: training conversations by source (fitting ``seq_len + 1`` tokens), the
    validation conversations, and the measured length statistics of what the streams give before
    any is skipped. ``knowledge`` (:func:`probe_knowledge`) makes the fact answers knowledge-aware."""

    world = World(budget.world)
    cfg = budget.sft
    width = seq_len + 1
    by_source = conversations(world, cfg, seed=cfg.seed, total=total, tokenizer=tokenizer, max_tokens=width,
                              knowledge=knowledge)
    raw = conversations(world, cfg, seed=cfg.seed, total=total, knowledge=knowledge)
    stats = length_stats(raw, tokenizer, max_tokens=width)
    if cfg.chat_dataset and cfg.chat_conversations:
        by_source["chat"] = load_chat_dataset(cfg.chat_dataset, limit=cfg.chat_conversations)
        stats["chat"] = length_stats({"chat": by_source["chat"]}, tokenizer, max_tokens=width)["chat"]
    val = conversations(world, cfg, seed=cfg.seed + 1, total=cfg.val_conversations, tokenizer=tokenizer,
                        max_tokens=width, knowledge=knowledge) if cfg.val_conversations else {}
    return {"train": by_source, "val": mix_conversations(val, cfg.seed + 1), "lengths": stats}


def sft(budget: Budget | str | None = None, checkpoint: str | Path | None = None, device: str | None = None,
        progress: bool = True) -> tuple:
    """The pipeline's SFT stage: the budget's mid-trained model fine-tuned on the budget's mix.

    Returns the model (a plain GPT on the CPU, in eval mode) and a summary: the data (counts and
    lengths per source, rows, dropped), the training history, the evaluation suite
    (:func:`minilm.eval.run_eval`) and the identity probe before and after, and the times.
    """

    budget = as_budget(budget)
    cfg = budget.sft
    device = device or best_device()
    started = time.perf_counter()
    model, tokenizer, _ = midtrain.artifact(budget, progress=progress, device=device)
    if cfg.context and cfg.context != model.config.block_size:
        model = extend_context(model, cfg.context)
    seq_len = model.config.block_size
    world = World(budget.world)
    data = sft_data(budget, tokenizer, seq_len)
    model.to(device).eval()
    before = run_eval(model, tokenizer, world, n=cfg.eval_n)
    identity_before = identity_rate(model, tokenizer)
    train_started = time.perf_counter()
    result, batches = train_sft(model, tokenizer, mix_conversations(data["train"], cfg.seed), cfg,
                                val_convs=data["val"], device=device, progress=progress, checkpoint=checkpoint,
                                compile=budget.pretrain.compile)
    train_seconds = time.perf_counter() - train_started
    model.eval()
    after = run_eval(model, tokenizer, world, n=cfg.eval_n)
    identity_after = identity_rate(model, tokenizer)
    summary = {
        "budget": budget.name, "config": asdict(cfg), "train_config": asdict(train_config(cfg, seq_len)),
        "device": device, "context": seq_len,
        "data": {"counts": {s: len(c) for s, c in data["train"].items()}, "lengths": data["lengths"],
                 "val_conversations": len(data["val"]), **batches.stats()},
        "history": result.history, "train_seconds": round(train_seconds, 1),
        "tokens_per_s": round(result.tokens_per_s),
        "eval": {"before": before, "after": after},
        "identity": {"before": identity_before, "after": identity_after},
    }
    summary["seconds"] = round(time.perf_counter() - started, 1)
    return midtrain.plain_gpt(model).cpu(), summary


def data_rows(summary: dict) -> list[list[str]]:
    """Per source: conversations used, token lengths (median / 90th percentile / max) of what the
    stream gives, and the share of those longer than a row (skipped while drawing).

    >>> s = {"data": {"counts": {"facts": 3}, "lengths": {"facts": {"n": 3, "median": 20.0, "p90": 24.0,
    ...      "max": 25, "over": 0, "over_share": 0.0}}}}
    >>> data_rows(s)
    [['facts', '3', '20 / 24 / 25', '0%']]
    """
    rows = []
    for source, count in summary["data"]["counts"].items():
        length = summary["data"]["lengths"].get(source, {})
        spread = f"{length['median']:.0f} / {length['p90']:.0f} / {length['max']}" if "median" in length else "-"
        rows.append([source, str(count), spread, f"{100 * length.get('over_share', 0):.0f}%"])
    return rows


DATA_COLUMNS = ("source", "conversations", "tokens (median / p90 / max)", "longer than a row")


# ----------------------------------------------------------------------------------------------
# The artifact, and what loads or evaluates it

# Bump when SFT changes what its model holds or how it is trained.
SFT_VERSION = 1


def chat_data_contents(chat_dataset: str) -> dict:
    """A key part for a local chat data file or folder: a hash of its contents, so that editing the
    file builds a new model instead of reusing the one trained on its old text. Empty for no chat
    data (the budgets' own keys stay as they were) and for hub names.

    >>> chat_data_contents("")
    {}
    """
    import hashlib

    folder = Path(chat_dataset).expanduser() if chat_dataset else None
    if folder is None or not folder.exists():
        return {}
    digest = hashlib.sha256()
    for file in sorted([folder] if folder.is_file() else [f for f in folder.rglob("*") if f.is_file()]):
        digest.update(str(file.relative_to(folder) if file != folder else file.name).encode() + b"\0")
        with open(file, "rb") as handle:  # in chunks: a large data file need not fit in memory
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return {"chat_data": digest.hexdigest()[:16]}


def path(budget: Budget) -> Path:
    """Keyed by the mid-trained model it starts from, the SFT settings and a local chat data set's contents."""
    k = content_key(midtrain=midtrain.path(budget).name, sft=repr(budget.sft), version=SFT_VERSION,
                    **chat_data_contents(budget.sft.chat_dataset))
    return artifact_dir(budget) / f"sft-{k}.pt"


def artifact(budget: Budget | str | None = None, progress: bool = True, device: str | None = None):
    """The budget's chat model (supervised fine-tuning of the mid-trained model): ``(model, tokenizer, summary)``.

    Built from the mid-trained model (itself built if missing) the first time. Training writes
    ``sft-<key>.partial.pt`` as it goes (an interrupted build resumes from it) and renames it to
    ``sft-<key>.pt`` with a ``.json`` summary (data, history, evaluation before and after) when done.
    """
    budget = as_budget(budget)
    model, summary = trained_model_artifact(
        path(budget), lambda partial: sft(budget, checkpoint=partial, device=device, progress=progress))
    return model, tokenizer_stage.artifact(budget, progress=progress), summary


def load_chat_model(budget=None, checkpoint: str | Path | None = None):
    """``(model, tokenizer, path)`` to chat with: the budget's SFT model, or any ``checkpoint``
    with the budget's tokenizer. Nothing is trained here: a missing SFT model is a
    FileNotFoundError that names the command that builds it.
    """
    budget = as_budget(budget)
    if checkpoint is not None:
        return (*tokenizer_stage.load_model_with_tokenizer(Path(checkpoint), budget), Path(checkpoint))
    file = path(budget)
    if not (file.exists() and file.with_suffix(".json").exists()):
        raise FileNotFoundError(f"no SFT model for the {budget.name} budget at {file}: "
                                f"build it with `minilm --budget {budget.name} sft`")
    model, tokenizer, _ = artifact(budget, progress=False)
    return model, tokenizer, file


def eval_path(checkpoint: str | Path) -> Path:
    """Where the results of a checkpoint are saved: next to it, ``<name>.eval.json``.

    >>> eval_path("runs/artifacts/laptop/sft-abc.pt").name
    'sft-abc.eval.json'
    """
    return Path(checkpoint).with_suffix(".eval.json")


def eval_checkpoint(path: str | Path, budget=None, n: int = 50, samples: int = 1, temperature: float = 0.0,
                    top_k=None, max_new_tokens: int = 48, seed: int = 0, tools: bool = True,
                    progress: bool = False) -> dict:
    """Load a checkpoint (and the budget's tokenizer), run :func:`minilm.eval.run_eval` over the budget's world,
    write the result to :func:`eval_path` atomically and return it.

    A missing or unreadable checkpoint raises :class:`minilm.checkpoint.CheckpointError` (a ValueError
    with a one-line message); a tokenizer of another vocabulary size raises a ValueError.
    """
    check_settings(n, samples, temperature, top_k, max_new_tokens)
    budget = as_budget(budget)
    path = Path(path)
    model, tokenizer = tokenizer_stage.load_model_with_tokenizer(path, budget, progress)
    results = run_eval(model, tokenizer, World(budget.world), n=n, samples=samples, temperature=temperature,
                       top_k=top_k, max_new_tokens=max_new_tokens, seed=seed, tools=tools, progress=progress)
    results["checkpoint"] = str(path)
    results["budget"] = budget.name
    write_json(eval_path(path), results)
    return results
