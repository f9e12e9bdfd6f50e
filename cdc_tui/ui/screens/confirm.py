"""Confirmations before anything destructive: yes/no, or typing the pipeline's name."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label


class ConfirmModal(ModalScreen[bool]):
    """A question answered with `y` / `n` (Esc is no)."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, markup=False, classes="question")
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", variant="warning", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class TypeNameModal(ModalScreen[bool]):
    """Asks for the pipeline's name to be typed: the guard in front of `drop`."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="typename.cancel")]

    def __init__(self, question: str, name: str) -> None:
        super().__init__()
        self.question = question
        self.expected = name

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, markup=False, classes="question")
            yield Input(placeholder=self.expected, id="typed-name")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value == self.expected:
            self.dismiss(True)
        else:
            self.notify(f"That is not {self.expected!r}; nothing was done.", severity="warning")
            self.dismiss(False)

    def action_cancel(self) -> None:
        self.dismiss(False)
