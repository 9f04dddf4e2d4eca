"""Exercise 07 checked against the package: minilm.stages.midtrain (the tool-result mask, on every
window of real calculator practice) and minilm.studies.grow (the grown model's weights, and its
logits, which must not move)."""

import pytest
import torch

from minilm.models.gpt import GPT, GPTConfig
from minilm.stages.midtrain import mask_tool_results
from minilm.studies.grow import grow_depth
from minilm.text.tokenizer import RESULT_END, RESULT_START, SPECIAL_TOKENS, Tokenizer
from minilm.text.world import World, WorldConfig


@pytest.fixture(scope="module")
def practice():
    """Token ids of real calculator-practice documents, and the two result markers' ids."""
    world = World(WorldConfig(people=4, heldout_people=2))
    docs = world.tool_documents(4, max_digits=5, seed="exercise")
    tok = Tokenizer.train("\n".join(docs), vocab_size=256 + len(SPECIAL_TOKENS) + 40)
    ids = [i for doc in docs for i in tok.encode(doc, allowed_special="all")]
    return ids, tok.special_id(RESULT_START), tok.special_id(RESULT_END)


@pytest.mark.parametrize("seq_len", [12, 24, 64])
def test_mask_matches_the_package_on_every_window(exercise, practice, seq_len):
    ids, start, end = practice
    rows = [ids[s : s + seq_len] for s in range(len(ids) - seq_len)]  # windows start anywhere, in results too
    expected = mask_tool_results(torch.tensor(rows), start, end).tolist()
    got = exercise.mask_tool_results([list(r) for r in rows], start, end)
    for n, (row, want, have) in enumerate(zip(rows, expected, got)):
        assert have == want, f"window {n} (tokens {row}): expected {want}, got {have}"


def test_mask_leaves_text_without_results_alone(exercise):
    assert exercise.mask_tool_results([[3, 4, 5], []], 1, 2) == [[3, 4, 5], []]


@pytest.mark.parametrize("make", [GPTConfig.gpt2, GPTConfig.modern], ids=["gpt2 (biases)", "modern"])
def test_an_identity_block_returns_its_input(exercise, make):
    torch.manual_seed(1)
    model = GPT(make(vocab_size=64, n_layer=1, n_embd=32, n_head=2, block_size=16)).eval()
    block = model.blocks[0]
    state = block.state_dict()
    before = {k: v.clone() for k, v in state.items()}
    new = exercise.identity_block_state(state)
    assert set(new) == set(state) and all(torch.equal(state[k], before[k]) for k in state), "the input was changed"
    block.load_state_dict(new)
    x = torch.randn(2, 8, 32)
    _, rope = model.embed(torch.zeros(2, 8, dtype=torch.long), 0, None)  # the rotary tables, if any
    with torch.no_grad():
        out = block(x, rope, None, 0, None)
    assert torch.allclose(out, x, atol=0), "a block with zero output projections must return its input"


@pytest.mark.parametrize("positions", [[0], [1], [2], [1, 1], [0, 2], [2, 1, 0]])
@pytest.mark.parametrize("make", [GPTConfig.gpt2, GPTConfig.modern], ids=["gpt2", "modern"])
def test_grown_state_is_the_packages_and_keeps_the_logits(exercise, positions, make):
    torch.manual_seed(0)
    model = GPT(make(vocab_size=64, n_layer=2, n_embd=32, n_head=2, block_size=16)).eval()
    state = exercise.grown_state(model.state_dict(), 2, list(positions))
    reference = grow_depth(model, len(positions), sorted(positions), init="copy").state_dict()
    assert set(state) == set(reference), f"keys differ: {sorted(set(state) ^ set(reference))[:6]}"
    for name, tensor in reference.items():
        assert torch.equal(state[name], tensor), f"{name} differs from minilm.studies.grow.grow_depth's"
    grown = GPT(model.config.with_overrides(n_layer=2 + len(positions))).eval()
    grown.load_state_dict(state)
    idx = torch.randint(0, 64, (2, 16))
    with torch.no_grad():
        assert torch.allclose(grown(idx)[0], model(idx)[0], atol=1e-6)
