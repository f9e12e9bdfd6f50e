"""The `cdc-tui` command line: the verbs and exit codes of DESIGN §7.

Exit codes: 0 done, 1 the operation failed, 2 usage or configuration error. Errors go to stderr
as one sentence; `--json` output goes to stdout only. Each verb imports the services it uses,
so a verb (and the console) loads only its own code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cdc_tui import __version__
from cdc_tui.domain.status import Engine, Mode
from cdc_tui.errors import CdcTuiError
from cdc_tui.logging_setup import configure_logging
from cdc_tui.services.context import AppContext, build_context

if TYPE_CHECKING:
    from cdc_tui.store.records import PipelineRecord

log = logging.getLogger(__name__)

Handler = Callable[[AppContext, argparse.Namespace], int]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _cmd_create(ctx: AppContext, args: argparse.Namespace) -> int:
    from cdc_tui.cli_output import print_json
    from cdc_tui.domain.spec import parse_table_list
    from cdc_tui.services.pipelines import create_pipeline
    from cdc_tui.services.status import summary_document

    record = create_pipeline(
        ctx,
        name=args.name,
        source=args.source,
        target=args.target,
        tables=parse_table_list(args.tables),
        mode=Mode(args.mode),
        engine=Engine(args.engine),
        target_schema=args.target_schema,
        connect_url=args.connect_url,
        numeric_policy=args.numeric_policy,
    )
    if args.json:
        print_json(summary_document(record, None, datetime.now(UTC)))
    else:
        print(
            f"Pipeline {record.name} created with {len(record.tables)} table(s); "
            f"run `cdc-tui check {record.name}` to verify the source and target."
        )
    return EXIT_OK


def _cmd_edit(ctx: AppContext, args: argparse.Namespace) -> int:
    from cdc_tui.cli_output import print_json
    from cdc_tui.domain.spec import parse_table_list
    from cdc_tui.services.edit import edit_pipeline

    result = edit_pipeline(
        ctx,
        args.name,
        source=args.source,
        target=args.target,
        tables=parse_table_list(args.tables) if args.tables is not None else None,
        mode=Mode(args.mode) if args.mode is not None else None,
        target_schema=args.target_schema,
        resync=args.resync,
        dry_run=args.dry_run,
    )
    if args.json:
        print_json(result.to_json(args.dry_run))
        return EXIT_OK
    for change in result.changes:
        print(change)
    if args.dry_run:
        needs = "; saving needs --resync" if result.needs_resync else ""
        print(f"Dry run: nothing stored{needs}.")
    else:
        print(f"Pipeline {args.name} edited: {'; '.join(result.done)}.")
    return EXIT_OK


def _cmd_list(ctx: AppContext, args: argparse.Namespace) -> int:
    from cdc_tui.cli_output import print_json, table
    from cdc_tui.services.pipelines import list_pipelines
    from cdc_tui.services.status import summary_document
    from cdc_tui.store.repositories import LeaseRepository

    now = datetime.now(UTC)
    leases = LeaseRepository(ctx.store)
    docs = [summary_document(p, leases.get(p.name), now) for p in list_pipelines(ctx)]
    if args.json:
        print_json(docs)
        return EXIT_OK
    if not docs:
        print("No pipelines yet; create one with `cdc-tui pipeline create`.")
        return EXIT_OK
    cols = ["name", "engine", "mode", "status", "full_load_status", "cdc_status", "health"]
    print(table([[str(d[c]) for c in cols] for d in docs], cols))
    return EXIT_OK


def _cmd_status(ctx: AppContext, args: argparse.Namespace) -> int:
    from cdc_tui.cli_output import print_json, status_text
    from cdc_tui.services.status import status_document

    doc = status_document(ctx, args.name)
    if args.json:
        print_json(doc)
    else:
        print(status_text(doc))
    return EXIT_OK


def _cmd_check(ctx: AppContext, args: argparse.Namespace) -> int:
    from cdc_tui.cli_output import findings_text, print_json
    from cdc_tui.domain.findings import has_errors
    from cdc_tui.services.preflight import check_pipeline

    pipeline, findings = check_pipeline(ctx, args.name)
    failed = has_errors(findings)
    if args.json:
        print_json(
            {
                "name": pipeline.name,
                "ok": not failed,
                "findings": [f.to_json() for f in findings],
            }
        )
    else:
        print(findings_text(findings))
    if failed:
        print(
            f"error: Preflight of pipeline {args.name!r} found problems; fix the errors above "
            "and run the check again.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


def _cmd_plan(ctx: AppContext, args: argparse.Namespace) -> int:
    from cdc_tui.cli_output import print_json
    from cdc_tui.services.plan import plan_pipeline

    result = plan_pipeline(ctx, args.name)
    if args.json:
        print_json({"name": args.name, **result.to_json()})
    else:
        print(result.sql)
    return EXIT_OK


def _cmd_drop(ctx: AppContext, args: argparse.Namespace) -> int:
    from cdc_tui.services.control import drop_pipeline_everywhere

    done = drop_pipeline_everywhere(ctx, args.name)
    print(f"Pipeline {args.name} dropped" + (f" ({'; '.join(done)})." if done else "."))
    return EXIT_OK


def _print_progress(pipeline: PipelineRecord) -> None:
    print(
        f"{pipeline.name}: status={pipeline.status} full_load={pipeline.full_load_status} "
        f"cdc={pipeline.cdc_status}",
        flush=True,
    )


def _cmd_start(ctx: AppContext, args: argparse.Namespace) -> int:
    from cdc_tui.services.control import start_pipeline, wait_for

    pid = start_pipeline(ctx, args.name)
    print(f"Started the runner of {args.name} (pid {pid}).", flush=True)
    if args.wait:
        wait_for(ctx, args.name, args.wait, pid=pid, timeout_s=args.timeout,
                 on_change=_print_progress)  # fmt: skip
    return EXIT_OK


def _cmd_stop(ctx: AppContext, args: argparse.Namespace) -> int:
    from cdc_tui.services.control import stop_pipeline

    stopped = stop_pipeline(ctx, args.name, wait=args.wait, timeout_s=args.timeout)
    if stopped:
        print(f"Pipeline {args.name} is stopped.")
    else:
        print(f"Asked the runner of {args.name} to stop after its current transaction.")
    return EXIT_OK


def _cmd_restart(ctx: AppContext, args: argparse.Namespace) -> int:
    from cdc_tui.services.control import start_pipeline, stop_pipeline, wait_for

    stop_pipeline(ctx, args.name, wait=True, timeout_s=args.timeout)
    pid = start_pipeline(ctx, args.name)
    print(f"Restarted the runner of {args.name} (pid {pid}).", flush=True)
    if args.wait:
        wait_for(ctx, args.name, args.wait, pid=pid, timeout_s=args.timeout,
                 on_change=_print_progress)  # fmt: skip
    return EXIT_OK


def _cmd_resync(ctx: AppContext, args: argparse.Namespace) -> int:
    from cdc_tui.services.control import resync_pipeline

    done = resync_pipeline(ctx, args.name, args.table)
    print(f"Resync of {args.name} started: {'; '.join(done)}.")
    return EXIT_OK


def _cmd_run(ctx: AppContext, args: argparse.Namespace) -> int:
    from cdc_tui.runner.launcher import read_secrets
    from cdc_tui.runner.runner import Runner

    if args.secrets_stdin:
        read_secrets(sys.stdin, ctx)
    return Runner(ctx, args.name).run()


def _cmd_validate(ctx: AppContext, args: argparse.Namespace) -> int:
    from cdc_tui.cli_output import print_json, validation_text
    from cdc_tui.services.validate import validate_pipeline

    report = validate_pipeline(ctx, args.name)
    if args.json:
        print_json({"name": args.name, **report.to_json()})
    else:
        print(validation_text(report))
    if not report.ok:
        print(
            f"error: Pipeline {args.name!r} has tables that differ between source and target; "
            f"see the ranges above, then `cdc-tui resync {args.name}` if they persist.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


def _cmd_console(ctx: AppContext, args: argparse.Namespace) -> int:
    from cdc_tui.services.board import prefetched_reader
    from cdc_tui.startup import paused_gc

    # The first board is read while Textual loads, so the first frame already shows it.
    reader = prefetched_reader(ctx)
    with paused_gc():
        from cdc_tui.ui.app import run_console  # only the console imports Textual (DESIGN §9)
    return run_console(ctx, read_only=True if args.read_only else None, reader=reader)


def _cmd_demo(ctx: AppContext, args: argparse.Namespace) -> int:
    from cdc_tui.demo import run_demo  # the demo pulls in pgserver, which most runs never need

    console = sys.stdout.isatty() and not args.no_console and args.duration is None
    return run_demo(duration=args.duration, interval=args.interval, console=console,
                    engine=Engine(args.engine))  # fmt: skip


def _common(json_flag: bool = False) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="PATH",
        help="config file (default: $CDC_TUI_CONFIG or the user config directory)",
    )
    if json_flag:
        p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cdc-tui",
        description="Replicate PostgreSQL tables into PostgreSQL or SQL Server and keep them "
        "in sync. Without a verb, opens the console.",
        parents=[_common()],
    )
    parser.add_argument("--version", action="version", version=f"cdc-tui {__version__}")
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="console: hide and refuse every action that changes a pipeline",
    )
    parser.set_defaults(handler=_cmd_console)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")

    demo = verbs.add_parser(
        "demo", parents=[_common()], help="run the demo on an embedded PostgreSQL"
    )
    demo.add_argument("--duration", type=float, default=None, help="stop after SECONDS")
    demo.add_argument("--interval", type=float, default=2.0, help="seconds between status lines")
    demo.add_argument(
        "--no-console",
        action="store_true",
        help="print status lines instead of opening the console (the default without a terminal)",
    )
    demo.add_argument(
        "--engine", choices=[e.value for e in Engine], default=Engine.EMBEDDED.value,
        help="kafka_connect also starts a local Kafka broker and Connect worker (needs Java 17 "
        "and Maven; the jars are fetched once)",
    )  # fmt: skip
    demo.set_defaults(handler=_cmd_demo)

    pipeline = verbs.add_parser("pipeline", parents=[_common()], help="create pipelines")
    pverbs = pipeline.add_subparsers(dest="pipeline_verb", metavar="VERB", required=True)
    create = pverbs.add_parser(
        "create", parents=[_common(json_flag=True)], help="create a pipeline"
    )
    create.add_argument("name")
    create.add_argument("--source", required=True, metavar="URL|CONN")
    create.add_argument("--target", required=True, metavar="URL|CONN")
    create.add_argument("--tables", required=True, metavar="T1,T2", help="schema.table list")
    create.add_argument(
        "--mode", choices=[m.value for m in Mode], default=Mode.FULL_LOAD_AND_CDC.value
    )
    create.add_argument(
        "--engine", choices=[e.value for e in Engine], default=Engine.EMBEDDED.value
    )
    create.add_argument("--target-schema", default=None, metavar="SCHEMA")
    create.add_argument("--connect-url", default=None, metavar="URL")
    create.add_argument(
        "--numeric-policy", default=None, metavar="POLICY",
        help="SQL Server targets: error (default), decimal_38_max_scale or text, for numerics "
        "wider than decimal(38) or without a precision",
    )  # fmt: skip
    create.set_defaults(handler=_cmd_create)
    edit = pverbs.add_parser(
        "edit", parents=[_common(json_flag=True)],
        help="change a stopped pipeline's connections, tables, mode or target schema",
    )  # fmt: skip
    edit.add_argument("name")
    edit.add_argument("--source", default=None, metavar="URL|CONN")
    edit.add_argument("--target", default=None, metavar="URL|CONN")
    edit.add_argument("--tables", default=None, metavar="T1,T2", help="the whole new list")
    edit.add_argument("--mode", choices=[m.value for m in Mode], default=None)
    edit.add_argument("--target-schema", default=None, metavar="SCHEMA",
                      help="'' puts tables back in their source schema names")  # fmt: skip
    edit.add_argument("--resync", action="store_true",
                      help="needed once it has copied data: drop its slot and publication, "
                           "empty its target tables and copy everything again")  # fmt: skip
    edit.add_argument("--dry-run", action="store_true", help="show the changes, store nothing")
    edit.set_defaults(handler=_cmd_edit)

    listing = verbs.add_parser("list", parents=[_common(json_flag=True)], help="list pipelines")
    listing.set_defaults(handler=_cmd_list)

    named: tuple[tuple[str, Handler, str], ...] = (
        ("status", _cmd_status, "show a pipeline's unified status"),
        ("check", _cmd_check, "preflight the source and target; changes nothing"),
        ("plan", _cmd_plan, "print the Step 0 DDL; reads only the source catalog"),
        ("validate", _cmd_validate, "compare row counts and checksums, source vs target"),
    )  # fmt: skip
    for verb, handler, helptext in named:
        sp = verbs.add_parser(verb, parents=[_common(json_flag=True)], help=helptext)
        sp.add_argument("name")
        sp.set_defaults(handler=handler)

    start = verbs.add_parser("start", parents=[_common()], help="launch the runner detached")
    start.add_argument("name")
    start.add_argument("--wait", choices=["running", "completed"], default=None)
    start.add_argument("--timeout", type=float, default=None, metavar="SECONDS")
    stop = verbs.add_parser(
        "stop", parents=[_common()], help="stop the runner after its transaction"
    )
    stop.add_argument("name")
    stop.add_argument("--wait", action="store_true")
    stop.add_argument("--timeout", type=float, default=None, metavar="SECONDS")
    restart = verbs.add_parser(
        "restart", parents=[_common()],
        help="stop, then start (kafka_connect: failed connector tasks start again too)",
    )  # fmt: skip
    restart.add_argument("name")
    restart.add_argument("--wait", choices=["running", "completed"], default=None)
    restart.add_argument("--timeout", type=float, default=None, metavar="SECONDS")
    restart.set_defaults(handler=_cmd_restart)
    resync = verbs.add_parser("resync", parents=[_common()], help="full load again")
    resync.add_argument("name")
    resync.add_argument("--table", default=None, metavar="T")
    run = verbs.add_parser("run", parents=[_common()], help="the runner, in the foreground")
    run.add_argument("name")
    run.add_argument("--secrets-stdin", action="store_true", help=argparse.SUPPRESS)
    start.set_defaults(handler=_cmd_start)
    stop.set_defaults(handler=_cmd_stop)
    resync.set_defaults(handler=_cmd_resync)
    run.set_defaults(handler=_cmd_run)

    drop = verbs.add_parser("drop", parents=[_common()], help="stop and forget a pipeline")
    drop.add_argument("name")
    drop.set_defaults(handler=_cmd_drop)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cdc-tui` script; returns the process exit code."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    ctx: AppContext | None = None
    logfile: Path | str = "the log file"
    try:
        ctx = build_context(getattr(args, "config", None))
        logfile = configure_logging(ctx.settings.logging.level, ctx.settings.logging.file)
        for warning in ctx.loaded.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        log.info("cdc-tui %s: %s", __version__, args.verb or "console")
        return handler(ctx, args)
    except CdcTuiError as exc:
        log.info("%s: %s", exc.title, exc.message)
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the last line of defence: logged with its traceback, one line out
        log.exception("unexpected error")
        print(
            f"error: cdc-tui failed unexpectedly ({type(exc).__name__}); the traceback is in "
            f"{logfile}.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    finally:
        if ctx is not None:
            ctx.close()


if __name__ == "__main__":
    sys.exit(main())
