"""``overseer``: the command line, its options and help; ``main`` is the console script."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from overseer_cli import commands, core, paging, syncing
from overseer_cli.client import Api, ApiError

Command = Callable[[Api, argparse.Namespace], int]

DESCRIPTION = """\
A client of Overseer's REST API: list jobs and executions, run them, follow their
output, signal them, sync repositories, replay webhook deliveries.

Configuration (an option wins over its environment variable):
  --url / OVERSEER_URL        the API's base URL (default http://localhost:8000), such as
                              a port-forward: kubectl -n overseer-system port-forward
                              svc/overseer-api 8000:80
  --token / OVERSEER_TOKEN    a bearer token (never printed)
  --namespace / -n            a namespace the API serves under /namespaces/{ns}/...;
                              without it, the API's default namespace
"""

EXIT_CODES = """\
exit codes:
  0    success
  1    the API refused (its message is printed as "overseer: <detail> (HTTP <status>)"),
       the API is unreachable, a followed/waited job ended without an exit code, or
       sync --wait saw a sync fail, or none end within --timeout
  2    usage error
  N    run/repeat with --follow or --wait: the job's own exit code
"""

EXAMPLE = """\
example:
  export OVERSEER_URL=http://localhost:8000 OVERSEER_TOKEN=...
  overseer jobs
  overseer run "A job" -p positional_var="a b" -p some_opt='$(id)' --follow
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="overseer",
        description=DESCRIPTION,
        epilog=f"{EXIT_CODES}\n{EXAMPLE}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", default=os.environ.get("OVERSEER_URL", "http://localhost:8000"))
    parser.add_argument("--token", default=os.environ.get("OVERSEER_TOKEN"), help="bearer token")
    parser.add_argument("-n", "--namespace", help="serve /namespaces/NAMESPACE/... paths")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_reads(sub)
    _add_lists(sub)
    _add_runs(sub)
    _add_changes(sub)
    _add_admin(sub)
    return parser


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    function: Command,
    summary: str,
    example: str,
) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=f"example:\n  {example}\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(function=function)
    return parser


def _add_reads(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    jobs = _command(
        sub,
        "jobs",
        commands.jobs,
        "List the jobs: name, active, schedule, next run, last execution.",
        "overseer jobs -o json",
    )
    _add_output(jobs, "table")
    show = _command(
        sub,
        "show",
        commands.show,
        "Show a job's definition, parameters, source and latest executions (YAML, or JSON).",
        "overseer show 'Sauvegarde é' -o json",
    )
    show.add_argument("job", metavar="JOB", help="the job's display name, as written in git")
    _add_output(show, "yaml", table=False)
    status = _command(
        sub,
        "status",
        commands.status,
        "Show an execution: phase, times, exit code, signal.",
        "overseer status 'A job' 1489895624.840211",
    )
    _add_execution(status)
    _add_output(status, "table")
    logs = _command(
        sub,
        "logs",
        commands.logs,
        "Write an execution's stdout (or stderr) as served, bytes exact.",
        "overseer logs 'A job' 1489895624.840211 --stderr --follow > err.bin",
    )
    _add_execution(logs)
    logs.add_argument("--stderr", action="store_true", help="the stderr stream, not stdout")
    logs.add_argument("-f", "--follow", action="store_true", help="until the execution ends")


def _add_runs(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = _command(
        sub,
        "run",
        commands.run,
        "Execute a job with parameters; print the new execution's id (values are passed "
        "exactly: no shell sees them).",
        "overseer run 'A job' -p positional_var='a b' -p some_opt='$(id)' --follow",
    )
    run.add_argument("job", metavar="JOB", help="the job's display name")
    run.add_argument(
        "-p", "--param", action="append", metavar="NAME=VALUE", help="a parameter (repeatable)"
    )
    _add_waits(run)
    repeat = _command(
        sub,
        "repeat",
        commands.repeat,
        "Run an execution again: the same parameters and frozen definition.",
        "overseer repeat 'A job' 1489895624.840211 --latest --wait",
    )
    _add_execution(repeat)
    repeat.add_argument("--latest", action="store_true", help="the job's current definition")
    _add_waits(repeat)


def _add_changes(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    signal = _command(
        sub,
        "signal",
        commands.signal,
        "Send a signal (a name, with or without SIG, or a number) to a running execution.",
        "overseer signal 'A job' 1489895624.840211 HUP",
    )
    _add_execution(signal)
    signal.add_argument("signal", metavar="SIGNAL", nargs="?", default="TERM")
    for name, function, summary in (
        ("deactivate", commands.deactivate, "Deactivate a job: no execution, no schedule."),
        ("activate", commands.activate, "Activate a job again."),
    ):
        parser = _command(sub, name, function, summary, f"overseer {name} 'A job'")
        parser.add_argument("job", metavar="JOB", help="the job's display name")


def _add_lists(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    executions = _command(
        sub,
        "executions",
        commands.executions,
        "List executions of every job, newest first: job, id, phase, exit, trigger, start, "
        "duration (every page, or the first --limit).",
        "overseer executions --job 'A job' --phase Failed --limit 20",
    )
    executions.add_argument("--job", metavar="JOB", help="only this job's (its display name)")
    executions.add_argument(
        "--phase",
        metavar="PHASE",
        help="only in this phase: Pending, Running, Complete, Failed, TimedOut, Killed",
    )
    executions.add_argument(
        "--limit", type=int, metavar="N", help="at most N, the newest (default: all)"
    )
    _add_output(executions, "table")
    repositories = _command(
        sub,
        "repositories",
        commands.repositories,
        "List the namespace's repositories: URL, ref, synced commit, jobs, Ready and its "
        "reason, when the status last changed.",
        "overseer repositories -o yaml",
    )
    _add_output(repositories, "table")


def _add_admin(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sync = _command(
        sub,
        "sync",
        syncing.sync,
        "Sync a repository now (all of the namespace's without REPOSITORY). --wait waits "
        "until each shows a sync after the request (or --revision synced) and prints the "
        "commit, or the error with exit 1 (docs/cli.rst).",
        "overseer sync jobs --wait --revision $(git rev-parse HEAD) --timeout 60",
    )
    sync.add_argument("repository", metavar="REPOSITORY", nargs="?", help="its name")
    sync.add_argument(
        "--wait", action="store_true", help="until the sync ends (or --revision is synced)"
    )
    sync.add_argument(
        "--revision", metavar="COMMIT", help="with --wait: the commit (or its prefix) to wait for"
    )
    sync.add_argument(
        "--timeout", type=float, default=120.0, metavar="SECONDS", help="with --wait (120)"
    )
    _add_deliveries(sub)


def _add_deliveries(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    deliveries = sub.add_parser(
        "deliveries",
        help="An execution's webhook deliveries: list them, replay them.",
        description="An execution's webhook deliveries: 'list' them, 'replay' them.",
        epilog="example:\n  overseer deliveries replay 'A job' 1489895624.840211\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = deliveries.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = _command(
        actions,
        "list",
        commands.deliveries,
        "List an execution's webhook deliveries: id, status, attempts, replays, URL, error.",
        "overseer deliveries list 'A job' 1489895624.840211",
    )
    _add_execution(listing)
    _add_output(listing, "table")
    replay = _command(
        actions,
        "replay",
        commands.replay,
        "Send an execution's webhook deliveries again: DELIVERY, or every one whose status "
        "is a --status (GivenUp when none is given); prints each as the API now records it.",
        "overseer deliveries replay 'A job' 1489895624.840211 --status GivenUp --status Failed",
    )
    _add_execution(replay)
    replay.add_argument("delivery", metavar="DELIVERY", nargs="?", help="a delivery's id")
    replay.add_argument(
        "--status",
        action="append",
        choices=["GivenUp", "Failed", "Gone", "Delivered", "Pending"],
        help="replay the deliveries in this status (repeatable; default GivenUp)",
    )


def _add_output(parser: argparse.ArgumentParser, default: str, table: bool = True) -> None:
    choices = ["table", "json", "yaml"] if table else ["yaml", "json"]
    parser.add_argument("-o", "--output", choices=choices, default=default)


def _add_execution(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", metavar="JOB", help="the job's display name")
    parser.add_argument("id", metavar="ID", help="the execution id, such as 1489895624.840211")


def _add_waits(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait", action="store_true", help="wait for the end; exit with the job's exit code"
    )
    parser.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="stream stdout (stderr to stderr) until the end; exit with the job's exit code",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    api = Api(args.url, args.token)
    try:
        code: int = args.function(api, args)
    except core.UsageError as error:
        parser.error(str(error))
    except paging.PagingError as error:
        sys.stderr.write(f"overseer: {error}\n")
        return core.FAILED
    except ApiError as error:
        sys.stderr.write(f"overseer: {error.message}\n")
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    finally:
        api.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
