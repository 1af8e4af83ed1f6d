"""`tunesmith data …`: check, prepare and export datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._options import parse_columns

app = typer.Typer(help="Check, prepare and export training data.", no_args_is_help=True)

FORMAT_HELP = "input format (default: detected per file): input-output, gemini, openai, alpaca, sharegpt, prompt-completion, tunesmith, csv"
COLUMNS_HELP = "CSV/TSV column mapping, e.g. input=text,output=category[,label=…,timestamp=…,system=…]"


@app.command("check")
def check_command(
    paths: list[Path] = typer.Argument(..., help="files, or a folder (a prepared folder is checked against its seal)"),
    target: str = typer.Option("local/smollm2-135m-instruct", help="tuning target: limits and tokenizer"),
    label: Optional[str] = typer.Option(None, help="where the class label comes from (a field, or a 'Key:' line of the output)"),
    timestamp: Optional[str] = typer.Option(None, help="the field holding each example's date"),
    max_age: Optional[float] = typer.Option(None, help="flag examples older than this many days"),
    template: Optional[str] = typer.Option(None, help="expected output format: json, json:k1,k2, keys:K1,K2, or a literal with {} slots"),
    format: Optional[str] = typer.Option(None, "--format", help=FORMAT_HELP),
    columns: Optional[str] = typer.Option(None, help=COLUMNS_HELP),
    json_out: Optional[Path] = typer.Option(None, "--json", help="write the JSON report here"),
    html_out: Optional[Path] = typer.Option(None, "--html", help="write the HTML report here"),
) -> None:
    """Check data for the pitfalls that waste a tuning run. Exit 0: no errors; 1: error findings (unreadable lines included); 2: bad usage or a file that cannot be read."""
    from rich.console import Console

    from ..data.check import check
    from ..data.report import render_terminal

    console = Console(stderr=True)
    with console.status("checking…"):
        report = check(paths, format=format, columns=parse_columns(columns), target=target, label_field=label,
                       timestamp_field=timestamp, max_age_days=max_age, template=template)
    render_terminal(report)
    if json_out:
        report.write_json(json_out)
        print(f"JSON report: {json_out}")
    if html_out:
        report.write_html(html_out)
        print(f"HTML report: {html_out}")
    raise typer.Exit(report.exit_code)


@app.command("prepare")
def prepare_command(
    paths: list[Path] = typer.Argument(..., help="input files"),
    out: Path = typer.Option(..., help="folder for train/validation/test, quarantine and manifest"),
    validation: float = typer.Option(0.15, help="validation share (the guide: 10-20%)"),
    test: float = typer.Option(0.10, help="test share (sealed)"),
    seed: int = typer.Option(0, help="same input and seed give byte-identical output"),
    dedupe: bool = typer.Option(False, help="keep one copy of exact duplicates"),
    drop_conflicts: bool = typer.Option(False, help="quarantine examples whose input has conflicting outputs"),
    enforce_template: bool = typer.Option(False, help="quarantine outputs off the template (--template, else the dominant one)"),
    label_drift: str = typer.Option("map", help="with --enforce-template, an output off the label shape that names a class: map (rewrite it as the label) or quarantine"),
    template: Optional[str] = typer.Option(None, help="expected output format (see `data check --help`)"),
    oversample: bool = typer.Option(False, help="repeat minority classes in train up to the median class size"),
    max_age: Optional[float] = typer.Option(None, help="quarantine examples older than this many days"),
    redact_pii: bool = typer.Option(False, help="replace emails, phone and card numbers with placeholders"),
    label: Optional[str] = typer.Option(None, help="where the class label comes from"),
    timestamp: Optional[str] = typer.Option(None, help="the field holding each example's date"),
    format: Optional[str] = typer.Option(None, "--format", help=FORMAT_HELP),
    columns: Optional[str] = typer.Option(None, help=COLUMNS_HELP),
    force: bool = typer.Option(False, help="replace an existing --out folder"),
) -> None:
    """Clean, split (grouped, stratified, seeded) and seal a dataset. Nothing is lost: removed examples go to quarantine.jsonl."""
    from ..data.prepare import PrepareOptions, prepare

    options = PrepareOptions(
        validation=validation, test=test, seed=seed, dedupe=dedupe, drop_conflicts=drop_conflicts,
        enforce_template=enforce_template, label_drift=label_drift, template=template, oversample=oversample, max_age_days=max_age,
        redact_pii=redact_pii, format=format, columns=parse_columns(columns), label_field=label,
        timestamp_field=timestamp,
    )
    result = prepare(paths, out, options, force=force)
    counts = result.counts
    print(f"prepared {result.out_dir} (dataset version {result.manifest['dataset_version']}):")
    print(f"  {counts['input_records']} records in -> train {counts['train']}, validation {counts['validation']}, "
          f"test {counts['test']} (sealed), quarantine {counts['quarantine']}"
          + (f"; {counts['oversampled_copies']} oversampled copies in train" if counts["oversampled_copies"] else ""))
    for fix in result.manifest["fixes"]:
        print(f"  {fix['fix']}: {fix['count']} example(s)")


@app.command("export")
def export_command(
    prepared: Path = typer.Argument(..., help="a folder made by `tunesmith data prepare`"),
    to: str = typer.Option(..., help="gemini, openai, input-output, alpaca, sharegpt, prompt-completion, tunesmith, csv"),
    out: Path = typer.Option(..., help="folder to write train and validation into"),
    target: Optional[str] = typer.Option(None, help="check against this target's limits (default for gemini: vertex/gemini-2.5-flash)"),
) -> None:
    """Write the train and validation splits in a tuning service's format (the test split stays sealed)."""
    from ..data.export import export

    summary = export(prepared, to, out, target)
    for split, info in summary["splits"].items():
        print(f"{split}: {info['examples']} examples -> {info['file']}")


@app.command("inspect")
def inspect_command(
    prepared: Path = typer.Argument(..., help="a prepared folder (or any data file)"),
    model: str = typer.Option("smollm2-135m-instruct", help="the base model whose chat template and tokenizer apply"),
    n: int = typer.Option(3, "-n", min=1, help="examples to show"),
    split: str = typer.Option("train", help="which split of a prepared folder"),
    max_seq_length: int = typer.Option(1024, help="the training max_seq_length: tokens past it are cut"),
    plain: bool = typer.Option(False, help="plain text: trained tokens in ⟦ ⟧ (default when not a terminal)"),
) -> None:
    """Show examples token by token as training sees them: which tokens are trained, which masked."""
    import sys

    from rich.console import Console

    from ..data.dataset import load_dataset
    from ..models.loading import load_tokenizer
    from ..train.inspect import render_inspection

    dataset = load_dataset([prepared])
    examples = dataset.split(split) if dataset.prepared_dir else dataset.examples
    if not examples:
        from ..errors import BadInputError

        raise BadInputError(f"{prepared} has no {split} examples")
    rendered = render_inspection(examples, load_tokenizer(model), max_seq_length, n=n,
                                 plain=plain or not sys.stdout.isatty())
    if isinstance(rendered, str):
        print(rendered)
    else:
        Console().print(rendered)


@app.command("targets")
def targets_command() -> None:
    """List the tuning targets (limits and prices are data files)."""
    from ..targets import load_target, target_names

    for name in target_names():
        t = load_target(name)
        print(f"{name:32} max {t.max_tokens_per_example:>7,} tokens/example, format {t.format}")


@app.command("from-log")
def from_log_command(
    out: Path = typer.Option(..., help="the dataset file to write"),
    model: Optional[str] = typer.Option(None, help="only requests for this model (the name asked for, or its registry id)"),
    since: Optional[str] = typer.Option(None, help="only requests since a date (2026-11-30) or an age (12h, 7d)"),
    to: str = typer.Option("tunesmith", "--format", help="tunesmith, gemini, openai, input-output, alpaca, sharegpt, prompt-completion, csv"),
) -> None:
    """Turn the server's logged traffic into a dataset file, so production data can feed the next round of tuning."""
    from ..serve.log import dataset_from_log, parse_since

    summary = dataset_from_log(out, format=to, model=model, since=parse_since(since) if since else None)
    skipped = "".join(f", {count} {reason}" for reason, count in sorted(summary.skipped.items()))
    print(f"{summary.requests} logged requests -> {summary.written} examples in {summary.path}{skipped}")
