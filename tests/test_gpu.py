"""The CUDA paths: FlashAttention through SDPA, bf16 autocast + torch.compile training, the KV cache
on the GPU, and torchrun with NCCL. Skipped where no CUDA GPU is present (CI); run them on a GPU
machine with `pytest tests/test_gpu.py`."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from minilm.bench import attention_kernels
from minilm.inference.generate import generate
from minilm.models.gpt import GPT, GPTConfig
from minilm.models.train import TrainConfig, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

PATTERN = np.tile(np.arange(16, dtype=np.uint16), 400)
SMALL = GPTConfig.modern(vocab_size=64, block_size=32, n_layer=2, n_embd=128, n_head=2)


def test_training_attention_runs_a_fused_flash_kernel():
    # PyTorch picks FlashAttention or cuDNN's fused attention (its choice on Hopper in torch 2.11);
    # both compute attention in tiles without the T x T matrix. "efficient" or "math" would mean
    # our attention call is not flash-eligible (a mask, a dtype or a layout).
    model = GPT(GPTConfig.from_depth(4, vocab_size=256, block_size=256)).cuda()
    kernels = attention_kernels(model, 256, "cuda")
    assert len(kernels) == 1 and kernels[0] in ("aten::_scaled_dot_product_flash_attention",
                                                "aten::_scaled_dot_product_cudnn_attention")


def test_bf16_compiled_training_on_the_gpu_tracks_fp32_training_on_the_cpu():
    cfg = TrainConfig(steps=30, batch_size=8, seq_len=32, lr=3e-3, warmup_steps=3, eval_every=0)
    losses = {}
    for device, compiled in (("cpu", False), ("cuda", True)):
        torch.manual_seed(0)
        model = GPT(SMALL)
        result = train(model, PATTERN, replace(cfg, compile=compiled), device=device, progress=False, log_every=1)
        losses[device] = np.array([r["loss"] for r in result.history])
    # bf16 rounds activations to 8 bits of mantissa: the curves agree closely, not bit for bit.
    assert abs(losses["cuda"][0] - losses["cpu"][0]) < 0.02 * losses["cpu"][0]
    assert losses["cuda"][-1] < 0.5 * losses["cuda"][0] and abs(losses["cuda"][-1] - losses["cpu"][-1]) < 0.1


@pytest.mark.parametrize("config", [SMALL.with_overrides(n_head=4, n_kv_head=2),
                                    GPTConfig.gpt2(vocab_size=64, block_size=32, n_layer=2, n_embd=64, n_head=2)],
                         ids=["modern-gqa", "gpt2"])
def test_kv_cache_on_the_gpu_gives_the_tokens_and_logits_of_full_forwards(config):
    torch.manual_seed(0)
    model = GPT(config).cuda().eval()
    prompts = [[1, 2, 3], [4, 5, 6, 7, 8, 9]]
    assert generate(model, prompts, 12) == generate(model, prompts, 12, use_cache=False)
    from minilm.models.gpt import KVCache

    ids = torch.randint(0, 64, (2, 20), device="cuda")
    with torch.no_grad():
        full, _ = model(ids)
        cache = KVCache(config, 2, 20, device="cuda")
        first, _ = model(ids[:, :12], cache=cache, start=0)
        rest = [model(ids[:, t : t + 1], cache=cache, start=t)[0] for t in range(12, 20)]
    stepped = torch.cat([first, *rest], dim=1)
    assert torch.allclose(stepped, full, atol=1e-4)


def test_torchrun_with_nccl_trains_like_one_process(tmp_path, torchrun):
    out = tmp_path / "ddp.json"
    result = torchrun(1, str(Path(__file__).with_name("_ddp_train.py")), str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    ddp = json.loads(out.read_text())
    torch.manual_seed(0)
    single = GPT(GPTConfig.modern(vocab_size=64, block_size=32, n_layer=2, n_embd=32, n_head=2))
    cfg = TrainConfig(steps=8, batch_size=4, seq_len=16, lr=5e-3, warmup_steps=2, eval_every=0)
    history = train(single, np.tile(np.arange(16, dtype=np.uint16), 400), cfg, device="cuda", progress=False,
                    log_every=1).history
    assert ddp["world"] == 1 and np.allclose(ddp["losses"], [r["loss"] for r in history], atol=1e-3)
