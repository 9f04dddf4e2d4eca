"""Exercise 07 (mid-training): tool results out of the loss, and a model grown by identity blocks.

Write the three functions below, replacing each ``raise NotImplementedError(...)``:

* ``mask_tool_results``: in calculator practice the tool, not the model, writes everything from
  ``<|result_start|>`` to ``<|result_end|>``; set those training targets to -1 (the index the
  loss ignores), working from one training window alone, as ``minilm.stages.midtrain.mask_tool_results``
  does: a window may begin in the middle of a result;
* ``identity_block_state``: a transformer block whose two output projections are zero adds
  nothing to the residual stream: a copy of a block's weights with those zeroed;
* ``grown_state``: the weights of a deeper model that computes exactly what the old one did:
  new identity blocks inserted where ``positions`` says, each a copy of its neighbour with zeroed
  output projections (LLaMA Pro's block expansion), as ``minilm.studies.grow.grow_depth`` builds.

Check your work with ``make check CH=07`` (or ``minilm check 07``): the tests compare your
functions with the package on real calculator-practice windows and real models (same logits before
and after growing). Use plain Python and torch tensors. Reference solutions are in
``exercises/solutions/``: try first!
"""

from __future__ import annotations

import torch


def mask_tool_results(rows: list[list[int]], result_start: int, result_end: int) -> list[list[int]]:
    """A copy of ``rows`` (training targets, one list per window) with every token the tool writes
    replaced by -1: each ``result_start``, the tokens after it, and the ``result_end`` that closes
    it. Everything else (the problem, the call, the text after a result) is kept.

    A window may start inside a result: then the first marker in the row is a ``result_end``,
    and every token before it (and the marker) is the tool's too.

    >>> mask_tool_results([[5, 7, 1, 9, 2, 5], [9, 2, 6, 1, 3]], result_start=1, result_end=2)
    [[5, 7, -1, -1, -1, 5], [-1, -1, 6, -1, -1]]
    """
    raise NotImplementedError("exercise 07: write mask_tool_results in exercises/07_midtraining.py")


def identity_block_state(block_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A copy of one block's ``state_dict`` with the two output projections set to zero.

    A pre-norm block adds ``attn(norm(x))`` and then ``mlp(norm(x))`` to the residual stream ``x``.
    Each of the two ends in an output projection (keys starting ``attn.c_proj.`` and
    ``mlp.c_proj.``: a weight, and a bias if the model has biases). Zero both and the block returns
    ``x`` unchanged, whatever its other weights. Leave the input ``block_state`` as it was: return
    new tensors.

    >>> state = {"attn.c_proj.weight": torch.ones(2, 2), "mlp.c_fc.weight": torch.ones(2)}
    >>> out = identity_block_state(state)
    >>> out["attn.c_proj.weight"].abs().sum().item(), out["mlp.c_fc.weight"].tolist(), state["attn.c_proj.weight"].sum().item()
    (0.0, [1.0, 1.0], 4.0)
    """
    raise NotImplementedError("exercise 07: write identity_block_state in exercises/07_midtraining.py")


def grown_state(state: dict[str, torch.Tensor], n_layer: int, positions: list[int]) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a GPT with ``n_layer + len(positions)`` blocks that computes exactly
    what the ``n_layer``-block GPT with ``state`` computes.

    Block weights have keys ``blocks.{i}.{rest}``; every other key (embeddings, the final norm)
    is copied as it is. Each entry of ``positions`` puts one new block after that many old blocks
    (0: before the first, ``n_layer``: after the last; a position may repeat). The old blocks keep
    their order. A new block is a copy of the old block just before it (the old block 0 for
    position 0) with its output projections zeroed (:func:`identity_block_state`). Number the
    blocks of the new model 0, 1, 2, ... from the bottom.

    >>> state = {"wte.weight": torch.ones(1), "blocks.0.attn.c_proj.weight": torch.ones(1),
    ...          "blocks.0.mlp.c_fc.weight": torch.full((1,), 2.0)}
    >>> {k: v.item() for k, v in grown_state(state, n_layer=1, positions=[1]).items()}
    {'wte.weight': 1.0, 'blocks.0.attn.c_proj.weight': 1.0, 'blocks.0.mlp.c_fc.weight': 2.0, 'blocks.1.attn.c_proj.weight': 0.0, 'blocks.1.mlp.c_fc.weight': 2.0}
    """
    raise NotImplementedError("exercise 07: write grown_state in exercises/07_midtraining.py")
