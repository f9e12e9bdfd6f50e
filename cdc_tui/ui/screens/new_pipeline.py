"""`n`: the new-pipeline form, and `e`: the same form on an existing pipeline. Tables come from
the live source catalog; `Check` runs the same preflight as `cdc-tui check` and a pipeline is
saved only once its draft checked clean. Saving an edit that changes what a pipeline already
copied asks first, because it resyncs the pipeline (`cdc-tui pipeline edit --resync`).

Either engine can be picked for a new pipeline; kafka_connect shows the Kafka Connect REST URL
field (`--connect-url`). An edit keeps the pipeline's engine and Connect URL, shown read-only:
`pipeline edit` does not change them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
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
from cdc_tui.store.records import PipelineRecord
from cdc_tui.ui.screens.confirm import ConfirmModal
from cdc_tui.ui.screens.error import ErrorModal

if TYPE_CHECKING:
    from cdc_tui.services.edit import EditResult


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
class EditPreviewed(Message):
    draft: Draft
    result: EditResult


@dataclass
class FormFailed(Message):
    title: str
    text: str


class NewPipelineScreen(Screen[str | None]):
    """Dismisses with the new (or edited) pipeline's name, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # ctrl+t and ctrl+s: keys no form widget uses, so they work wherever the focus is.
        Binding("ctrl+t", "check", "Check", id="form.check", priority=True),
        Binding("ctrl+s", "save", "Save", id="form.save", priority=True),
        Binding("escape", "cancel", "Cancel", id="form.cancel"),
    ]

    def __init__(self, ctx: AppContext, *, editing: PipelineRecord | None = None) -> None:
        super().__init__()
        self.ctx = ctx
        self.editing = editing
        self.catalog: dict[str, CatalogTable] = {}
        self.checked: Draft | None = None
        self.blocking: list[Finding] = []

    def compose(self) -> ComposeResult:
        choices = [(f"{c.name}  ({c.kind}, {c.where})", c.name)
                   for c in connection_choices(self.ctx)]  # fmt: skip
        edited = self.editing
        source: str | None = None
        target: str | None = None
        if edited is not None:
            # A pipeline created from a URL keeps it: offer it next to the named connections.
            source = edited.source.name or edited.source.url
            target = edited.target.name or edited.target.url
            named = {value for _label, value in choices}
            choices += [(f"{value}  (this pipeline's)", value) for value in dict.fromkeys(
                (source, target)) if value not in named]  # fmt: skip
        yield Header()
        with VerticalScroll(id="form"):
            yield Label("Name (lowercase letters, digits, _)")
            yield Input(edited.name if edited else "", placeholder="orders", id="name",
                        disabled=edited is not None)  # fmt: skip
            with Horizontal(classes="pair"):
                yield Select(choices, prompt="source connection", id="source",
                             value=Select.NULL if source is None else source)  # fmt: skip
                yield Select(choices, prompt="target connection", id="target",
                             value=Select.NULL if target is None else target)  # fmt: skip
            with Horizontal(classes="pair"):
                yield Select([(m.value, m) for m in Mode],
                             value=edited.mode if edited else Mode.FULL_LOAD_AND_CDC,
                             allow_blank=False, id="mode")  # fmt: skip
                # An edit cannot change the engine (`pipeline edit` has no --engine).
                yield Select([(e.value, e) for e in Engine],
                             value=edited.engine if edited else Engine.EMBEDDED,
                             allow_blank=False, id="engine",
                             disabled=edited is not None)  # fmt: skip
            # Right after the engine, in Tab order; shown for kafka_connect only (here and in
            # engine_changed), read-only in an edit (`pipeline edit` has no --connect-url).
            kafka = edited is not None and edited.engine == Engine.KAFKA_CONNECT
            url_label = Label("Kafka Connect REST URL", id="connect-url-label")
            url = Input((edited.connect_url or "") if edited else "",
                        placeholder="http://connect.example.com:8083", id="connect-url",
                        disabled=edited is not None or not kafka)  # fmt: skip
            url_label.display = url.display = kafka
            yield url_label
            yield url
            yield Label("Target schema (blank: each table keeps its source schema)")
            schema = (edited.target_schema or "") if edited else ""
            yield Input(schema, placeholder="(as on the source)", id="target-schema")
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
        if self.editing is not None:
            self.title = f"cdc-tui: edit {self.editing.name}"
            self.query_one("#source", Select).focus()
        else:
            self.title = "cdc-tui: new pipeline"
            self.query_one("#name", Input).focus()

    # -- the engine -------------------------------------------------------------------------

    @on(Select.Changed, "#engine")
    def engine_changed(self, event: Select.Changed) -> None:
        self.show_connect_url(event.value == Engine.KAFKA_CONNECT)

    def show_connect_url(self, shown: bool) -> None:
        """The Connect URL field is there (and focusable) only for the kafka_connect engine."""
        self.query_one("#connect-url-label", Label).display = shown
        url = self.query_one("#connect-url", Input)
        url.display = shown
        url.disabled = not shown or self.editing is not None

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
        if self.editing is not None and message.source in (self.editing.source.name,
                                                           self.editing.source.url):  # fmt: skip
            mine = [str(t.table) for t in self.editing.tables]
            for key in mine:
                if key in self.catalog:
                    options.select(key)
            if gone := [key for key in mine if key not in self.catalog]:
                self.notify(f"No longer on the source: {', '.join(gone)}; saving drops them from "
                            "the pipeline.", severity="warning")  # fmt: skip
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
        chosen = engine if isinstance(engine, Engine) else Engine.EMBEDDED
        # The URL field's text is kept while another engine is picked, but only kafka uses it.
        connect_url = (
            self.query_one("#connect-url", Input).value.strip() or None
            if chosen == Engine.KAFKA_CONNECT
            else None
        )
        return Draft(
            name=name,
            source=source,
            target=target,
            tables=tuple(self.catalog[key].ref for key in selected),
            mode=mode if isinstance(mode, Mode) else Mode.FULL_LOAD_AND_CDC,
            engine=chosen,
            target_schema=self.query_one("#target-schema", Input).value.strip() or None,
            connect_url=connect_url,
        )

    def action_check(self) -> None:
        if (draft := self.draft()) is not None:
            self.notify("Checking the source and the target...", timeout=2)
            self.run_check(draft)

    @work(thread=True, exclusive=True, group="check", exit_on_error=False)
    def run_check(self, draft: Draft) -> None:
        try:
            findings = check_draft(self.ctx, draft, editing=self.editing is not None)
        except CdcTuiError as exc:
            self.post_message(FormFailed(exc.title, exc.message))
            return
        self.post_message(FindingsReady(draft, findings))

    @on(FindingsReady)
    def findings_ready(self, message: FindingsReady) -> None:
        table = self.query_one("#findings", DataTable)
        table.clear()
        for f in message.findings:
            # Text cells: an object or message holding "[...]" is shown as written.
            cells = (str(f.severity), f.rule, f.object, f.message, f.fix or "")
            table.add_row(*map(Text, cells))
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
        elif self.editing is not None:
            self.run_edit(draft, dry_run=True)
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

    @work(thread=True, exclusive=True, group="save", exit_on_error=False)
    def run_edit(self, draft: Draft, *, dry_run: bool, resync: bool = False) -> None:
        """A dry run first says whether the edit needs a resync; then the edit itself."""
        from cdc_tui.services.edit import edit_pipeline

        try:
            result = edit_pipeline(
                self.ctx, draft.name, source=draft.source, target=draft.target,
                tables=draft.tables, mode=draft.mode, target_schema=draft.target_schema or "",
                resync=resync, dry_run=dry_run,
            )  # fmt: skip
        except CdcTuiError as exc:
            self.post_message(FormFailed(exc.title, exc.message))
            return
        self.post_message(EditPreviewed(draft, result) if dry_run else DraftSaved(draft.name))

    @on(EditPreviewed)
    def edit_previewed(self, message: EditPreviewed) -> None:
        result, draft = message.result, message.draft
        if not result.needs_resync:
            self.run_edit(draft, dry_run=False)
            return
        question = (f"Pipeline {draft.name} has already copied data. Saving "
                    f"{'; '.join(result.changes)} resyncs it: its slot and publication are "
                    "dropped, its target tables emptied and everything copied again.")  # fmt: skip

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_edit(draft, dry_run=False, resync=True)

        self.app.push_screen(ConfirmModal(question), answered)

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
