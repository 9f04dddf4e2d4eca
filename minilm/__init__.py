"""minilm: the whole life of a small language model, built for real.

The package is in layers; each imports only the layers below it (docs/ARCHITECTURE.md):

    cli, pipeline, bench, course    faces: the command line, the pipeline and its report, benchmarks, the chapter map
    plots/       figures and widgets per chapter
    studies/     experiments that train many small models (ablations, scaling sweeps, growing, SFT ablations)
    stages/      the lineage, one module per product: tokenizer, data, pretrain, midtrain, sft
    evals/       probes, the chat eval suite, attention maps: they take models, never paths
    inference/   generation, the KV-cache decode step, quantization, chat, timings
    models/      the GPT, the training loop, checkpoints, Muon, n-gram and cache models
    data/        sources, cleaning, PII, dedup, quality, contamination, shards, conversations
    text/        the corpus, the tiny world, the tokenizer, the chat template
    core/        checks, config and budgets, atomic files, devices, the calculator, progress bars
"""

from . import _aliases

__version__ = "0.1.0"

_aliases.install()  # the old flat names (minilm.model, ...) for one release
