"""The error modal: a title, the message escaped (never parsed as markup), copyable."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, TextArea


class ErrorModal(ModalScreen[None]):
    """Shows one error; `c` copies it, Esc or Enter closes it."""

    BINDINGS = [
        Binding("escape", "dismiss_error", "Close", id="error.close"),
        Binding("c", "copy_error", "Copy", id="error.copy"),
    ]

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.error_title = title
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(id="error-box"):
            # Label(markup=False): a message holding "[...]" must show as written.
            yield Label(self.error_title, id="error-title", markup=False)
            yield TextArea(self.message, read_only=True, id="error-text", soft_wrap=True)
            yield Button("Close", variant="error", id="error-close")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_dismiss_error(self) -> None:
        self.dismiss(None)

    def action_copy_error(self) -> None:
        self.app.copy_to_clipboard(f"{self.error_title}: {self.message}")
        self.notify("Error copied to the clipboard.")


class ReportModal(ErrorModal):
    """The same scrollable, copyable text box for a result that is not an error (validate)."""

    def on_mount(self) -> None:
        self.query_one("#error-box").add_class("report")
