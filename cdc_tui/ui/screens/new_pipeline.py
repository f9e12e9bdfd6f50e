"""`n`: the new-pipeline form. Tables come from the live source catalog; `Check` runs the same
preflight as `cdc-tui check` and a pipeline is saved only once its draft checked clean."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    Select,
    SelectionList,
)

from cdc_tui.domain.findings import Finding
from cdc_tui.domain.status import Engine, Mode
from cdc_tui.errors import CdcTuiError
from cdc_tui.services.context import AppContext
from cdc_tui.services.drafts import (
    CatalogTable,
    Draft,
    blocking,
    check_draft,
    connection_choices,
    save_draft,
    source_catalog,
)
from cdc_tui.ui.screens.error import ErrorModal


@dataclass
class CatalogLoaded(Message):
    source: str
    tables: list[CatalogTable]


@dataclass
class FindingsReady(Message):
    draft: Draft
    findings: list[Finding]


@dataclass
class DraftSaved(Message):
    name: str


@dataclass
class FormFailed(Message):
    title: str
    text: str


class NewPipelineScreen(Screen[str | None]):
    """Dismisses with the new pipeline's name, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # ctrl+t and ctrl+s: keys no form widget uses, so they work wherever the focus is.
        Binding("ctrl+t", "check", "Check", id="form.check", priority=True),
        Binding("ctrl+s", "save", "Save", id="form.save", priority=True),
        Binding("escape", "cancel", "Cancel", id="form.cancel"),
    ]

    def __init__(self, ctx: AppContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.catalog: dict[str, CatalogTable] = {}
        self.checked: Draft | None = None
        self.blocking: list[Finding] = []

    def compose(self) -> ComposeResult:
        choices = [(f"{c.name}  ({c.kind}, {c.where})", c.name)
                   for c in connection_choices(self.ctx)]  # fmt: skip
        yield Header()
        with VerticalScroll(id="form"):
            yield Label("Name (lowercase letters, digits, _)")
            yield Input(placeholder="orders", id="name")
            with Horizontal(classes="pair"):
                yield Select(choices, prompt="source connection", id="source")
                yield Select(choices, prompt="target connection", id="target")
            with Horizontal(classes="pair"):
                yield Select([(m.value, m) for m in Mode], value=Mode.FULL_LOAD_AND_CDC,
                             allow_blank=False, id="mode")  # fmt: skip
                # Only the embedded engine runs in this version (kafka_connect is issue 5).
                yield Select([(Engine.EMBEDDED.value, Engine.EMBEDDED)], value=Engine.EMBEDDED,
                             allow_blank=False, id="engine")  # fmt: skip
            yield Label("Tables (space selects; from the source's catalog)", id="tables-label")
            yield SelectionList[str](id="tables")
            yield Label("Findings (Check runs the preflight; errors block Save)")
            findings: DataTable[str] = DataTable(id="findings", cursor_type="row")
            findings.add_columns("Severity", "Rule", "Object", "Message", "Fix")
            yield findings
            with Horizontal(classes="buttons"):
                yield Button("Check (^t)", id="check", variant="primary")
                yield Button("Save (^s)", id="save", variant="success")
                yield Button("Cancel (esc)", id="cancel")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "cdc-tui: new pipeline"
        self.query_one("#name", Input).focus()

    # -- the catalog ------------------------------------------------------------------------

    @on(Select.Changed, "#source")
    def source_changed(self, event: Select.Changed) -> None:
        self.query_one("#tables", SelectionList).clear_options()
        self.catalog = {}
        if isinstance(event.value, str):
            self.query_one("#tables-label", Label).update(f"Tables of {event.value}: loading...")
            self.load_catalog(event.value)

    @work(thread=True, exclusive=True, group="catalog", exit_on_error=False)
    def load_catalog(self, source: str) -> None:
        try:
            tables = source_catalog(self.ctx, source)
        except CdcTuiError as exc:
            self.post_message(FormFailed(exc.title, exc.message))
            return
        self.post_message(CatalogLoaded(source, tables))

    @on(CatalogLoaded)
    def catalog_loaded(self, message: CatalogLoaded) -> None:
        if self.query_one("#source", Select).value != message.source:
            return  # the user picked another source meanwhile
        self.catalog = {str(t.ref): t for t in message.tables}
        options = self.query_one("#tables", SelectionList)
        options.clear_options()
        options.add_options([(t.label, str(t.ref)) for t in message.tables])
        self.query_one("#tables-label", Label).update(
            f"Tables of {message.source} ({len(message.tables)}; space selects)"
        )

    # -- check and save ---------------------------------------------------------------------

    def draft(self) -> Draft | None:
        """The form as a draft, or None (and a notice) while something is missing."""
        name = self.query_one("#name", Input).value.strip()
        source = self.query_one("#source", Select).value
        target = self.query_one("#target", Select).value
        selected = self.query_one("#tables", SelectionList).selected
        missing = [
            what
            for what, given in (
                ("a name", bool(name)),
                ("a source", isinstance(source, str)),
                ("a target", isinstance(target, str)),
                ("at least one table", bool(selected)),
            )
            if not given
        ]
        if missing or not isinstance(source, str) or not isinstance(target, str):
            self.notify(f"The form needs {', '.join(missing)}.", severity="warning")
            return None
        mode, engine = (
            self.query_one("#mode", Select).value,
            self.query_one("#engine", Select).value,
        )
        return Draft(
            name=name,
            source=source,
            target=target,
            tables=tuple(self.catalog[key].ref for key in selected),
            mode=mode if isinstance(mode, Mode) else Mode.FULL_LOAD_AND_CDC,
            engine=engine if isinstance(engine, Engine) else Engine.EMBEDDED,
        )

    def action_check(self) -> None:
        if (draft := self.draft()) is not None:
            self.notify("Checking the source and the target...", timeout=2)
            self.run_check(draft)

    @work(thread=True, exclusive=True, group="check", exit_on_error=False)
    def run_check(self, draft: Draft) -> None:
        try:
            findings = check_draft(self.ctx, draft)
        except CdcTuiError as exc:
            self.post_message(FormFailed(exc.title, exc.message))
            return
        self.post_message(FindingsReady(draft, findings))

    @on(FindingsReady)
    def findings_ready(self, message: FindingsReady) -> None:
        table = self.query_one("#findings", DataTable)
        table.clear()
        for f in message.findings:
            table.add_row(str(f.severity), f.rule, f.object, f.message, f.fix or "")
        self.checked = message.draft
        self.blocking = blocking(message.findings)
        if self.blocking:
            self.notify(f"{len(self.blocking)} error(s) to fix before saving.", severity="error")
        else:
            self.notify("Check passed: Save stores the pipeline.")

    def action_save(self) -> None:
        draft = self.draft()
        if draft is None:
            return
        if draft != self.checked:
            self.notify("Run Check (ctrl+t) on the form as it is now first.", severity="warning")
        elif self.blocking:
            self.notify("The check found errors; fix them and check again.", severity="error")
        else:
            self.run_save(draft)

    @work(thread=True, exclusive=True, group="save", exit_on_error=False)
    def run_save(self, draft: Draft) -> None:
        try:
            save_draft(self.ctx, draft)
        except CdcTuiError as exc:
            self.post_message(FormFailed(exc.title, exc.message))
            return
        self.post_message(DraftSaved(draft.name))

    @on(DraftSaved)
    def saved(self, message: DraftSaved) -> None:
        self.dismiss(message.name)

    @on(FormFailed)
    def failed(self, message: FormFailed) -> None:
        self.app.push_screen(ErrorModal(message.title, message.text))

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        event.stop()
        {"check": self.action_check, "save": self.action_save, "cancel": self.action_cancel}[
            str(event.button.id)
        ]()

    def action_cancel(self) -> None:
        self.dismiss(None)
