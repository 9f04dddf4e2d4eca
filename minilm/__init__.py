"""minilm: the whole life of a small language model, built for real.

Modules (one concept each): config (budgets), corpus (embedded Shakespeare), tokenizer (byte-level
BPE), chat_template (conversations as ids + loss mask), artifacts (build-or-load stage products),
pipeline (every stage + report), bench, viz, device, cli.
"""

__version__ = "0.1.0"
