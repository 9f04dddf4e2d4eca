"""Supervised fine-tuning: the conversation data, real chat data, packing with the assistant-only
mask, the masked training path, and the stage (artifact, CLI, pipeline report)."""

import json
import re
from dataclasses import replace

import numpy as np
import pytest
import torch

from minilm.core.calculator import evaluate as calculate
from minilm.text.chat_template import parse_conversation, render_conversation
from minilm.core.checks import ConfigError
from minilm.core.config import SFT_SOURCES, SFTConfig, WorldConfig, get_budget
from minilm.evals.chat_eval import CATEGORIES, is_refusal, names_value
from minilm.text.world import WORKED_SUFFIX, people_split
from minilm.models.gpt import GPT, GPTConfig
from minilm.data.chat_sets import load_chat_dataset, normalize_conversation
from minilm.data.conversations import (FACT_QUESTIONS, IDENTITY, REFUSALS, conversation_length, conversations, is_known, knowledge_aware_conversations, knowledge_key, length_stats, mix_conversations, source_counts)
from minilm.evals.probes import IDENTITY_PROBES, identity_rate, knowledge_summary, probe_knowledge, refusal_rows
from minilm.stages.sft import encode_conversations, train_sft
from minilm.text.tokenizer import IM_END, PAD, RESULT_END, RESULT_START, Tokenizer
from minilm.models.train import TrainConfig, evaluate, get_batch, train
from minilm.text.world import (ATTRIBUTES, CLOZE, REFUSAL, VALUES, Item, World, final_answer, is_heldout_problem,
                               tool_call_text, verify)

torch.set_num_threads(1)
MIX = (("facts", 40), ("refusals", 20), ("arithmetic", 20), ("arithmetic_worked", 10), ("calculator", 6),
       ("letters", 12), ("multi_turn", 10), ("identity", 8))
CONFIG = SFTConfig(mix=MIX, steps=10, batch_size=4, warmup_steps=2, eval_every=0)


@pytest.fixture(scope="module")
def world():
    return World(WorldConfig(people=10, heldout_people=6))


@pytest.fixture(scope="module")
def data(world):
    return conversations(world, CONFIG)


@pytest.fixture(scope="module")
def tokenizer(world, data):
    """A small BPE over the world's biographies and the conversations: conversations are short."""
    texts = world.biographies() + [m["content"] for convs in data.values() for c in convs for m in c]
    return Tokenizer.train("\n".join(texts) * 3, vocab_size=600)


def assistant_turns(conversation):
    return [m["content"] for m in conversation if m["role"] == "assistant"]


def all_text(data) -> str:
    return "\n".join(m["content"] for convs in data.values() for c in convs for m in c)


# -- the data ---------------------------------------------------------------------------------


def test_every_source_gives_its_count_of_well_formed_conversations(data):
    assert list(data) == [source for source, _ in MIX]
    assert {s: len(c) for s, c in data.items()} == dict(MIX)
    for source, convs in data.items():
        for conversation in convs:
            roles = [m["role"] for m in conversation]
            assert roles == ["user", "assistant"] * (len(roles) // 2), (source, roles)
            assert all(m["content"].strip() for m in conversation)
    assert all(len(c) >= 4 for c in data["multi_turn"])


def test_facts_are_right_and_only_about_sft_people_refusals_only_about_unseen_ones(world, data):
    split = people_split(world)
    sft_known = {p.name: p for p in split["sft_known"]}
    sft_unknown = {p.name for p in split["sft_unknown"]}
    by_fact_items = {(i.meta["name"], i.meta["attribute"]): i for i in world.fact_items()}
    for conversation in data["facts"]:
        question, answer = conversation[0]["content"], conversation[1]["content"]
        (name,) = [n for n in sft_known if n in question]
        (attribute,) = [a for a in ATTRIBUTES if verify(by_fact_items[(name, a)], answer)]
        assert answer.startswith(name) and "\n" not in answer
        assert sft_known[name].value(attribute) in answer
    paraphrases = {re.sub(r"[A-Z][a-z]+ [A-Z][a-z]+", "NAME", c[0]["content"]) for c in data["facts"]}
    assert len(paraphrases) >= 8  # several wordings of the questions
    for conversation in data["refusals"]:
        question, answer = conversation[0]["content"], conversation[1]["content"]
        assert any(name in question for name in sft_unknown)
        assert is_refusal(answer)
        for attribute in ATTRIBUTES:  # names no value at all: not a guess of any attribute
            assert not names_value(Item("unknown_fact", question, "", "", {"attribute": attribute}), answer)


def test_no_conversation_mentions_a_person_the_eval_asks_about(world, data):
    split = people_split(world)
    text = all_text(data)
    for person in split["eval_known"] + split["eval_unknown"]:
        assert person.name not in text


def test_arithmetic_is_right_and_from_the_training_side(data):
    for conversation in data["arithmetic"]:
        a, op, b = re.search(r"(\d+) ([-+*]) (\d+)", conversation[0]["content"]).groups()
        assert not is_heldout_problem(int(a), op, int(b))
        assert conversation[1]["content"] == f"{a} {op} {b} = {calculate(f'{a} {op} {b}')}."
    for conversation in data["arithmetic_worked"]:
        question, answer = conversation[0]["content"], conversation[1]["content"]
        assert question.endswith(WORKED_SUFFIX)
        a, op, b = re.search(r"(\d+) ([-+*]) (\d+)", question).groups()
        assert not is_heldout_problem(int(a), op, int(b))
        assert final_answer(answer) == str(calculate(f"{a} {op} {b}")) and answer.count("Answer:") == 1
    for conversation in data["calculator"]:
        a, op, b = re.search(r"(\d+) ([-+*]) (\d+)", conversation[0]["content"]).groups()
        assert max(len(a), len(b)) >= 4 and not is_heldout_problem(int(a), op, int(b))
        assert conversation[1]["content"] == tool_call_text(int(a), op, int(b))


def test_letters_are_right_and_from_training_words(world, data):
    heldout_words = {i.meta["word"] for i in world.letter_items(400, "any", heldout=True)}
    for conversation in data["letters"]:
        question, answer = conversation[0]["content"], conversation[1]["content"]
        word = re.search(r"'([a-z]+)'\.?\??$", question).group(1)
        assert word not in heldout_words
        if question.startswith("How many"):
            letter = re.search(r"letter '([a-z])'", question).group(1)
            assert final_answer(answer) == str(word.count(letter))
        else:
            assert final_answer(answer) == "-".join(word)


def test_identity_answers_name_minilm_and_probe_questions_are_new(data):
    for conversation in data["identity"]:
        assert "minilm" in conversation[1]["content"]
    trained = {q for questions, _ in IDENTITY for q in questions}
    assert not trained & set(IDENTITY_PROBES)


def test_source_counts_share_a_total_and_grow_nested():
    mix = dict(MIX)
    previous = {s: 0 for s in mix}
    for total in range(0, 300, 7):
        counts = source_counts(mix, total)
        assert sum(counts.values()) == total
        assert all(counts[s] >= previous[s] for s in mix)  # a larger data set never has fewer of a source
        whole = sum(mix.values())
        assert all(abs(counts[s] - total * mix[s] / whole) <= 1 for s in mix)
        previous = counts
    with pytest.raises(ValueError, match="total=-1"):
        source_counts(mix, -1)


def test_smaller_data_sets_are_subsets_of_larger_ones(world):
    small, large = conversations(world, CONFIG, total=12), conversations(world, CONFIG, total=60)
    assert sum(map(len, small.values())) == 12 and sum(map(len, large.values())) == 60
    for source in small:
        assert large[source][: len(small[source])] == small[source]
    again = conversations(world, CONFIG, total=12)
    other = conversations(world, CONFIG, seed=1, total=12)
    assert again == small and other != small


def test_the_smallest_sweep_point_trains(world, tokenizer):
    """Ten conversations (chapter 08's smallest data set) fill fewer rows than a batch: rows repeat."""
    config = replace(CONFIG, steps=3, batch_size=16, warmup_steps=1)
    convs = mix_conversations(conversations(world, config, total=10, tokenizer=tokenizer, max_tokens=65))
    torch.manual_seed(0)
    model = GPT(GPTConfig.modern(vocab_size=tokenizer.vocab_size, block_size=64, n_layer=1, n_embd=32, n_head=1))
    result, batches = train_sft(model, tokenizer, convs, config, device="cpu", progress=False)
    assert batches.conversations == 10 and batches.tokens.shape[0] < 16
    assert len(result.history) == 1 and np.isfinite(result.history[0]["loss"])


def test_drawing_with_a_tokenizer_keeps_only_conversations_that_fit(world, tokenizer):
    raw = conversations(world, CONFIG)
    stats = length_stats(raw, tokenizer, max_tokens=72)
    assert stats["arithmetic_worked"]["over"] > 0  # worked solutions are long: some do not fit
    fitting = conversations(world, CONFIG, tokenizer=tokenizer, max_tokens=72)
    assert {s: len(c) for s, c in fitting.items()} == dict(MIX)
    for source, convs in fitting.items():
        lengths = [conversation_length(tokenizer, c) for c in convs]
        assert max(lengths) <= 72
        # the stream's conversations that fit, in its order (and more drawn to make up the count)
        expected = [c for c in raw[source] if conversation_length(tokenizer, c) <= 72]
        assert convs[: len(expected)] == expected
    lengths = [conversation_length(tokenizer, c) for c in raw["facts"]]
    assert stats["facts"]["max"] == max(lengths) and stats["facts"]["median"] == float(np.median(lengths))
    with pytest.raises(ValueError, match="found only 0 of 3"):
        conversations(world, replace(CONFIG, mix=(("arithmetic_worked", 3),)), tokenizer=tokenizer, max_tokens=5)
    with pytest.raises(ValueError, match="give both"):
        conversations(world, CONFIG, tokenizer=tokenizer)


def test_sft_config_errors_name_the_bad_value():
    with pytest.raises(ConfigError, match="mix source='jokes' is not allowed"):
        SFTConfig(mix=(("jokes", 3),))
    with pytest.raises(ConfigError, match="mix names 'facts' twice"):
        SFTConfig(mix=(("facts", 3), ("facts", 4)))
    with pytest.raises(ConfigError, match="mix counts sum to 0"):
        SFTConfig(mix=(("facts", 0),))
    with pytest.raises(ConfigError, match="too_long='cut' is not allowed"):
        SFTConfig(too_long="cut")
    with pytest.raises(ConfigError, match="chat_conversations=5 needs a chat_dataset"):
        SFTConfig(chat_conversations=5)
    with pytest.raises(ConfigError, match="warmup_steps=10 is out of range"):
        SFTConfig(steps=10, warmup_steps=10)
    assert set(SFT_SOURCES) >= {s for s, _ in get_budget("laptop").sft.mix}


# -- packing and the loss mask ----------------------------------------------------------------


def trained_text_reference(tokenizer, messages) -> str:
    """What the assistant must learn, from the messages alone: its contents (tool results cut) and
    an end of turn after each."""
    out = ""
    for m in messages:
        if m["role"] == "assistant":
            out += re.sub(re.escape(RESULT_START) + ".*?" + re.escape(RESULT_END), "", m["content"]) + IM_END
    return out


@pytest.mark.parametrize("pack", [True, False])
def test_rows_hold_whole_conversations_and_train_only_assistant_tokens(world, tokenizer, pack):
    convs = mix_conversations(conversations(world, CONFIG, tokenizer=tokenizer, max_tokens=97), seed=3)
    batches = encode_conversations(convs, tokenizer, seq_len=96, pack=pack)
    pad = tokenizer.special_id(PAD)
    assert batches.tokens.shape[1] == 97 and batches.mask.shape == batches.tokens.shape
    assert batches.conversations == len(convs) and batches.dropped == batches.truncated == 0
    if not pack:
        assert batches.tokens.shape[0] == len(convs)
    else:
        assert batches.tokens.shape[0] < len(convs) and batches.stats()["fill"] > 0.6
    parsed_rows = []
    for row, mask in zip(batches.tokens, batches.mask):
        real = row[row != pad].tolist()
        assert (row[len(real):] == pad).all() and not mask[len(real):].any()  # padding only at the end, untrained
        messages = parse_conversation(tokenizer, real)
        parsed_rows.append(messages)
        # the trained tokens are exactly the assistant's (tool results excluded) and its ends of turn
        assert tokenizer.decode(row[mask == 1].tolist()) == trained_text_reference(tokenizer, messages)
    flat_in = [m for c in convs for m in c]
    assert [m for messages in parsed_rows for m in messages] == flat_in  # nothing split, lost or reordered
    # the batches the training loop draws: a target is kept exactly where the mask says
    x, y = get_batch(batches.tokens, 16, 96, seed=0, step=0, mask=batches.mask)
    rows = [next(i for i, r in enumerate(batches.tokens) if (r[:-1] == xr).all()) for xr in x.numpy()]
    for yr, r in zip(y.numpy(), rows):
        assert ((yr != -1) == (batches.mask[r, 1:] == 1)).all()
        assert (yr[yr != -1] == batches.tokens[r, 1:][yr != -1]).all()
    assert batches.trained_tokens == sum(sum(render_conversation(tokenizer, c)[1]) for c in convs)


def test_too_long_conversations_are_dropped_or_truncated_and_counted(tokenizer):
    short = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    long = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "word " * 60}]
    question_only_long = [{"role": "user", "content": "word " * 60}, {"role": "assistant", "content": "Yes."}]
    n_short = len(render_conversation(tokenizer, short)[0])
    dropped = encode_conversations([short, long, question_only_long, short], tokenizer, seq_len=32)
    assert (dropped.conversations, dropped.dropped, dropped.truncated) == (2, 2, 0)
    assert dropped.lengths[0] == n_short and max(dropped.lengths) > 33
    cut = encode_conversations([short, long, question_only_long], tokenizer, seq_len=32, too_long="truncate")
    # the question-only one has nothing to learn within 33 tokens: dropped even when truncating
    assert (cut.conversations, cut.dropped, cut.truncated) == (2, 1, 1)
    assert cut.tokens.shape == (2, 33) and cut.mask[1].sum() > 0
    assert cut.tokens[1].tolist().count(tokenizer.special_id(IM_END)) == 1  # the user's; the reply never ends
    with pytest.raises(ValueError, match="no conversation fits in a row of seq_len \\+ 1 = 33 tokens"):
        encode_conversations([long], tokenizer, seq_len=32)
    with pytest.raises(ValueError, match="too_long='cut'"):
        encode_conversations([short], tokenizer, seq_len=32, too_long="cut")


# -- the training loop with rows and a loss mask ----------------------------------------------

TINY = GPTConfig.modern(vocab_size=32, block_size=16, n_layer=1, n_embd=32, n_head=2)


def tiny_rows(seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, 32, size=(12, 17))
    mask = (rng.random((12, 17)) < 0.3).astype(np.uint8)
    return tokens, mask


def test_masked_loss_counts_only_the_kept_targets():
    tokens, mask = tiny_rows()
    torch.manual_seed(0)
    model = GPT(TINY)
    cfg = TrainConfig(steps=1, batch_size=4, seq_len=16, lr=0.0, warmup_steps=0, eval_every=1, eval_tokens=10**6)
    result = train(model, tokens, cfg, val_tokens=tokens, train_mask=mask, val_mask=mask, progress=False)
    picked = np.random.default_rng([0, 0, 0]).integers(0, len(tokens), size=4)  # the rows of step 0 (seed 0)
    logits, _ = model(torch.from_numpy(tokens[picked, :-1]))
    keep = torch.from_numpy(mask[picked, 1:] == 1)
    reference = torch.nn.functional.cross_entropy(logits[keep], torch.from_numpy(tokens[picked, 1:])[keep]).item()
    assert result.history[0]["loss"] == pytest.approx(reference, rel=1e-5)
    logits, _ = model(torch.from_numpy(tokens[:, :-1]))
    targets = torch.from_numpy(tokens[:, 1:])
    kept = torch.from_numpy(mask[:, 1:] == 1)
    full = torch.nn.functional.cross_entropy(logits[kept], targets[kept]).item()
    assert result.history[0]["val_loss"] == pytest.approx(full, rel=1e-5)
    byte_lengths = np.full(32, 2)
    metrics = evaluate(model, tokens, 16, 5, 10**6, byte_lengths, mask=mask)
    assert metrics["loss"] == pytest.approx(full, rel=1e-5)
    assert metrics["bpb"] == pytest.approx(full / np.log(2) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="leaves no target"):
        evaluate(model, tokens, 16, 4, 10**6, mask=np.zeros_like(mask))


def test_training_on_rows_resumes_exactly(tmp_path):
    tokens, mask = tiny_rows(2)
    cfg = TrainConfig(steps=8, batch_size=4, seq_len=16, lr=5e-3, warmup_steps=2, eval_every=0)

    def fresh(seed=0):
        torch.manual_seed(seed)
        return GPT(TINY)

    straight = train(fresh(), tokens, cfg, train_mask=mask, progress=False, log_every=1)
    path = tmp_path / "rows.pt"
    train(fresh(), tokens, cfg, train_mask=mask, checkpoint=path, progress=False, log_every=1, stop_at=4)
    resumed = train(fresh(7), tokens, cfg, train_mask=mask, checkpoint=path, resume=True, progress=False, log_every=1)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in straight.history]


def test_rows_and_masks_of_the_wrong_shape_are_clear_errors():
    tokens, mask = tiny_rows()
    with pytest.raises(ValueError, match="rows of tokens must be seq_len \\+ 1 = 9 long"):
        get_batch(tokens, 2, 8, seed=0, step=0)
    with pytest.raises(ValueError, match="the loss mask has shape"):
        get_batch(tokens, 2, 16, seed=0, step=0, mask=mask[:, :-1])
    stream = np.arange(100) % 32  # the target after token t is t + 1 (mod 32); odd targets are kept
    x, y = get_batch(stream, 3, 16, seed=0, step=0, mask=(stream % 2).astype(np.uint8))
    following = (x + 1) % 32
    assert torch.equal(y, torch.where(following % 2 == 1, following, -1))


# -- real chat data ---------------------------------------------------------------------------


def test_load_chat_dataset_from_local_folders_and_files(tmp_path):
    import datasets

    records = [{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Hi {i}"},
                             {"role": "assistant", "content": f"Hello {i}."}]} for i in range(5)]
    records.append({"messages": [{"role": "user", "content": "Only a question"}]})  # nothing to learn: skipped
    datasets.Dataset.from_list(records).save_to_disk(str(tmp_path / "flat"))
    with pytest.warns(UserWarning, match="skipped 1 of 6"):
        loaded = load_chat_dataset(tmp_path / "flat")
    assert loaded == [r["messages"] for r in records[:5]]
    datasets.DatasetDict({"train": datasets.Dataset.from_list(records[:5]),
                          "test": datasets.Dataset.from_list(records[:1])}).save_to_disk(str(tmp_path / "splits"))
    assert load_chat_dataset(str(tmp_path / "splits"), split="test") == [records[0]["messages"]]
    assert len(load_chat_dataset(tmp_path / "splits", limit=2)) == 2
    with pytest.raises(ValueError, match="split='validation' is not one of them"):
        load_chat_dataset(tmp_path / "splits", split="validation")
    sharegpt = tmp_path / "chats.jsonl"
    sharegpt.write_text("\n".join(json.dumps({"conversations": [{"from": "human", "value": f"Q{i}"},
                                                                {"from": "gpt", "value": f"A{i}"}]}) for i in range(3)))
    assert load_chat_dataset(sharegpt)[2] == [{"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A2"}]
    odd = tmp_path / "odd.jsonl"
    odd.write_text(json.dumps({"text": "no turns"}))
    with pytest.raises(ValueError, match="a 'messages' or 'conversations' column"):
        load_chat_dataset(odd)
    with pytest.raises(FileNotFoundError, match="no such chat data file"):
        load_chat_dataset(tmp_path / "missing.jsonl")


@pytest.mark.parametrize("name, content, message", [
    ("empty.jsonl", "", "the chat data file is empty"),
    ("blank.json", "\n \n", "the chat data file is empty"),
    ("broken.jsonl", '{"messages": [{"role": "user"', "not a readable .jsonl chat data file"),
    ("broken.json", "{bad", "not a readable .json chat data file"),
    ("noturns.jsonl", json.dumps({"messages": "hello"}), "none of its 1 conversations normalise"),
])
def test_unreadable_chat_data_is_one_clear_error(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        load_chat_dataset(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_folder_that_is_not_a_saved_dataset_is_named(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="not a chat data folder written by datasets' save_to_disk"):
        load_chat_dataset(tmp_path)


def test_the_chat_models_key_follows_the_chat_datas_contents(tmp_path):
    # Keyed by the path alone, an edited file would load the model trained on its old text.
    from minilm.stages.sft import path as sft_model_path
    from minilm.studies.sft_ablations import path as sft_ablations_path

    data = tmp_path / "chats.jsonl"
    budget = get_budget("smoke")
    with_data = budget.with_overrides(sft=replace(budget.sft, chat_dataset=str(data), chat_conversations=10))
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}))
    first = sft_model_path(with_data), sft_ablations_path(with_data)
    assert sft_model_path(with_data) == first[0]  # the same contents, the same key
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Bye."}]}))
    assert sft_model_path(with_data) != first[0] and sft_ablations_path(with_data) != first[1]
    assert sft_model_path(budget) != first[0]


def test_chat_data_contents_hash_a_large_file_in_chunks_as_a_whole(tmp_path):
    # Read in 1 MiB chunks (a large file need not fit in memory), hashed as the whole file was before:
    # the keys of models already built stay valid.
    import hashlib

    from minilm.stages.sft import chat_data_contents

    data = tmp_path / "chats.jsonl"
    data.write_bytes(bytes(range(256)) * 10_000)  # 2.4 MiB: three chunks
    whole = hashlib.sha256(b"chats.jsonl\0" + data.read_bytes()).hexdigest()[:16]
    assert chat_data_contents(str(data)) == {"chat_data": whole}
    folder_key = chat_data_contents(str(tmp_path))["chat_data"]
    assert folder_key == hashlib.sha256(b"chats.jsonl\0" + data.read_bytes()).hexdigest()[:16]


def test_a_hub_name_offline_fails_with_how_to_get_it():
    with pytest.raises(RuntimeError) as err:
        load_chat_dataset("HuggingFaceTB/smoltalk", subset="all", limit=10)
    message = str(err.value)
    assert "'HuggingFaceTB/smoltalk'" in message and "save_to_disk" in message and "'all'" in message


def test_normalize_conversation_rejects_what_it_cannot_read():
    from minilm.text.chat_template import ChatFormatError

    with pytest.raises(ChatFormatError, match="role 'narrator'"):
        normalize_conversation([{"role": "narrator", "content": "Once"}])
    with pytest.raises(ChatFormatError, match="no assistant turn"):
        normalize_conversation([{"from": "human", "value": "Hi"}])


# -- training a tiny chat model ---------------------------------------------------------------


def test_train_sft_teaches_the_reply_and_the_end_of_turn(world, tokenizer):
    identity = SFTConfig(mix=(("identity", 40), ("facts", 40)), steps=120, batch_size=8, lr=3e-3, warmup_steps=10,
                         eval_every=60)
    convs = mix_conversations(conversations(world, identity, tokenizer=tokenizer, max_tokens=49))
    val = mix_conversations(conversations(world, identity, seed=1, total=20, tokenizer=tokenizer, max_tokens=49))
    torch.manual_seed(0)
    model = GPT(GPTConfig.modern(vocab_size=tokenizer.vocab_size, block_size=48, n_layer=2, n_embd=64, n_head=2))
    result, batches = train_sft(model, tokenizer, convs, identity, val_convs=val, device="cpu", progress=False)
    assert batches.conversations == len(convs) and result.history[-1]["step"] == 120
    evals = [h for h in result.history if "val_loss" in h]
    assert len(evals) == 2 and evals[-1]["val_loss"] < 0.5 * result.history[0]["loss"]
    end = tokenizer.special_id(IM_END)
    prompt = render_conversation(tokenizer, [{"role": "user", "content": "Who are you?"}], add_generation_prompt=True)[0]
    from minilm.inference.generate import generate

    (reply,) = generate(model.eval(), [prompt], 40, stop_ids=(end,))
    assert reply[-1] == end and "minilm" in tokenizer.decode(reply)
    probe = identity_rate(model, tokenizer)
    assert probe["n"] == len(IDENTITY_PROBES) and 0 <= probe["rate"] <= 1


# -- the stage --------------------------------------------------------------------------------


def test_sft_stage_builds_the_artifact_once_with_eval_before_and_after(isolated_runs, monkeypatch, small_tokenizer):
    import minilm.stages.sft
    from minilm.stages.sft import artifact as sft_artifact, path as sft_model_path

    torch.manual_seed(0)
    start = GPT(GPTConfig.modern(vocab_size=small_tokenizer.vocab_size, block_size=128, n_layer=1, n_embd=64,
                                 n_head=1))
    monkeypatch.setattr(minilm.stages.midtrain, "artifact", lambda budget, **kw: (start, small_tokenizer, {}))
    monkeypatch.setattr(minilm.stages.tokenizer, "artifact", lambda budget, **kw: small_tokenizer)
    budget = get_budget("smoke")
    budget = budget.with_overrides(sft=replace(budget.sft, steps=4, warmup_steps=1, eval_every=2, eval_n=2))
    model, tokenizer, summary = sft_artifact(budget, progress=False, device="cpu")
    path = sft_model_path(budget)
    assert path.exists() and path.with_suffix(".json").exists() and not path.with_suffix(".partial.pt").exists()
    assert summary["data"]["counts"] == budget.sft.counts() and summary["data"]["dropped"] == 0
    assert set(summary["eval"]) == {"before", "after"}
    for result in summary["eval"].values():
        assert set(result["categories"]) == set(CATEGORIES) and result["categories"]["facts"]["n"] == 2
    assert summary["history"][-1]["step"] == 4 and "val_loss" in summary["history"][-1]
    assert summary["data"]["lengths"]["facts"]["n"] == budget.sft.counts()["facts"]
    again, _, same = sft_artifact(budget, progress=False, device="cpu")  # loaded, not trained again
    assert same == summary
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def fake_eval(accuracy: float) -> dict:
    entry = {"accuracy": accuracy, "correct": int(10 * accuracy), "n": 10, "ci_low": 0.0, "ci_high": 1.0}
    return {"categories": {c: dict(entry) for c in CATEGORIES}, "format": dict(entry),
            "hallucination_rate": 1 - accuracy, "false_refusal_rate": 0.0,
            "rates": {"hallucination": dict(entry, accuracy=1 - accuracy), "false_refusal": dict(entry, accuracy=0.0)}}


def fake_summary() -> dict:
    history = [{"step": s, "loss": 3.0 - s / 4, "lr": 1e-3, **({"val_loss": 2.9 - s / 4, "val_bpb": 1.0} if s % 2 == 0
                                                               else {})} for s in range(1, 5)]
    return {"config": {"steps": 4, "eval_n": 10}, "seconds": 12.0, "train_seconds": 5.0, "history": history,
            "data": {"counts": {"facts": 3, "identity": 1}, "conversations": 4, "rows": 2, "seq_len": 64,
                     "fill": 0.8, "dropped": 0, "truncated": 0,
                     "lengths": {"facts": {"n": 3, "median": 26.0, "p90": 30.0, "max": 31, "over": 0, "over_share": 0.0},
                                 "identity": {"n": 1, "median": 40.0, "p90": 40.0, "max": 40, "over": 0,
                                              "over_share": 0.0}}},
            "eval": {"before": fake_eval(0.1), "after": fake_eval(0.7)},
            "identity": {"before": {"rate": 0.0, "replies": [["Who am I talking to?", "ROMEO."]]},
                         "after": {"rate": 1.0, "replies": [["Who am I talking to?", "I am minilm."]]}}}


def test_cli_sft_prints_data_eval_tables_and_identity(monkeypatch, capsys):
    import minilm.stages.sft
    from minilm.cli import main

    seen = {}

    def fake_artifact(budget, device=None):
        seen["budget"] = budget
        return None, None, fake_summary()

    monkeypatch.setattr(minilm.stages.sft, "artifact", fake_artifact)
    main(["--budget", "smoke", "sft", "--steps", "7", "--lr", "0.002"])
    out = capsys.readouterr().out
    assert seen["budget"].sft.steps == 7 and seen["budget"].sft.lr == 0.002 and seen["budget"].sft.warmup_steps == 2
    assert "| facts | 3 | 26 / 30 / 31 | 0% |" in out
    assert "| category | mid-trained | SFT |" in out and "| facts (n=10) | 10% [0%, 100%] | 70% [0%, 100%] |" in out
    assert "names itself minilm: 0% before, 100% after" in out
    with pytest.raises(SystemExit):
        main(["--budget", "smoke", "sft", "--lr", "-1"])
    assert "lr=-1.0 is out of range" in capsys.readouterr().err


def test_pipeline_stage_reports_the_eval_table_before_and_after(tmp_path, monkeypatch):
    import minilm.stages.sft
    from minilm.pipeline import SECTIONS, Run, stage_sft

    assert list(SECTIONS)[-2:] == ["midtrain", "sft"]
    monkeypatch.setattr(minilm.stages.sft, "artifact", lambda budget: (None, None, fake_summary()))
    run = Run(tmp_path)
    figures = stage_sft(get_budget("smoke"), run)
    text = "\n".join(run.sections)
    assert "## Supervised fine-tuning" in text and "| category | mid-trained | SFT |" in text
    assert "| facts (n=10) | 10% [0%, 100%] | 70% [0%, 100%] |" in text and "`Who am I talking to?` → `I am minilm.`" in text
    assert (tmp_path / "figures" / "sft_eval.png").exists() and (tmp_path / "figures" / "sft_training.png").exists()
    assert figures["facts_before"] == 0.1 and figures["facts_after"] == 0.7 and figures["identity_after"] == 1.0


# -- knowledge probing (Llama 3): refuse what the model does not know ---------------------------

SAMPLES = 4


def scripted_right(world) -> dict:
    """How many of the 4 samples the scripted model gets right, fact by fact: every count 0..4 occurs."""
    people = people_split(world)["sft_known"]
    return {(p.name, a): (3 * i + j) % (SAMPLES + 1) for i, p in enumerate(people) for j, a in enumerate(ATTRIBUTES)}


def scripted_complete(world, right: dict, calls: list):
    """A stand-in for minilm.inference.generate.complete whose answers are known: sample ``s`` of a fact is
    right when ``s < right[fact]``; wrong samples name another value, or hedge between the true
    value and another (which the verifier must count as wrong)."""
    everyone = world.people + world.heldout_people

    def complete(model, tokenizer, prompts, max_new_tokens=32, stop=None, **sampling):
        sample = len(calls)
        calls.append({"prompts": list(prompts), "stop": stop, **sampling})
        texts = []
        for prompt in prompts:
            (fact,) = [(p.name, a) for p in everyone for a in ATTRIBUTES
                       if prompt.endswith(CLOZE[a].format(name=p.name))]
            truth = next(p for p in everyone if p.name == fact[0]).value(fact[1])
            other = next(v for v in VALUES[fact[1]] if v != truth)
            texts.append(f" {truth}" if sample < right.get(fact, 0) else
                         f" {other}" if sample % 2 else f" {truth} or {other}")
        return texts

    return complete


@pytest.fixture(scope="module")
def knowledge(world):
    calls = []
    # minilm.evals.probes binds `complete` when first imported: import it before the patch, or it would keep
    # the stand-in for every later test.
    import minilm.evals.probes  # noqa: F401

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("minilm.inference.generate.complete", scripted_complete(world, scripted_right(world), calls))
        probed = probe_knowledge(None, None, world, people_split(world)["sft_known"], samples=SAMPLES,
                                 temperature=0.7, seed=5)
    return probed, calls


def test_probe_knowledge_counts_right_samples_and_splits_known_by_majority(world, knowledge):
    probed, calls = knowledge
    right = scripted_right(world)
    assert list(probed) == [knowledge_key(n, a) for n, a in right]  # people, then attributes, in order
    assert {(e["name"], e["attribute"]): e["right"] for e in probed.values()} == right
    known = {key for key, e in probed.items() if e["known"]}
    assert known == {knowledge_key(n, a) for (n, a), r in right.items() if r >= 3}  # 3 or 4 of 4; 2 is a tie
    assert 0 < len(known) < len(probed)
    split = {p.name: p for p in people_split(world)["sft_known"]}
    for entry in probed.values():
        assert entry["samples"] == SAMPLES and len(entry["answers"]) == SAMPLES
        assert entry["value"] == split[entry["name"]].value(entry["attribute"])
    json.dumps(probed)  # JSON-friendly
    # One call per sample, each with its own seed, asking the cloze prompts few-shot, sampled and cut at the full stop.
    assert len(calls) == SAMPLES and [c["seed"] for c in calls] == [5, 6, 7, 8]
    assert all(c["temperature"] == 0.7 and c["stop"] == "." for c in calls)
    cloze = {i.meta["name"] + i.meta["attribute"]: i.meta["cloze"] for i in world.fact_items()}
    for prompt, (name, attribute) in zip(calls[0]["prompts"], right):
        assert prompt.endswith(cloze[name + attribute]) and prompt.count(".") == 3  # three solved examples first


def test_is_known_is_a_strict_majority():
    assert [is_known(r, 4) for r in range(5)] == [False, False, False, True, True]
    assert [is_known(r, 3) for r in range(4)] == [False, False, True, True]


def test_probe_knowledge_runs_a_real_model_and_checks_its_arguments(world, tokenizer):
    torch.manual_seed(0)
    model = GPT(GPTConfig.modern(vocab_size=tokenizer.vocab_size, block_size=96, n_layer=1, n_embd=32, n_head=2)).eval()
    people = people_split(world)["sft_known"][:2] + people_split(world)["sft_unknown"][:1]
    greedy = probe_knowledge(model, tokenizer, world, people, samples=2, temperature=0.0)
    assert len(greedy) == 3 * len(ATTRIBUTES)
    for entry in greedy.values():  # greedy: every sample is the same answer, so all right or all wrong
        assert entry["answers"][0] == entry["answers"][1] and entry["right"] in (0, 2)
    sampled = probe_knowledge(model, tokenizer, world, people, samples=3, temperature=1.0, seed=1)
    assert any(len(set(e["answers"])) > 1 for e in sampled.values())
    assert sampled == probe_knowledge(model, tokenizer, world, people, samples=3, temperature=1.0, seed=1)
    with pytest.raises(ValueError, match="samples=0"):
        probe_knowledge(model, tokenizer, world, people, samples=0)
    with pytest.raises(ValueError, match="temperature=-1"):
        probe_knowledge(model, tokenizer, world, people, temperature=-1)
    with pytest.raises(ValueError, match="Nobody Here"):
        probe_knowledge(model, tokenizer, world, [replace(people[0], name="Nobody Here")])


def fact_of(world, answer: str):
    """(name, attribute) of the sft_known fact that a one-sentence answer states, or None."""
    for item in world.fact_items():
        if answer.startswith(item.meta["name"]) and verify(item, answer):
            return item.meta["name"], item.meta["attribute"]
    return None


def test_knowledge_aware_conversations_answer_known_facts_and_refuse_unknown_ones(world, knowledge):
    probed, _ = knowledge
    right = scripted_right(world)
    convs = knowledge_aware_conversations(world, probed, people_split(world)["sft_known"], rng_seed=0)
    split = people_split(world)
    questions_per_person = sum(len(q) for q in FACT_QUESTIONS.values())
    assert len(convs) == len(split["sft_known"]) * questions_per_person
    assert len({c[0]["content"] for c in convs}) == len(convs)  # every wording of every fact, once
    by_person = {p.name: p for p in split["sft_known"]}
    seen = {True: 0, False: 0}
    for conversation in convs:
        (question, answer) = (conversation[0]["content"], conversation[1]["content"])
        (name,) = [n for n in by_person if n in question]
        (attribute,) = [a for a in ATTRIBUTES if any(question == q.format(name=name) for q in FACT_QUESTIONS[a])]
        item = next(i for i in world.fact_items() if i.meta["name"] == name and i.meta["attribute"] == attribute)
        known = right[(name, attribute)] >= 3
        seen[known] += 1
        if known:
            assert verify(item, answer) and not is_refusal(answer), (question, answer)
        else:
            assert is_refusal(answer) and not names_value(item, answer), (question, answer)
            knows_some = any(right[(name, a)] >= 3 for a in ATTRIBUTES)
            # "I don't know who Ada is" would be false of a person the model knows something about
            assert answer in ([REFUSAL] if knows_some else [r.format(name=name) for r in REFUSALS]), answer
    assert seen[True] and seen[False]
    text = "\n".join(m["content"] for c in convs for m in c)
    for person in split["eval_known"] + split["eval_unknown"]:
        assert person.name not in text
    assert convs == knowledge_aware_conversations(world, probed, rng_seed=0)  # default people: sft_known
    assert convs != knowledge_aware_conversations(world, probed, rng_seed=1)


def test_knowledge_aware_conversations_refuse_eval_people_and_missing_probes(world, knowledge):
    probed, _ = knowledge
    split = people_split(world)
    with pytest.raises(ValueError, match="evaluation asks about"):
        knowledge_aware_conversations(world, probed, split["sft_known"] + split["eval_known"][:1])
    missing = {k: v for k, v in probed.items() if not k.startswith(split["sft_known"][0].name)}
    with pytest.raises(ValueError, match=re.escape(split["sft_known"][0].name)):
        knowledge_aware_conversations(world, missing)
    broken = {**probed, next(iter(probed)): {"right": 5, "samples": 4}}
    with pytest.raises(ValueError, match="right=5, samples=4"):
        knowledge_aware_conversations(world, broken)


def test_the_sft_mix_with_knowledge_changes_only_the_answers_to_unknown_facts(world, knowledge):
    probed, _ = knowledge
    right = scripted_right(world)
    plain = conversations(world, CONFIG)
    aware = conversations(world, CONFIG, knowledge=probed)
    assert {s: len(c) for s, c in aware.items()} == dict(MIX)
    changed = 0
    for source in plain:
        for before, after in zip(plain[source], aware[source]):
            assert [m["role"] for m in before] == [m["role"] for m in after]
            for b, a in zip(before, after):
                if b["role"] == "user" or source not in ("facts", "multi_turn"):
                    assert a == b
                    continue
                fact = fact_of(world, b["content"])
                if fact is None or right[fact] >= 3:
                    assert a == b
                else:
                    assert is_refusal(a["content"]) and a != b
                    changed += 1
    assert changed > 10
    all_known = {k: {**v, "right": SAMPLES} for k, v in probed.items()}
    assert conversations(world, CONFIG, knowledge=all_known) == plain
    text = all_text(aware)
    for person in people_split(world)["eval_known"] + people_split(world)["eval_unknown"]:
        assert person.name not in text


def test_knowledge_summary_and_refusal_rows_count_known_and_unknown(world, knowledge):
    probed, _ = knowledge
    right = scripted_right(world)
    summary = knowledge_summary(probed)
    known = sum(r >= 3 for r in right.values())
    assert (summary["facts"], summary["known"], summary["unknown"]) == (len(right), known, len(right) - known)
    for attribute in ATTRIBUTES:
        expected = sum(r >= 3 for (n, a), r in right.items() if a == attribute)
        assert summary["by_attribute"][attribute]["known"] == expected
    rows = refusal_rows(probed)
    assert [r[0] for r in rows] == [*ATTRIBUTES, "all"]
    assert rows[-1][1:4] == [str(len(right)), str(known), str(len(right) - known)]
