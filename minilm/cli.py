"""`minilm <command> ...`: every stage of the course, and the tools around it, from the command line.

The stage commands (`minilm tokenizer`, `minilm data`, `minilm pretrain`, ...) are made by one
generic handler from the pipeline's ordered stage list (:data:`minilm.pipeline.STAGES`): each builds
or loads its stage's artifact at the budget and prints its report. :func:`command_lines` lists every
command; ``minilm --help``, the README and chapter 00 show that list.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import sys
import warnings
from pathlib import Path

from .core.checks import ConfigError
from .core.config import BUDGET_NAMES, TokenizerConfig, get_budget
from .pipeline import STAGES


def _cmd_env(args) -> None:
    from .core.device import environment_report

    for key, value in environment_report().items():
        print(f"{key:>15}: {value}")


def _cmd_tokenizer_train(args) -> None:
    import hashlib

    from .stages import tokenizer as tokenizer_stage
    from .core.config import runs_dir
    from .text.tokenizer import Tokenizer

    budget = get_budget(args.budget)
    config = TokenizerConfig(
        vocab_size=budget.tokenizer.vocab_size if args.vocab_size is None else args.vocab_size,
        digit_group=budget.tokenizer.digit_group if args.digit_group is None else args.digit_group,
    )
    budget = budget.with_overrides(tokenizer=config)
    if args.input:
        texts = []
        for name in args.input:
            path = Path(name)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no such text file")
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
        if not any(text.strip() for text in texts):
            raise ValueError(f"{', '.join(args.input)}: no text to learn merges from")
        # Not the budget's artifact path: later stages would take this tokenizer for the budget's.
        digest = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:10]
        default_out = runs_dir() / "tokenizers" / f"tokenizer-{config.vocab_size}-{config.digit_group}-{digest}.json"
    else:  # the budget's tokenizer, trained on what the pipeline trains it on
        texts, default_out = tokenizer_stage.training_texts(budget), tokenizer_stage.path(budget)
    out = Path(args.out) if args.out else default_out
    if out.is_dir():
        raise IsADirectoryError(f"--out {out} is a folder: give the tokenizer file's path (e.g. {out / 'tokenizer.json'})")
    if any(out.resolve() == Path(name).resolve() for name in args.input or ()):
        raise ValueError(f"--out {out} is one of the --input files: it would be overwritten")
    tokenizer = Tokenizer.from_config(texts, config, progress=True)
    tokenizer.save(out)
    print(f"saved {tokenizer} to {out}")


def _cmd_tokenizer_encode(args) -> None:
    from .stages import tokenizer as tokenizer_stage
    from .text.tokenizer import Tokenizer

    tokenizer = Tokenizer.load(args.tokenizer) if args.tokenizer is not None else tokenizer_stage.artifact(args.budget)
    ids = tokenizer.encode(args.text)
    print(json.dumps({"ids": ids, "tokens": tokenizer.token_strings(ids), "count": len(ids)}, ensure_ascii=False))


def _cmd_stage(args) -> None:
    """`minilm <stage> [flags]`: build (or load) one stage's artifact at the budget and print its report."""
    stage = args.stage
    budget = get_budget(args.budget)
    flags = {name: getattr(args, name) for name in getattr(stage, "FLAGS", {}) if getattr(args, name) is not None}
    if flags:
        budget = stage.configure(budget, **flags)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, process 0 speaks
        print(f"{stage.PRODUCT}: {stage.path(budget)}")
    result = stage.artifact(budget, device=args.device) if "device" in vars(args) else stage.artifact(budget)
    text = stage.report(result)
    if text:
        print(text)


def _cmd_world(args) -> None:
    from .text.world import World

    world = World(get_budget(args.budget).world)
    if args.show == "people":
        for person in world.people[: args.n]:
            print(person)
    elif args.show == "documents":
        for source, docs in world.documents().items():
            print(f"--- {source} ({len(docs)} documents)\n{docs[0][:400]}")
    else:
        for kind, items in world.eval_items(args.n).items():
            print(f"{kind:<13} {len(items):>5} items, e.g. {items[0].question!r} -> {items[0].answer!r}")


def _cmd_pipeline(args) -> None:
    from .pipeline import run_pipeline

    budget = get_budget(args.budget)
    if args.readme and (args.stages or budget.name == "smoke"):
        # The README's table is the course's published result: a whole run at a real budget.
        raise ValueError("--readme publishes a whole run: leave out --stages and use the laptop or gpu budget")
    report = run_pipeline(budget, Path(args.out) if args.out else None, args.stages)
    print(f"report: {report}")
    if args.readme:
        from .core.config import repo_root
        from .pipeline import update_readme

        root = repo_root()
        if root is None:
            raise FileNotFoundError("--readme needs the course checkout (README.md next to pyproject.toml)")
        update_readme(root / "README.md", json.loads((report.parent / "metrics.json").read_text()))
        print(f"results table updated in {root / 'README.md'}")


def _cmd_bench(args) -> None:
    from .bench import BENCHMARKS, parse_settings

    options = {"vocab_size": args.vocab_size, "config": args.config, "seconds": args.seconds,
               "new_tokens": args.new_tokens, "batch_size": args.batch_size, "repeats": args.repeats,
               "settings": parse_settings(args.set) if args.set else None}
    owner = {"vocab_size": "tokenizer", "config": "pretrain", "seconds": "pretrain", "new_tokens": "generate",
             "batch_size": "generate", "repeats": "generate", "settings": "pretrain"}
    for key, value in options.items():
        if value is not None and owner[key] != args.name:
            flag = "--set" if key == "settings" else f"--{key.replace('_', '-')}"
            raise ValueError(f"{flag} belongs to `minilm bench {owner[key]}`, not {args.name}")
    if args.name == "generate":
        options["budget"] = args.budget
    print(json.dumps(BENCHMARKS[args.name](**{k: v for k, v in options.items() if v is not None})))


def _cmd_eval(args) -> None:
    from .stages import pretrain
    from .evals.probes import probe_base_model
    from .text.world import World

    budget = get_budget(args.budget)
    if args.checkpoint is not None:
        _eval_checkpoint(args, budget)
        return
    chat_flags = [f"--{k.replace('_', '-')}" for k in ("samples", "temperature", "max_new_tokens")
                  if getattr(args, k) is not None]
    if chat_flags:
        raise ValueError(f"{', '.join(chat_flags)} belong to the chat eval: give a CHECKPOINT (minilm eval PATH.pt)")
    model, tokenizer, _ = pretrain.artifact(budget)
    probes = probe_base_model(model, tokenizer, World(budget.world), n=200 if args.n is None else args.n)
    print(json.dumps({name: {k: v for k, v in p.items() if k != "examples"} for name, p in probes.items()}))


def _eval_checkpoint(args, budget) -> None:
    """`minilm eval CHECKPOINT`: the chat harness (minilm.evals.chat_eval) on a saved model; table and JSON."""
    from .evals.chat_eval import format_eval_table
    from .stages.sft import eval_checkpoint, eval_path

    samples = 1 if args.samples is None else args.samples
    temperature = 0.0 if args.temperature is None else args.temperature
    results = eval_checkpoint(args.checkpoint, budget, n=50 if args.n is None else args.n, samples=samples,
                              temperature=temperature, progress=True,
                              max_new_tokens=48 if args.max_new_tokens is None else args.max_new_tokens)
    print(format_eval_table({Path(args.checkpoint).stem: results}))
    print(f"\nhallucination rate {results['hallucination_rate']:.0%}, false refusals "
          f"{results['false_refusal_rate']:.0%}, {results['seconds']:.0f} s")
    print(f"results: {eval_path(args.checkpoint)}")


def _base_model(args, build: bool = True):
    """The budget's base model and tokenizer; with ``build=False`` a missing one is a clear error."""
    from .stages import pretrain

    budget = get_budget(args.budget)
    path = pretrain.path(budget)
    if not build and not (path.exists() and path.with_suffix(".json").exists()):
        raise FileNotFoundError(f"no base model for the {budget.name} budget at {path}: "
                                f"train it first with `minilm --budget {budget.name} pretrain`")
    model, tokenizer, _ = pretrain.artifact(budget)
    return model, tokenizer


def _cmd_sample(args) -> None:
    from .inference.generate import complete

    model, tokenizer = _base_model(args)
    for text in complete(model, tokenizer, [args.prompt] * args.n, max_new_tokens=args.tokens,
                         temperature=args.temperature, top_k=args.top_k, seed=args.seed):
        print(args.prompt + text)
        print("-" * 40)


def _cmd_generate(args) -> None:
    from .inference.generate import check_sampling, stream

    sampling = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, min_p=args.min_p)
    check_sampling(**sampling)  # before loading anything
    model, tokenizer = _base_model(args, build=False)
    pieces = stream(model, tokenizer, args.prompt, max_new_tokens=args.max_new_tokens, stop=args.stop,
                    tools=args.tools, seed=args.seed, **sampling)
    first = next(pieces, "")  # the stream checks its arguments here: an error comes before any output
    print(args.prompt + first, end="", flush=True)
    for piece in pieces:
        print(piece, end="", flush=True)
    print()


def _cmd_chat(args) -> None:
    from .inference.chat import Chat, chat_loop, default_max_new_tokens
    from .stages.sft import load_chat_model
    from .inference.generate import check_sampling

    sampling = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, min_p=args.min_p)
    check_sampling(**sampling)  # before loading anything
    budget = get_budget(args.budget)
    model, tokenizer, path = load_chat_model(budget, args.checkpoint)
    chat = Chat(model, tokenizer, system=args.system, max_new_tokens=args.max_new_tokens, seed=args.seed,
                tools=not args.no_tools, **sampling)
    block = model.config.block_size
    print(f"minilm chat: {path.name} ({budget.name} budget), a {block}-token window, replies up to "
          f"{chat.max_new_tokens} tokens (default {default_max_new_tokens(block)}), calculator "
          f"{'off' if args.no_tools else 'on'}. /reset starts over, /quit or Ctrl-D ends.")
    chat_loop(chat, sys.stdin, sys.stdout)


def _cmd_check(args) -> None:
    import pytest

    from .core.config import repo_root

    if repo_root() is None:
        raise FileNotFoundError("exercises live in the course checkout: clone the repo and run `make check CH=01`")
    if not re.fullmatch(r"\d\d", args.chapter):
        raise ValueError(f"chapter {args.chapter!r}: give its two digits, e.g. `minilm check 01`")
    root = repo_root() / "exercises"
    tests = sorted((root / "tests").glob(f"test_{args.chapter}_*.py"))
    if not tests:
        raise FileNotFoundError(f"no exercise tests for chapter {args.chapter!r} under {root / 'tests'}")
    os.environ["MINILM_EXERCISES"] = "solutions" if args.solutions else "student"
    raise SystemExit(pytest.main(["-q", "--no-header", "-p", "no:cacheprovider", *map(str, tests)]))


def _at_least(minimum: int):
    """An argparse type: a whole number >= minimum, refused with argparse's one-line error otherwise.

    >>> _at_least(1)("3")
    3
    """
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} must be at least {minimum}")
        return value
    return parse


def _seed(text: str) -> int:
    """An argparse type: a seed torch's generators take (0 to 2**63 - 1)."""
    value = _at_least(0)(text)
    if value >= 2**63:
        raise argparse.ArgumentTypeError(f"{value} is too large for a seed (at most 2**63 - 1)")
    return value


def _device(text: str) -> str:
    """An argparse type: a device this machine has (minilm.core.device.check_device)."""
    from .core.device import check_device

    try:
        return check_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


# The commands besides the stages' own, (usage, what it does), in the order `minilm --help` lists them.
FIRST_COMMANDS = (("minilm env", "what this machine offers (torch, threads, GPU)"),)
STAGE_TOOL_LINES = {
    "tokenizer": (("minilm tokenizer train --vocab-size N", "train byte-level BPE on the embedded corpus (or files)"),
                  ("minilm tokenizer encode \"some text\"", "show ids and token boundaries")),
}
LAST_COMMANDS = (
    ("minilm world [people|documents|eval]", "look at the synthetic tiny world"),
    ("minilm eval", "probe the base model: facts it knows, sums it can do"),
    ("minilm eval CHECKPOINT", "chat eval suite of a model: accuracy per category, JSON beside it"),
    ("minilm sample \"ROMEO.\"", "continue a prompt with the base model"),
    ("minilm generate \"23 + 45 =\" --tools", "stream a continuation (sampling flags, calculator calls)"),
    ("minilm chat", "talk to the SFT model in the terminal (streaming, calculator)"),
    ("minilm pipeline", "run every stage at the budget, write a report"),
    ("minilm bench pretrain --config baby", "one JSON line of measured figures (also: tokenizer, dedup, generate)"),
    ("minilm check 01", "test your exercise file for chapter 01"),
)


def command_lines() -> list[tuple[str, str]]:
    """Every command as (usage, what it does): the stages' from :data:`minilm.pipeline.STAGES`.

    >>> [usage for usage, _ in command_lines()][1:3]
    ['minilm tokenizer', 'minilm tokenizer train --vocab-size N']
    """
    lines = list(FIRST_COMMANDS)
    for stage in STAGES:
        lines.append((f"minilm {stage.COMMAND}", f"{stage.HELP} (ch. {stage.CHAPTER})"))
        lines += STAGE_TOOL_LINES.get(stage.COMMAND, ())
    return lines + list(LAST_COMMANDS)


def commands_text() -> str:
    """The command list as aligned lines (the end of ``minilm --help``)."""
    width = max(len(usage) for usage, _ in command_lines())
    return "\n".join(f"  {usage:<{width}}  {text}" for usage, text in command_lines())


def commands_markdown() -> str:
    """The command list as the README's table."""
    from .core.tables import markdown_table

    return markdown_table(["command", "what it does"], [[f"`{usage}`", text] for usage, text in command_lines()])


README_COMMANDS = ("<!-- commands:start -->", "<!-- commands:end -->")


def write_readme_commands(readme: Path) -> None:
    """Put :func:`commands_markdown` between the README's command markers (after a stage is added)."""
    from .core.files import atomic_write_text

    text = readme.read_text(encoding="utf-8")
    head, rest = text.split(README_COMMANDS[0], 1)
    _, tail = rest.split(README_COMMANDS[1], 1)
    atomic_write_text(readme, f"{head}{README_COMMANDS[0]}\n{commands_markdown()}\n{README_COMMANDS[1]}{tail}")


def _add_stage_command(sub, stage) -> None:
    """``minilm <stage>``: the stage's settings as flags (``stage.FLAGS``, if it has any, which its
    ``configure(budget, **flags)`` applies), ``--device`` where its ``artifact`` takes one."""
    parser = sub.add_parser(stage.COMMAND, help=stage.HELP, description=f"{stage.HELP} (chapter {stage.CHAPTER}).")
    for name, (kind, text) in getattr(stage, "FLAGS", {}).items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=_at_least(1) if kind == "count" else kind,
                            help=text)
    if "device" in inspect.signature(stage.artifact).parameters:
        parser.add_argument("--device", type=_device, help="cpu, cuda, mps (default: the best available)")
    parser.set_defaults(func=_cmd_stage, stage=stage)
    tools = STAGE_TOOLS.get(stage.COMMAND)
    if tools:
        actions = parser.add_subparsers(dest="action", metavar="[action]")
        for tool in tools:
            tool(actions)


def _tokenizer_tools(actions) -> None:
    train = actions.add_parser("train", help="train the budget's BPE (the training plays and the tiny world) or one "
                               "on text files")
    train.add_argument("--vocab-size", type=int, help="total vocabulary size (default: the budget's)")
    train.add_argument("--digit-group", type=int, help="digits per pre-token: 1 (split all) to 3 (GPT-4)")
    train.add_argument("--input", nargs="+", help="UTF-8 text files to train on instead of Shakespeare")
    train.add_argument("--out", help="where to save the tokenizer JSON (default: the budget's artifact, or with "
                       "--input runs/tokenizers/)")
    train.set_defaults(func=_cmd_tokenizer_train)
    encode = actions.add_parser("encode", help="encode text and show the tokens")
    encode.add_argument("text")
    encode.add_argument("--tokenizer", help="a tokenizer JSON (default: the budget's, built if missing)")
    encode.set_defaults(func=_cmd_tokenizer_encode)


def _data_tools(actions) -> None:
    actions.add_parser("build", help="the same as `minilm data`: build or reuse the budget's token shards")


# The few actions a stage offers besides building its artifact (the truly special commands).
STAGE_TOOLS = {"tokenizer": (_tokenizer_tools,), "data": (_data_tools,)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minilm", description="The whole life of a small language model.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog="commands:\n" + commands_text())
    parser.add_argument("--budget", choices=BUDGET_NAMES, default=None,
                        help="compute budget (default: $MINILM_BUDGET, smoke when CI=true, else laptop)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="<stage>")

    sub.add_parser("env", help="environment check: versions, threads, GPU").set_defaults(func=_cmd_env)

    for stage in STAGES:  # the lineage, one generic command each
        _add_stage_command(sub, stage)

    world = sub.add_parser("world", help="look at the synthetic tiny world")
    world.add_argument("show", choices=["people", "documents", "eval"], nargs="?", default="eval")
    world.add_argument("-n", type=_at_least(1), default=5, help="how many to show")
    world.set_defaults(func=_cmd_world)

    ev = sub.add_parser("eval", help="chat eval of a checkpoint (table + JSON); without one, probe the base model")
    ev.add_argument("checkpoint", nargs="?", help="a chat model checkpoint (.pt): run the eval suite of minilm.evals.chat_eval "
                    "and save <name>.eval.json next to it; without it, probe the base model (one JSON line)")
    ev.add_argument("-n", "--n", type=_at_least(1), help="questions per category (default 50), or problems per probe (200)")
    ev.add_argument("--samples", type=int, help="replies per question for pass@k (needs --temperature > 0)")
    ev.add_argument("--temperature", type=float, help="sampling temperature (default 0: greedy)")
    ev.add_argument("--max-new-tokens", type=int, help="longest reply in tokens (default 48)")
    ev.set_defaults(func=_cmd_eval)

    sample = sub.add_parser("sample", help="continue a prompt with the base model")
    sample.add_argument("prompt")
    sample.add_argument("-n", type=_at_least(1), default=3, help="how many samples")
    sample.add_argument("--tokens", type=_at_least(0), default=60, help="new tokens per sample")
    sample.add_argument("--temperature", type=float, default=0.8)
    sample.add_argument("--top-k", type=int, default=50)
    sample.add_argument("--seed", type=_seed, default=0)
    sample.set_defaults(func=_cmd_sample)

    gen = sub.add_parser("generate", help="stream a continuation of a prompt from the base model")
    gen.add_argument("prompt")
    gen.add_argument("--max-new-tokens", type=_at_least(0), default=100, help="tokens to generate (default 100)")
    gen.add_argument("--temperature", type=float, default=0.8, help="0 = greedy (default 0.8)")
    gen.add_argument("--top-k", type=int, help="keep the k most likely tokens")
    gen.add_argument("--top-p", type=float, help="keep the smallest set of tokens whose probability reaches p")
    gen.add_argument("--min-p", type=float, help="keep tokens at least min-p times as likely as the top one")
    gen.add_argument("--seed", type=_seed, default=0, help="random seed: same seed, same text (default 0)")
    gen.add_argument("--stop", help="stop before this string (e.g. a newline: $'\\n')")
    gen.add_argument("--tools", action="store_true", help="answer the model's <|calc_start|>...<|calc_end|> calls")
    gen.set_defaults(func=_cmd_generate)

    chat = sub.add_parser("chat", help="chat with the SFT model in the terminal (lines from stdin, streamed replies)")
    chat.add_argument("--checkpoint", help="chat with this checkpoint (.pt) and the budget's tokenizer "
                      "(default: the budget's SFT model from `minilm sft`)")
    chat.add_argument("--system", help="a system message that starts the conversation")
    chat.add_argument("--max-new-tokens", type=int, help="longest reply in tokens (default: min(48, window/2))")
    chat.add_argument("--temperature", type=float, default=0.6, help="0 = greedy (default 0.6)")
    chat.add_argument("--top-k", type=int, default=50, help="keep the k most likely tokens (default 50)")
    chat.add_argument("--top-p", type=float, help="keep the smallest set of tokens whose probability reaches p")
    chat.add_argument("--min-p", type=float, help="keep tokens at least min-p times as likely as the top one")
    chat.add_argument("--seed", type=_seed, default=0, help="random seed of the first reply, +1 per reply (default 0)")
    chat.add_argument("--no-tools", action="store_true", help="do not answer the model's calculator calls")
    chat.set_defaults(func=_cmd_chat)

    pipe = sub.add_parser("pipeline", help="run every stage in order and write a report")
    pipe.add_argument("--out", help="run directory (default: runs/pipeline-<budget>)")
    pipe.add_argument("--stages", nargs="+", help="only these stages, in this order")
    pipe.add_argument("--readme", action="store_true", help="also write the results table into README.md")
    pipe.set_defaults(func=_cmd_pipeline)

    bench = sub.add_parser("bench", help="run a benchmark and print one JSON line")
    from .bench import BENCHMARKS

    bench.add_argument("name", choices=sorted(BENCHMARKS))
    bench.add_argument("--vocab-size", type=int, help="tokenizer: vocabulary size")
    bench.add_argument("--config", help="pretrain: baby (nanoGPT's char-level Shakespeare model), best (90 s on a CPU), "
                       "hybrid (best interpolated with a 4-gram model), cached (hybrid with a memory of the play read so far) "
                       "or d12 (GPU: MFU)")
    bench.add_argument("--seconds", type=float, help="pretrain: training time budget (default 90)")
    bench.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="pretrain: change one setting of the configuration, e.g. --set n_head=6 "
                       "--set compile_mode=max-autotune (repeatable)")
    bench.add_argument("--new-tokens", type=int, help="generate: tokens to generate per prompt (default 512)")
    bench.add_argument("--batch-size", type=int, help="generate: prompts decoded together (default 32)")
    bench.add_argument("--repeats", type=int, help="generate: timed runs, the best counts (default 3)")
    bench.set_defaults(func=_cmd_bench)

    check = sub.add_parser("check", help="test your exercise file for a chapter (e.g. 01)")
    check.add_argument("chapter", help="chapter number, e.g. 01")
    check.add_argument("--solutions", action="store_true", help="test the reference solutions instead")
    check.set_defaults(func=_cmd_check)
    _budget_after_the_command(sub)
    return parser


def _budget_after_the_command(subparsers) -> None:
    """Let ``--budget`` come after the command too (``minilm pretrain --budget smoke``), in every
    command and sub-command; given there, it wins over one given before the command."""
    for command in subparsers.choices.values():
        if not any("--budget" in action.option_strings for action in command._actions):
            command.add_argument("--budget", choices=BUDGET_NAMES, default=argparse.SUPPRESS,
                                 help="compute budget (may also come before the command)")
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                _budget_after_the_command(action)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line each, like the errors: no file name, no source line."""
    kind = "" if category is UserWarning else f"{category.__name__}: "
    print(f"minilm: warning: {kind}{message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            args = build_parser().parse_args(argv)  # imports the stages: Ctrl-C may come here too
            args.func(args)
    # OSError: a folder where a file should be, a full disk, no permission: one line as well.
    except (ConfigError, OSError, ValueError, KeyError, RuntimeError) as err:
        if os.environ.get("MINILM_DEBUG"):
            raise  # developers: the full traceback
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"minilm: error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        # Training writes a checkpoint now and then (and data builds start over), so a rerun goes on.
        print("\nminilm: interrupted; the same command run again continues a training stage from its last checkpoint",
              file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
