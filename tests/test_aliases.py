"""The old flat names (minilm.model, minilm.artifacts.sft_artifact, ...) keep working for one release.

They resolve to the same objects as the new names, warn once, and nothing of the course uses them.
"""

import ast
import importlib
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from minilm import _aliases

ROOT = Path(__file__).resolve().parents[1]
# The modules of the last flat release (1b5ce7b), other than those that kept their place (cli,
# pipeline, bench, course).
RELEASED = (
    "ablation", "artifacts", "attention_maps", "calculator", "chat", "chat_template", "cleaning", "config",
    "contamination", "corpus", "data", "decode_step", "dedup", "device", "doc_cache", "eval", "files", "generate",
    "grow", "midtrain", "model", "muon", "ngram", "plots_inference", "plots_midtrain", "plots_sft",
    "plots_transformer", "pretrain", "probes", "progress", "quality", "quantize", "scaling", "sft",
    "sft_ablations", "shards", "timing", "tokenizer", "train", "viz", "world",
)
# Every (module, name) the notebooks and exercises of that release used, found with ast in their
# code (imports and module.attribute): the names a student's copy may still use.
USED = [
    ("ablation", "RESULT_HEADERS"), ("ablation", "ablation_setup"), ("ablation", "kv_cache_bytes_per_token"),
    ("ablation", "results_rows"), ("ablation", "run_ablation"), ("ablation", "variant_configs"),
    ("artifacts", "base_model_artifact"), ("artifacts", "base_model_path"), ("artifacts", "midtrain_artifact"),
    ("artifacts", "midtrain_model_path"), ("artifacts", "sft_ablations_artifact"), ("artifacts", "sft_artifact"),
    ("artifacts", "tokenizer_artifact"), ("artifacts", "tokenizer_path"), ("attention_maps", "attention_weights"),
    ("attention_maps", "head_summary"), ("calculator", "CalculatorError"), ("calculator", "evaluate"),
    ("chat", "Chat"), ("chat", "chat_widget"), ("chat_template", "render_conversation"), ("cleaning", "clean"),
    ("cleaning", "clean_text"), ("cleaning", "find_pii"), ("cleaning", "luhn_valid"),
    ("cleaning", "pii_precision_recall"), ("cleaning", "planted_pii"), ("cleaning", "redact"),
    ("cleaning", "redact_pii"), ("config", "BUDGETS"), ("config", "BUDGET_NAMES"), ("config", "DEFAULT_BUDGET"),
    ("config", "SFTConfig"), ("config", "budget_name"), ("config", "get_budget"), ("config", "repo_root"),
    ("contamination", "ContaminationIndex"), ("contamination", "contamination_report"),
    ("contamination", "decontaminate"), ("contamination", "world_eval_texts"), ("corpus", "VALIDATION_PLAYS"),
    ("corpus", "load_shakespeare"), ("corpus", "shakespeare_texts"), ("course", "CHAPTERS"),
    ("course", "budgets_table"), ("course", "chapters_table"), ("course", "markdown_table"),
    ("course", "plot_lifecycle_map"), ("data", "build_data"), ("data", "load_hf_source"),
    ("data", "planted_corpus"), ("dedup", "MinHasher"), ("dedup", "choose_bands_rows"), ("dedup", "dedup_quality"),
    ("dedup", "estimated_jaccard"), ("dedup", "exact_dedup"), ("dedup", "exact_duplicates"),
    ("dedup", "exact_jaccard"), ("dedup", "lsh_candidate_pairs"), ("dedup", "lsh_probability"),
    ("dedup", "near_dedup"), ("dedup", "planted_near_duplicates"), ("dedup", "shingles"),
    ("device", "environment_report"), ("doc_cache", "cache_probs"), ("doc_cache", "cache_statistics"),
    ("doc_cache", "fit_cache"), ("eval", "format_eval_table"), ("eval", "is_refusal"), ("eval", "people_split"),
    ("generate", "CalculatorTool"), ("generate", "calculator_result"), ("generate", "complete"),
    ("generate", "filtered_probs"), ("generate", "generate"), ("generate", "stream"), ("grow", "grow_depth"),
    ("grow", "growth_experiment"), ("midtrain", "OP_NAMES"),
    ("midtrain", "TOOL_COLUMNS"), ("midtrain", "comparison_rows"), ("midtrain", "encode_documents"),
    ("midtrain", "mask_tool_results"), ("midtrain", "tool_example"), ("midtrain", "tool_rows"),
    ("midtrain", "train_config"), ("model", "Attention"), ("model", "GPT"), ("model", "GPTConfig"),
    ("model", "KVCache"), ("model", "RMSNorm"), ("model", "apply_rope"), ("model", "padded_causal_mask"),
    ("model", "rope_tables"), ("model", "row_positions"), ("ngram", "Interpolated"), ("ngram", "KneserNey"),
    ("ngram", "fit_interpolation"), ("ngram", "window_target_probs"), ("plots_inference", "entropy_bits"),
    ("plots_inference", "plot_padding_mask"), ("plots_inference", "plot_sampling_settings"),
    ("plots_inference", "plot_throughput"), ("plots_inference", "sampling_explorer"),
    ("plots_inference", "token_label"), ("plots_midtrain", "plot_anneal_curves"),
    ("plots_midtrain", "plot_growth"), ("plots_midtrain", "plot_tool_accuracy"), ("plots_sft", "plot_eval_bars"),
    ("plots_sft", "plot_refusal_study"), ("plots_sft", "plot_refusals"), ("plots_sft", "plot_size_sweep"),
    ("plots_transformer", "plot_attention_heads"), ("plots_transformer", "plot_flops_by_component"),
    ("plots_transformer", "plot_head_summary"), ("plots_transformer", "plot_loss_curves"),
    ("pretrain", "load_tokens"), ("pretrain", "model_config"), ("pretrain", "summary_rows"),
    ("pretrain", "train_config"), ("probes", "PROMPT_STYLES"), ("probes", "probe_styles"),
    ("quality", "heuristic_filter"), ("quality", "heuristic_reasons"), ("quality", "low_quality_examples"),
    ("quality", "passes_heuristics"), ("quality", "shakespeare_reference"), ("quantize", "Int8Linear"),
    ("quantize", "dequantize_int8"), ("quantize", "format_report"), ("quantize", "quantization_report"),
    ("quantize", "quantize_int8"), ("quantize", "quantize_model"), ("scaling", "CHINCHILLA"),
    ("scaling", "EPOCH_REFIT"), ("scaling", "bootstrap_fits"), ("scaling", "compute_optimal"),
    ("scaling", "fit_scaling_law"), ("scaling", "flops_check"), ("scaling", "inference_optimal"),
    ("scaling", "isoflop_curve"), ("scaling", "measured_flops_per_token"), ("scaling", "model_config"),
    ("scaling", "records_arrays"), ("scaling", "run_budget_sweep"), ("scaling", "sweep_config"),
    ("scaling", "tokens_per_parameter"), ("scaling", "training_flops"), ("sft", "DATA_COLUMNS"),
    ("sft", "FACT_ANSWERS"), ("sft", "conversations"), ("sft", "data_rows"), ("sft", "encode_conversations"),
    ("sft", "knowledge_aware_conversations"), ("sft", "knowledge_key"), ("sft", "sft_data"),
    ("sft_ablations", "HALLUCINATION_COLUMNS"), ("sft_ablations", "IDENTITY_COLUMNS"),
    ("sft_ablations", "RUN_COLUMNS"), ("sft_ablations", "SWEEP_COLUMNS"), ("sft_ablations", "hallucination_rows"),
    ("sft_ablations", "identity_rows"), ("sft_ablations", "run_rows"), ("sft_ablations", "study_evals"),
    ("sft_ablations", "sweep_evals"), ("sft_ablations", "sweep_rows"), ("shards", "TokenShards"),
    ("timing", "cache_timings"), ("timing", "decode_step_seconds"), ("timing", "generation_seconds"),
    ("timing", "with_context"), ("tokenizer", "ENDOFTEXT"), ("tokenizer", "IM_END"), ("tokenizer", "IM_START"),
    ("tokenizer", "PAD"), ("tokenizer", "RESULT_END"), ("tokenizer", "RESULT_START"),
    ("tokenizer", "SPECIAL_TOKENS"), ("tokenizer", "Tokenizer"), ("tokenizer", "UNICODE_ENGINES"),
    ("tokenizer", "bpe_encode_piece"), ("tokenizer", "bytes_per_token"), ("tokenizer", "count_pretokens"),
    ("tokenizer", "gpt2_encoding"), ("tokenizer", "merge_pair"), ("tokenizer", "pair_counts"),
    ("tokenizer", "reference_tokenizer"), ("tokenizer", "split_pattern"), ("tokenizer", "train_bpe"),
    ("tokenizer", "unassigned_code_points"), ("tokenizer", "unicode_version"), ("train", "TrainConfig"),
    ("train", "bits_per_byte"), ("train", "evaluate"), ("train", "get_batch"), ("train", "lr_at"),
    ("train", "token_byte_lengths"), ("train", "train"), ("viz", "LiveLossPlot"), ("viz", "plot_bytes_per_token"),
    ("viz", "plot_mixture"), ("viz", "plot_training_curves"), ("viz", "show_tokens"),
    ("viz", "tokenizer_explorer"), ("viz", "tokens_html"), ("world", "ATTRIBUTES"), ("world", "QUESTIONS"),
    ("world", "World"), ("world", "WorldConfig"), ("world", "gold_judge"), ("world", "tool_call_text"),
    ("world", "tool_prompt"), ("world", "verify"),
]


def test_the_table_covers_every_released_module():
    assert set(_aliases.MOVED) | set(_aliases.SPLIT) == {f"minilm.{m}" for m in RELEASED}


@pytest.mark.parametrize("module, name", USED)
def test_an_old_name_is_the_new_object(module, name):
    new_module, new_name = _aliases.new_home(f"minilm.{module}", name) if f"minilm.{module}" in (
        *_aliases.MOVED, *_aliases.SPLIT) else (f"minilm.{module}", name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        old = getattr(importlib.import_module(f"minilm.{module}"), name)
    assert old is getattr(importlib.import_module(new_module), new_name)


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, cwd=ROOT)


def test_a_moved_module_warns_once_and_names_its_new_home():
    result = run("import minilm.model\nimport minilm.model\nfrom minilm.model import GPT, GPTConfig\n"
                 "import minilm.models.gpt as new\nassert GPT is new.GPT")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("FutureWarning") == 1
    assert "minilm.model is now minilm.models.gpt" in result.stderr


def test_a_split_module_warns_once_per_name_with_its_new_home():
    result = run("from minilm.artifacts import sft_artifact\nfrom minilm.artifacts import sft_artifact\n"
                 "from minilm.data import build_data\nimport minilm.stages.sft as s\nassert sft_artifact is s.artifact")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("FutureWarning") == 2
    assert "minilm.artifacts.sft_artifact is now minilm.stages.sft.artifact" in result.stderr
    assert "minilm.data.build_data is now minilm.stages.data.artifact" in result.stderr


def test_a_name_the_old_module_never_had_is_an_import_error():
    result = run("from minilm.model import NoSuchThing")
    assert result.returncode == 1 and "ImportError: cannot import name 'NoSuchThing'" in result.stderr


def test_the_new_names_do_not_warn():
    result = run("import minilm.cli, minilm.pipeline, minilm.course\nfrom minilm.data import sources, dedup")
    assert result.returncode == 0 and "Warning" not in result.stderr, result.stderr


def old_imports(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == "minilm.data":  # the folder, and its old names
            found += [f"minilm.data.{a.name}" for a in node.names if not (ROOT / "minilm/data" / f"{a.name}.py").exists()]
        elif isinstance(node, ast.ImportFrom) and node.module in (*_aliases.MOVED, *_aliases.SPLIT):
            found.append(node.module)
        elif isinstance(node, ast.ImportFrom) and node.module == "minilm":
            found += [f"minilm.{a.name}" for a in node.names if f"minilm.{a.name}" in (*_aliases.MOVED, *_aliases.SPLIT)]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name in (*_aliases.MOVED, *_aliases.SPLIT)]
    return found


def test_the_course_itself_uses_only_the_new_names():
    sources = {path: path.read_text(encoding="utf-8") for pattern in ("tests/*.py", "exercises/**/*.py")
               for path in ROOT.glob(pattern) if path.name != "test_aliases.py"}
    for notebook in ROOT.glob("notebooks/*.ipynb"):
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        sources[notebook] = "\n".join(line for cell in code for line in cell.splitlines()
                                      if not line.lstrip().startswith(("%", "!")))
    old = {str(path.relative_to(ROOT)): names for path, text in sources.items() if (names := old_imports(text))}
    assert old == {}
    assert old_imports("import minilm.model\nfrom minilm.data import build_data") == ["minilm.model", "minilm.data.build_data"]
