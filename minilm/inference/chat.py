"""Chatting with a model: a conversation kept as messages, each reply streamed as it is generated.

A :class:`Chat` holds the messages (``{"role", "content"}``, an optional system message first).
For each user message it renders the conversation with the chat template
(:func:`minilm.text.chat_template.render_conversation`, ending with ``<|im_start|>assistant\\n``),
generates with the inference engine (:func:`minilm.inference.generate.generate_tokens`) until the model
writes ``<|im_end|>`` (or ``<|endoftext|>``), and yields the reply's text piece by piece.

- The context window: the model sees at most ``block_size`` tokens (256 for the laptop SFT model, 64 for the base model).
  Before each reply the oldest whole turns (a user message and the replies after it) are dropped,
  the system message kept, until the prompt plus ``max_new_tokens`` fits; how many were dropped
  is reported. A reply longer than the room left slides the window (the engine does that). A
  message too long to fit even alone is a :class:`ContextTooLong` error, and the chat goes on.
- Calculator calls are answered by :class:`minilm.inference.generate.CalculatorTool` (on by default) and
  shown in the stream readably, ``[calculator: 12+30 -> 42]``, while the stored assistant message
  keeps the raw ``<|calc_start|>12+30<|calc_end|><|result_start|>42<|result_end|>``: the next
  turn's prompt is then exactly the layout the model was trained on.

:func:`chat_loop` is ``minilm chat`` (lines in, streamed replies out); :func:`chat_widget` is the
same chat as a notebook widget.

>>> import torch
>>> from minilm.models.gpt import GPT, GPTConfig
>>> from minilm.text.tokenizer import Tokenizer
>>> tok = Tokenizer.train("Hi! How are you? I am fine.", vocab_size=300)
>>> _ = torch.manual_seed(0)
>>> model = GPT(GPTConfig.modern(vocab_size=tok.vocab_size, n_layer=1, n_embd=32, n_head=2, block_size=64))
>>> chat = Chat(model, tok, max_new_tokens=5, seed=0)
>>> text = "".join(chat.send("Hi!"))  # an untrained model: 5 tokens of noise
>>> [m["role"] for m in chat.messages], chat.last.new_tokens, chat.last.finished
(['user', 'assistant'], 5, False)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Iterator, TextIO

from ..core.checks import check_count
from ..models.checkpoint import check_same_vocabulary
from ..text.chat_template import render_conversation
from ..text.tokenizer import CALC_END, CALC_START, ENDOFTEXT, IM_END, RESULT_END, RESULT_START
from .generate import CalculatorTool, TextDecoder, check_sampling, generate_tokens

# How the tool's special tokens are shown to a person: "[calculator: 12+30 -> 42]".
TOOL_TEXT = {CALC_START: "[calculator: ", CALC_END: " -> ", RESULT_START: "", RESULT_END: "]"}


class ContextTooLong(ValueError):
    """A message that does not fit in the model's context window even without any history."""


def readable(content: str) -> str:
    """A stored assistant message as the chat shows it: calculator calls written for people.

    >>> readable("It is <|calc_start|>12+30<|calc_end|><|result_start|>42<|result_end|>.")
    'It is [calculator: 12+30 -> 42].'
    """
    for marker, shown in TOOL_TEXT.items():
        content = content.replace(marker, shown)
    return content


def default_max_new_tokens(block_size: int) -> int:
    """Reply length when none is given: at most 48 tokens and at most half the window, so the
    history keeps room (a 64-token window gets replies of 32; the laptop SFT model's 256, of 48).

    >>> default_max_new_tokens(64), default_max_new_tokens(512)
    (32, 48)
    """
    return max(1, min(48, block_size // 2))


def conversation_turns(messages: list[dict]) -> tuple[list[dict], list[list[dict]]]:
    """``(system messages, turns)``: a turn is a user message and the messages after it up to the
    next user message. Messages before the first user message (other than system) form a turn too.

    >>> system, turns = conversation_turns([{"role": "system", "content": "Be brief."},
    ...     {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
    ...     {"role": "user", "content": "2+2?"}])
    >>> len(system), [[m["content"] for m in turn] for turn in turns]
    (1, [['Hi', 'Hello'], ['2+2?']])
    """
    system = [m for m in messages[:1] if m["role"] == "system"]
    turns: list[list[dict]] = []
    for message in messages[len(system):]:
        if message["role"] == "user" or not turns:
            turns.append([])
        turns[-1].append(message)
    return system, turns


def fit_history(tokenizer, messages: list[dict], block_size: int, max_new_tokens: int) -> tuple[list[dict], int]:
    """The messages to prompt with, and how many of the oldest turns were dropped for them.

    Whole turns are dropped, oldest first (a system message stays), until the prompt
    (``render_conversation`` with the generation prompt) plus ``max_new_tokens`` fits in
    ``block_size`` tokens. The newest turn always stays: if it still leaves less room than
    ``max_new_tokens`` the reply will slide the window. If its prompt alone fills the window, that
    is a :class:`ContextTooLong` error naming the sizes.

    >>> from minilm.text.tokenizer import Tokenizer
    >>> tok = Tokenizer.train("system user assistant Be brief. 0 1 2 3", vocab_size=300)
    >>> history = [{"role": role, "content": f"{role} {n}"} for n in range(3) for role in ("user", "assistant")]
    >>> messages = [{"role": "system", "content": "Be brief."}, *history, {"role": "user", "content": "user 3"}]
    >>> len(render_conversation(tok, messages, add_generation_prompt=True)[0])
    82
    >>> kept, dropped = fit_history(tok, messages, block_size=64, max_new_tokens=10)
    >>> dropped, [m["content"] for m in kept], len(render_conversation(tok, kept, add_generation_prompt=True)[0])
    (2, ['Be brief.', 'user 2', 'assistant 2', 'user 3'], 42)
    """
    system, turns = conversation_turns(list(messages))
    if not turns:
        raise ValueError("nothing to reply to: the conversation has no user message")
    dropped = 0
    while True:
        kept = system + [m for turn in turns[dropped:] for m in turn]
        length = len(render_conversation(tokenizer, kept, add_generation_prompt=True)[0])
        if length + max_new_tokens <= block_size or dropped == len(turns) - 1:
            break
        dropped += 1
    if length >= block_size:
        newest = len(render_conversation(tokenizer, turns[-1])[0])
        context = " and the system message" if system else ""
        raise ContextTooLong(
            f"this message is too long for the model's {block_size}-token window: with the chat template"
            f"{context} the prompt is {length} tokens ({newest} for the message). Write a shorter message"
            + (" or drop the system message." if system else "."))
    return kept, dropped


@dataclass
class Reply:
    """What the last reply was: the text shown, the tokens generated, and how it fitted the window."""

    text: str = ""  # as streamed (calculator calls readable)
    tokens: list[int] = field(default_factory=list)  # generated tokens, the stop token not included
    finished: bool = False  # the model ended its turn (<|im_end|>) before max_new_tokens
    dropped_turns: int = 0  # oldest turns dropped before this reply to fit the window
    prompt_tokens: int = 0

    @property
    def new_tokens(self) -> int:
        return len(self.tokens)


class Chat:
    """A conversation with a model; :meth:`send` streams each reply. See the module docstring.

    Sampling: ``temperature`` (0 = greedy), ``top_k``, ``top_p``, ``min_p`` as in
    :func:`minilm.inference.generate.filtered_probs`; reply ``n`` of the chat is drawn with seed
    ``seed + n`` (reproducible, yet not the same draws every turn; ``seed=None``: not seeded).
    ``max_new_tokens`` defaults to :func:`default_max_new_tokens` of the model's window.
    """

    def __init__(self, model, tokenizer, system: str | None = None, max_new_tokens: int | None = None,
                 temperature: float = 0.6, top_k: int | None = 50, top_p: float | None = None,
                 min_p: float | None = None, seed: int | None = 0, tools: bool = True):
        check_sampling(temperature, top_k, top_p, min_p)
        block = model.config.block_size
        if max_new_tokens is None:
            max_new_tokens = default_max_new_tokens(block)
        check_count("max_new_tokens", max_new_tokens)
        check_same_vocabulary(model, tokenizer)
        if system is not None and not system.strip():
            raise ValueError("system='' is empty: give a system message or None")
        if system is not None:  # said now, not when the first message is sent
            smallest = [{"role": "system", "content": system}, {"role": "user", "content": "?"}]
            length = len(render_conversation(tokenizer, smallest, add_generation_prompt=True)[0])
            if length >= block:
                raise ValueError(f"the system message leaves no room in the model's {block}-token window: with "
                                 f"the chat template and a one-character message the prompt is {length} tokens")
        self.model, self.tokenizer, self.system = model, tokenizer, system
        self.max_new_tokens = max_new_tokens
        self.sampling = dict(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p)
        self.seed = seed
        self.tool = CalculatorTool(tokenizer) if tools else None
        self.stop_ids = (tokenizer.special_id(IM_END), tokenizer.special_id(ENDOFTEXT))
        self.tool_text = {tokenizer.special_id(marker): shown for marker, shown in TOOL_TEXT.items()}
        self.replies = 0  # replies generated so far: the seed of the next one is seed + replies
        self.last = Reply()
        self.reset()

    @property
    def block_size(self) -> int:
        return self.model.config.block_size

    def reset(self) -> None:
        """Start over: forget every turn (the system message stays)."""
        self.messages: list[dict] = [{"role": "system", "content": self.system}] if self.system else []

    def send(self, text: str) -> Iterator[str]:
        """Add the user message ``text`` and return an iterator over the reply's text pieces.

        The history is fitted to the window now (``ContextTooLong`` is raised here). ``messages``
        changes only when the iterator is exhausted: then the user message and the reply (raw, tool
        tokens included) are stored, and the dropped turns are gone. A reply the reader stops
        early leaves the conversation as it was.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError("an empty message: write something to send")
        messages, dropped = fit_history(self.tokenizer, self.messages + [{"role": "user", "content": text}],
                                        self.block_size, self.max_new_tokens)
        prompt, _ = render_conversation(self.tokenizer, messages, add_generation_prompt=True)
        seed = None if self.seed is None else self.seed + self.replies
        steps = generate_tokens(self.model, [prompt], self.max_new_tokens, stop_ids=self.stop_ids, seed=seed,
                                tools=self.tool, **self.sampling)
        self.last = Reply(dropped_turns=dropped, prompt_tokens=len(prompt))
        return self._stream(steps, messages)

    def reply(self, text: str) -> str:
        """:meth:`send` without streaming: the whole reply as shown."""
        return "".join(self.send(text))

    def _stream(self, steps, messages: list[dict]) -> Iterator[str]:
        reply, decoder = self.last, TextDecoder(self.tokenizer)
        try:
            for (token,) in steps:
                if token in self.stop_ids:
                    reply.finished = True
                    break
                reply.tokens.append(token)
                # A tool marker is shown as words; text before it that is still held comes out first.
                piece = decoder.flush() + self.tool_text[token] if token in self.tool_text else decoder.add(token)
                reply.text += piece
                if piece:
                    yield piece
            piece = decoder.flush()  # an unfinished character at the very end (U+FFFD, as decode writes it)
            reply.text += piece
            if piece:
                yield piece
        finally:
            steps.close()  # also when the reader stops early: the model goes back to its train/eval mode
        self.messages = messages + [{"role": "assistant", "content": self.tokenizer.decode(reply.tokens)}]
        self.replies += 1


def describe_reply(reply: Reply, max_new_tokens: int, block_size: int) -> list[str]:
    """Notes for a person about the last reply: turns dropped, a reply cut at the token limit."""
    notes = []
    if reply.dropped_turns:
        turns = "turn" if reply.dropped_turns == 1 else "turns"
        notes.append(f"[{reply.dropped_turns} oldest {turns} dropped: the model sees {block_size} tokens]")
    if not reply.finished and reply.new_tokens >= max_new_tokens:
        notes.append(f"[reply cut at {max_new_tokens} tokens]")
    return notes


# ----------------------------------------------------------------------------------------------
# The terminal and the notebook


HELP = "/reset starts a new conversation, /quit (or Ctrl-D, Ctrl-C) ends"


def chat_loop(chat: Chat, lines: TextIO, out: TextIO) -> int:
    """Read user lines from ``lines``, stream each reply to ``out``; returns the replies written.

    ``/quit`` (or ``/exit``), the end of the input and Ctrl-C end the chat; ``/reset`` forgets the
    conversation. When ``lines`` is not a terminal (a pipe), each line is echoed after the prompt,
    so the output reads as a transcript.
    """
    interactive = lines.isatty()
    replies = 0
    try:
        while True:
            line = _read_line(lines, out, interactive)
            if not line:  # end of input (Ctrl-D)
                if interactive:
                    out.write("\n")
                break
            text = line.rstrip("\r\n")
            if not interactive:
                out.write(f"you> {text}\n")
            command = text.strip()
            if not command:
                continue
            if command in ("/quit", "/exit"):
                break
            if command == "/reset":
                chat.reset()
                out.write("[new conversation]\n")
                continue
            if command.startswith("/") and " " not in command:
                out.write(f"[unknown command {command}: {HELP}]\n")
                continue
            replies += write_reply(chat, text, out.write, out.flush)
    except KeyboardInterrupt:  # Ctrl-C, while typing or while the model writes: end cleanly
        out.write("\n")
    out.write("bye\n")
    out.flush()
    return replies


def write_reply(chat: Chat, text: str, write, flush=lambda: None) -> bool:
    """Send ``text`` and write the streamed reply (``minilm> ...``) and its notes with ``write``;
    a message too long for the window is written as a note instead. Returns whether a reply came."""
    try:
        pieces = chat.send(text)
    except ContextTooLong as err:
        write(f"[{err}]\n")
        return False
    write("minilm> ")
    for piece in pieces:
        write(piece)
        flush()
    write("\n")
    for note in describe_reply(chat.last, chat.max_new_tokens, chat.block_size):
        write(note + "\n")
    return True


def _read_line(lines: TextIO, out: TextIO, interactive: bool) -> str:
    """One line with its newline, '' at the end of the input."""
    if interactive and lines is sys.stdin and out is sys.stdout:
        try:
            return input("you> ") + "\n"  # a terminal: input() gives line editing where readline exists
        except EOFError:
            return ""
    if interactive:
        out.write("you> ")
        out.flush()
    return lines.readline()


def chat_widget(model, tokenizer, **settings):
    """A chat box for notebooks: a text box, a Send and a New chat button, the transcript above.

    ``settings`` are those of :class:`Chat` (``system``, ``temperature``, ``max_new_tokens``, ...).
    The reply streams into the transcript. The returned box carries ``.chat`` (the :class:`Chat`),
    ``.text``, ``.send_button``, ``.reset_button`` and ``.output`` (an ``ipywidgets.Output``
    whose outputs are the transcript); it is built and usable without a display.

    >>> import torch
    >>> from minilm.models.gpt import GPT, GPTConfig
    >>> from minilm.text.tokenizer import Tokenizer
    >>> tok = Tokenizer.train("Hi! How are you?", vocab_size=300)
    >>> model = GPT(GPTConfig.modern(vocab_size=tok.vocab_size, n_layer=1, n_embd=32, n_head=2, block_size=64))
    >>> box = chat_widget(model, tok, max_new_tokens=3)
    >>> box.text.value = "Hi!"
    >>> box.send_button.click()
    >>> transcript(box.output).startswith("you> Hi!\\nminilm> "), len(box.chat.messages)
    (True, 2)
    """
    import ipywidgets as widgets

    chat = Chat(model, tokenizer, **settings)
    output = widgets.Output(layout=widgets.Layout(border="1px solid #ddd", min_height="120px", padding="4px"))
    text = widgets.Text(placeholder="Ask minilm something, then press Send", layout=widgets.Layout(width="70%"))
    send_button = widgets.Button(description="Send", button_style="primary")
    reset_button = widgets.Button(description="New chat")

    def send(_=None):
        message = text.value.strip()
        if not message:
            return
        text.value = ""
        output.append_stdout(f"you> {message}\n")
        write_reply(chat, message, output.append_stdout)

    def reset(_=None):
        chat.reset()
        output.outputs = ()  # works without a kernel too (clear_output needs one)

    send_button.on_click(send)
    reset_button.on_click(reset)
    box = widgets.VBox([output, widgets.HBox([text, send_button, reset_button])])
    box.chat, box.text, box.send_button, box.reset_button, box.output = chat, text, send_button, reset_button, output
    return box


def transcript(output) -> str:
    """The text written into an ``ipywidgets.Output`` with ``append_stdout`` (a chat widget's transcript)."""
    return "".join(o.get("text", "") for o in output.outputs if o.get("output_type") == "stream")
