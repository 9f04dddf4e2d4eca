"""Data: what the pretraining and SFT sets are made of, one step per module (sources, cleaning, pii,
dedup, quality, contamination, shards, conversations, chat_sets)."""


def __getattr__(name):
    # The one exception to an empty __init__: ``minilm.data`` was a module of the flat layout, and its
    # names (``from minilm.data import build_data``) keep working for one release (minilm/_aliases.py).
    from .._aliases import old_attribute

    return old_attribute(__name__, name)
