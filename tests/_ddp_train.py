"""Worker for test_train.py's DDP tests: `torchrun --nproc_per_node 2 tests/_ddp_train.py OUT.json [SECONDS]`.

Trains the same tiny model as test_train.py on 2 CPU processes (gloo) and writes rank 0's losses
and final weights to OUT.json. With SECONDS, trains for that time budget instead of 8 steps and
every rank writes its learning rates to OUT.json.rankN (the ranks must agree on them).
"""

import json
import sys

import numpy as np
import torch

from minilm.models.gpt import GPT, GPTConfig
from minilm.models.train import TrainConfig, setup_distributed, train


def main(out_path: str, seconds: float = 0.0) -> None:
    torch.set_num_threads(1)
    rank, world, device = setup_distributed()
    config = GPTConfig.modern(vocab_size=64, block_size=32, n_layer=2, n_embd=32, n_head=2)
    tokens = np.tile(np.arange(16, dtype=np.uint16), 400)
    torch.manual_seed(0)
    model = GPT(config)
    cfg = TrainConfig(steps=10**6 if seconds else 8, batch_size=4, seq_len=16, grad_accum=1, lr=5e-3,
                      warmup_steps=2, eval_every=0, max_seconds=seconds)
    result = train(model, tokens, cfg, device=device, progress=False, log_every=1)
    if seconds:
        json.dump({"lrs": [r["lr"] for r in result.history], "seconds": result.seconds}, open(f"{out_path}.rank{rank}", "w"))
    if rank == 0:
        weights = torch.cat([p.detach().flatten() for p in model.parameters()]).tolist()
        json.dump({"losses": [r["loss"] for r in result.history], "weights": weights, "world": world}, open(out_path, "w"))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":  # pytest --doctest-modules imports this file: run only under torchrun
    main(sys.argv[1], *(float(a) for a in sys.argv[2:]))
