"""Command line: ``python -m pipeline run|plan ...``, or ``clusterlab run|plan|app ...`` (see ``--help``).

Exit codes: 0 success; 2 bad input or config (nothing computed); 1 a stage failed.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from . import codebook, facets, launch, search
from .cache import default_cache_dir
from .config import DEVICES, RUNTIME_KEYS, PipelineConfig, all_keys, load_settings
from .context import Runtime
from .errors import ConfigError, InputError, PipelineError
from .events import Event
from .io import EXCEL_MAX_ROWS, output_format, output_paths, read_table, write_csv, write_outputs
from .llm import ENV_API_KEY
from .operator import Limits
from .runner import plan, stream
from .types import Table

log = logging.getLogger("pipeline")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clusterlab" if Path(sys.argv[0]).name == "clusterlab" else "python -m pipeline",
        description="Cluster the short texts of a table: every row comes back with a cluster id and label.",
        epilog=f"Labels from a language model: --set label.method=llm --set label.llm.base_url=URL "
        f"--set label.llm.model=NAME; the API key is read from ${ENV_API_KEY} (never from a flag).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("input", help="CSV/TSV (encoding and delimiter detected), Excel (.xlsx) or Parquet")
        p.add_argument(
            "--text-column",
            required=True,
            action="append",
            metavar="COLUMN",
            help="the column holding the texts; give it several times (--text-column title "
            "--text-column body) to join those columns into one text per row, a newline between them",
        )
        p.add_argument(
            "--config",
            help="a TOML file with [preprocess] [embed] [reduce] [cluster] [label] [label.llm] sections",
        )
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override one setting (repeatable). Keys: " + ", ".join([*all_keys(), *RUNTIME_KEYS]),
        )
        p.add_argument(
            "--cache-dir", help=f"cache folder (default $CLUSTERLAB_CACHE_DIR or {default_cache_dir()})"
        )
        p.add_argument("--chunk-size", type=int, default=1000, help="texts per cached embedding chunk")
        p.add_argument(
            "--max-rows",
            type=int,
            metavar="N",
            help="refuse a table with more than N rows (0 = no limit; default $CLUSTERLAB_MAX_ROWS or "
            "2,000,000); $CLUSTERLAB_MAX_CELLS limits rows x columns",
        )
        p.add_argument(
            "--device",
            choices=DEVICES,
            help="where the model runs (default auto: a GPU when one is present); same as --set "
            "embed.device=..., and wins over it. Never part of a cache key",
        )

    run_p = sub.add_parser(
        "run", help="run the pipeline and write OUT.csv, OUT.clusters.csv, OUT.manifest.json"
    )
    common(run_p)
    run_p.add_argument(
        "--out",
        required=True,
        help="labeled table to write: .xlsx writes Excel, .parquet Parquet, any other name CSV "
        "(the cluster summary follows: OUT.clusters.csv/.xlsx/.parquet)",
    )
    run_p.add_argument(
        "--breakdown",
        metavar="COLUMN",
        help="also write OUT.breakdown.csv: per value of COLUMN and cluster, rows, share_of_value, "
        "share_overall, lift and residual (adjusted standardized residual; above 2: over-represented)",
    )
    run_p.add_argument(
        "--time-column",
        metavar="COLUMN",
        help="also write OUT.trends.csv: rows per period and cluster, 0 included; the period is a day, "
        "week (from Monday) or month as the dates in COLUMN span (a year past 20 years), named by the "
        "ISO date it starts",
    )
    run_p.add_argument(
        "--codebook",
        metavar="FILE.csv",
        help="categories to give the texts: a table with a column name and optional columns description "
        "and examples (separated by |); each text gets the closest category by meaning when their "
        "cosine reaches the threshold, and the table gains the columns category (empty for none) and "
        "category_score",
    )
    run_p.add_argument(
        "--codebook-threshold",
        metavar="X",
        help="the cosine a text needs to get its closest category (same as --set codebook.threshold=X): "
        "0 = automatic (Otsu's cut of the texts' best scores), -1 = every text gets one",
    )
    run_p.add_argument("--events", help="write every progress event as one JSON object per line")
    run_p.add_argument("--plots", action="store_true", help="also write OUT.map.html (optional final step)")
    run_p.add_argument("--quiet", action="store_true", help="no progress bars")
    plan_p = sub.add_parser("plan", help="say which stages would load from cache and which would compute")
    common(plan_p)
    app_p = sub.add_parser(
        "app",
        help="start the web app with the project's settings, from any folder (other options, e.g. "
        "--server.maxUploadSize 200, go to `streamlit run`)",
    )
    launch.add_arguments(app_p)
    return parser


def _settings(args: argparse.Namespace) -> tuple[PipelineConfig, dict]:
    """The config (file, then --set, then --text-column) and the run-time values among them."""
    config, runtime_values = load_settings(args.config, args.set)
    values = {"preprocess.text_column": list(args.text_column)}  # one name, or several joined
    if getattr(args, "codebook_threshold", None) is not None:
        if not args.codebook:
            raise ConfigError(
                "--codebook-threshold was given without --codebook",
                hint="add --codebook FILE.csv (a column name, optional description and examples)",
                stage="codebook",
            )
        values["codebook.threshold"] = args.codebook_threshold
    return config.with_values(values), runtime_values


class TerminalProgress:
    """One tqdm bar per stage on a terminal, plain lines in a log; both fed by the events."""

    def __init__(self, enabled: bool, stream=None):
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty()
        self.bar = None
        self._last_line = (-1.0, 0.0)

    def __call__(self, event: Event) -> None:
        if not self.enabled:
            return
        if event.kind == "warning":
            self._write(f"warning: [{event.stage}] {event.message}")
        elif self.interactive:
            self._bar(event)
        else:
            self._line(event)

    def _bar(self, event: Event) -> None:
        from tqdm import tqdm

        if event.kind == "started":
            self.close()
            self.bar = tqdm(
                total=100,
                desc=f"{event.stage:<10}",
                file=self.stream,
                leave=True,
                dynamic_ncols=True,
                bar_format="{desc} {percentage:3.0f}%|{bar:24}| {unit}",
            )
        if self.bar is None:
            return
        self.bar.n = round(event.fraction * 100)
        self.bar.unit = f"{event.elapsed_s:6.1f}s  {_describe(event)}"[:100]
        if event.kind in ("finished", "failed"):
            self.close()
        else:
            self.bar.refresh()

    def _line(self, event: Event) -> None:
        # without a terminal: a line per stage start/end, and progress at most every 5 s
        fraction, at = self._last_line
        if event.kind == "progress" and event.elapsed_s - at < 5 and event.fraction - fraction < 0.25:
            return
        self._last_line = (event.fraction, event.elapsed_s if event.kind == "progress" else 0.0)
        self._write(f"{event.stage:<10} {event.fraction:4.0%} {event.elapsed_s:6.1f}s  {_describe(event)}")

    def _write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.refresh()
            self.bar.close()
            self.bar = None


def _describe(event: Event) -> str:
    if event.kind == "failed":
        return "failed"
    return event.message


class _QuietFileHandler(logging.FileHandler):
    def handleError(self, record: logging.LogRecord) -> None:
        # a full or read-only disk loses a log line; it never prints a traceback on the screen
        pass


def _setup_logging(cache_dir: Path) -> logging.FileHandler | None:
    """Log to ``clusterlab.log`` in the cache folder; None when that cannot be written (the
    cache then says why, or is read-only)."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        handler = _QuietFileHandler(cache_dir / "clusterlab.log", encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return handler


def _map_path(out: str | Path) -> Path:
    return Path(str(output_paths(out)["manifest"]).replace(".manifest.json", ".map.html"))


def _facet_path(out: str | Path, name: str) -> Path:
    """OUT.breakdown.csv or OUT.trends.csv beside the other outputs (CSV whatever --out's format:
    scripts read them by these names)."""
    manifest = output_paths(out)["manifest"]
    return manifest.with_name(manifest.name.removesuffix(".manifest.json") + f".{name}.csv")


def _facet_paths(args: argparse.Namespace) -> dict[str, Path]:
    """The breakdown and trends files this run writes (none unless asked for)."""
    asked = {"breakdown": getattr(args, "breakdown", None), "trends": getattr(args, "time_column", None)}
    return {name: _facet_path(args.out, name) for name, column in asked.items() if column is not None}


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _check_outputs(args: argparse.Namespace) -> None:
    """A ConfigError if any file the run would write is the input (it would be overwritten)."""
    sources = [(Path(args.input), "the input file")]
    if getattr(args, "codebook", None):
        sources.append((Path(args.codebook), "the codebook"))
    for target in [*output_paths(args.out).values(), _map_path(args.out), *_facet_paths(args).values()]:
        for source, what in sources:
            if _same_file(target, source):
                raise ConfigError(
                    f"--out {args.out} would overwrite {what} {source} (as {target})",
                    hint="choose an --out path that is not the input, e.g. labeled.csv",
                    stage="output",
                )


def _limits(args: argparse.Namespace) -> Limits:
    """The size limits from the environment, with --max-rows (when given) for the rows."""
    limits = Limits.from_env()
    if args.max_rows is None:
        return limits
    if args.max_rows < 0:
        raise ConfigError(
            f"--max-rows {args.max_rows} is not allowed; expected a whole number >= 0",
            hint="give the most rows a table may have, or 0 for no limit",
        )
    return Limits(args.max_rows, limits.max_cells)


def _check_facet_columns(args: argparse.Namespace, table: Table) -> None:
    """An InputError, before anything is computed, for a --breakdown or --time-column that is not
    a column of the input, or a --time-column without a single date."""
    if args.breakdown is not None:
        facets.column_position(table.frame, args.breakdown, stage="breakdown", flag="--breakdown")
    if args.time_column is not None:
        facets.check_dates(table.frame, args.time_column, stage="trends", flag="--time-column")


@contextlib.contextmanager
def _writing(out: str | Path) -> Iterator[None]:
    """An OSError while writing the outputs as a PipelineError that says what to do."""
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise PipelineError(
                f"the disk holding {out} is full; no file was left half-written",
                hint="free space, or choose --out on another disk; the results are cached, so the "
                "same command again only writes the files",
                stage="output",
            ) from None
        raise PipelineError(
            f"could not write {out} ({exc.strerror or type(exc).__name__})",
            hint="choose a folder you can write to with --out",
            stage="output",
        ) from None


def _write_facets(args: argparse.Namespace, result) -> list[Path]:
    """OUT.breakdown.csv and OUT.trends.csv, as asked (spreadsheet-safe, each whole or not at all);
    their notes on stderr."""
    paths = _facet_paths(args)
    if not paths:
        return []
    table = result.table()
    renamed = dict(result.output_renames)  # an input column named like an output column
    if "breakdown" in paths:
        found = facets.breakdown(table, renamed.get(args.breakdown, args.breakdown))
        write_csv(found.frame, paths["breakdown"])
        for note in found.notes:
            print(f"note: [breakdown] {note}", file=sys.stderr)
    if "trends" in paths:
        found = facets.trends(table, renamed.get(args.time_column, args.time_column))
        write_csv(found.frame, paths["trends"])
        for note in found.notes:
            print(f"note: [trends] {note}", file=sys.stderr)
        if found.rows:
            monday = " (weeks start on Monday)" if found.period == "week" else ""
            print(
                f"note: [trends] rows per {found.period}{monday}: dates from {found.first} to {found.last}",
                file=sys.stderr,
            )
    return list(paths.values())


def _cmd_run(args: argparse.Namespace, config: PipelineConfig, cache_dir: Path, runtime: Runtime) -> int:
    _check_outputs(args)
    table = read_table(args.input, limits=_limits(args))
    _check_facet_columns(args, table)
    if output_format(args.out) == "xlsx" and len(table.frame) > EXCEL_MAX_ROWS:
        raise ConfigError(
            f"--out {args.out} asks for Excel, which holds at most {EXCEL_MAX_ROWS:,} rows; "
            f"the table has {len(table.frame):,}",
            hint="write CSV or Parquet instead (--out labeled.csv or labeled.parquet)",
            stage="output",
        )
    for note in table.notes:  # what the reader had to do: renamed headers, mixed encodings, ...
        print(f"note: [input] {note.removeprefix('input: ')}", file=sys.stderr)
    book = _read_codebook(args)
    progress = TerminalProgress(enabled=not args.quiet)
    events_file = None
    if args.events:
        try:
            Path(args.events).parent.mkdir(parents=True, exist_ok=True)
            events_file = open(args.events, "w", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot write the events file {args.events} ({exc.strerror or type(exc).__name__})",
                hint="choose a folder you can write to with --events",
            ) from None
    try:
        events = stream(table, config, cache_dir=cache_dir, runtime=runtime)
        for event in events:
            progress(event)
            if events_file is not None:
                events_file.write(event.to_json() + "\n")
                events_file.flush()
        result = events.result
    finally:
        progress.close()
        if events_file is not None:
            events_file.close()
    written, assignment = result, None
    if book is not None:
        assignment = codebook.assign(
            result, book, search.run_embedder(result, runtime), config.codebook.threshold
        )
        written = _WithCategories(result, assignment)
    with _writing(args.out):
        paths = write_outputs(written, args.out)
        extra = _write_facets(args, result)
    _report_fallbacks(result)
    renamed = [*result.output_notes, *getattr(written, "notes", [])]  # e.g. an input column named cluster_id
    for note in renamed:
        print(f"warning: [output] {note.removeprefix('output: ')}", file=sys.stderr)
    if assignment is not None:
        _report_codebook(result, assignment)
    if args.plots:
        _write_plots(result, paths["table"])
    print(
        f"{result.corpus.n_rows:,} rows -> {result.n_clusters} clusters, "
        f"{result.noise_share:.0%} unclustered; wrote {paths['table']}, {paths['clusters'].name}, "
        f"{paths['manifest'].name}" + "".join(f", {path.name}" for path in extra)
    )
    return 0


def _read_codebook(args: argparse.Namespace) -> codebook.Codebook | None:
    """The --codebook file, checked before anything is computed; its notes and warnings on stderr."""
    if not getattr(args, "codebook", None):
        return None
    book = codebook.read_codebook(args.codebook)
    for note in book.notes:
        print(f"note: [codebook] {note}", file=sys.stderr)
    for warning in book.warnings:
        print(f"warning: [codebook] {warning}", file=sys.stderr)
    return book


class _WithCategories:
    """A result as ``write_outputs`` reads it, with the codebook's ``category`` and
    ``category_score`` at the end of the table and its record in the manifest."""

    def __init__(self, result, assignment: codebook.Assignment):
        self.result = result
        self.assignment = assignment
        self.frame, self.notes = codebook.add_columns(result.table(), assignment.columns())

    def table(self):
        return self.frame

    def clusters(self):
        return self.result.clusters()

    def manifest(self) -> dict:
        manifest = self.result.manifest()
        manifest["codebook"] = self.assignment.manifest()
        manifest["warnings"] = [*manifest.get("warnings", []), *self.notes]
        return manifest


MISSED_SHOWN = 3  # clusters named in the line about rows with no category


def _report_codebook(result, assignment: codebook.Assignment) -> None:
    """How many texts got a category, and where the others are (what the codebook misses)."""
    print(f"note: [codebook] {assignment.summary()}", file=sys.stderr)
    missed = codebook.uncovered_clusters(assignment, result.clustering.labels, result.labels.label_of())
    if missed.empty:
        return
    pairs = zip(missed["cluster_label"], missed["rows"], strict=True)
    parts = [f"{label!r} ({int(rows):,} rows)" for label, rows in pairs]
    rest = len(parts) - MISSED_SHOWN
    more = f" and {rest:,} more cluster{'s' if rest > 1 else ''}" if rest > 0 else ""
    print(
        f"note: [codebook] the rows with {codebook.NO_CATEGORY} fall in the clusters "
        f"{', '.join(parts[:MISSED_SHOWN])}{more}",
        file=sys.stderr,
    )


MAX_FALLBACK_LINES = 20


def _report_fallbacks(result) -> None:
    """One stderr line per cluster whose model call failed (even with --quiet): it is in the output."""
    failed = [f for f in result.label_fallbacks if f.kind == "failed"]
    capped = [f for f in result.label_fallbacks if f.kind == "capped"]
    names = result.labels.label_of()
    for fallback in failed[:MAX_FALLBACK_LINES]:
        print(
            f"warning: [label] cluster {fallback.cluster} kept its keyword label "
            f"{names.get(fallback.cluster, '')!r}: {fallback.reason}",
            file=sys.stderr,
        )
    if len(failed) > MAX_FALLBACK_LINES:
        print(
            f"warning: [label] ... and {len(failed) - MAX_FALLBACK_LINES} more (see the manifest)",
            file=sys.stderr,
        )
    if failed:
        print("hint: run the same command again to ask only for the missing labels", file=sys.stderr)
    if capped:
        print(
            f"note: [label] {len(capped)} smaller clusters kept keyword labels "
            f"(label.llm.max_clusters = {result.config.label.llm.max_clusters})",
            file=sys.stderr,
        )


def _write_plots(result, table_path: Path) -> None:
    try:
        from .plots import map_figure, sizes_figure

        target = _map_path(table_path)
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(map_figure(result).to_html(include_plotlyjs=True, full_html=True))
            fh.write(sizes_figure(result).to_html(include_plotlyjs=False, full_html=False))
        print(f"wrote {target}")
    except Exception as exc:  # a chart never costs the results
        log.exception("plots failed")
        print(
            f"warning: [plots] the charts could not be written ({type(exc).__name__}); results are saved",
            file=sys.stderr,
        )


def _cmd_plan(args: argparse.Namespace, config: PipelineConfig, cache_dir: Path, runtime: Runtime) -> int:
    table = read_table(args.input, limits=_limits(args))
    steps = plan(table, config, cache_dir=cache_dir, runtime=runtime)
    for step in steps:
        print(f"{step.stage:<11}{step.action:<8}{step.detail}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "app":  # the web app (pipeline/launch.py); extra options are streamlit's
        return launch.main(args, extra)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    cache_dir = Path(args.cache_dir).expanduser() if args.cache_dir else default_cache_dir()
    log_path = None
    handler = _setup_logging(cache_dir)
    if handler is not None:
        log_path = Path(handler.baseFilename)
    try:
        config, runtime_values = _settings(args)
        if args.device:  # the flag wins over embed.device from a file or --set
            runtime_values["embed.device"] = args.device
        runtime = Runtime(chunk_size=max(1, args.chunk_size)).with_values(runtime_values)
        command = _cmd_run if args.command == "run" else _cmd_plan
        return command(args, config, cache_dir, runtime)
    except (InputError, ConfigError) as exc:
        _print_error(exc)
        return 2
    except PipelineError as exc:
        _print_error(exc)
        if log_path is not None:
            print(f"details: {log_path}", file=sys.stderr)
        return 1
    except Exception as exc:  # never a bare traceback: the log has it, the user gets a line
        log.exception("unexpected error")
        print(f"error: [pipeline] unexpected {type(exc).__name__}: {str(exc)[:300]}", file=sys.stderr)
        if log_path is not None:
            print(f"details: {log_path}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "\ninterrupted: finished stages and embedding chunks are cached; run again to resume",
            file=sys.stderr,
        )
        return 130
    finally:
        if handler is not None:  # main() called in-process (tests) leaves no open log file
            logging.getLogger().removeHandler(handler)
            handler.close()


def _print_error(exc: PipelineError) -> None:
    print(f"error: [{exc.stage}] {exc.message}", file=sys.stderr)
    if exc.hint:
        print(f"hint: {exc.hint}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
