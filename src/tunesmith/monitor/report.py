"""The monitor's self-contained HTML report: the answer, the windows over time (inline SVG,
no scripts, nothing fetched), input drift, coverage gaps, output drift, quality."""

from __future__ import annotations

from html import escape


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _num(x, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}g}"


def svg_lines(series: dict[str, list[float | None]], labels: list[str], height: int = 160, width: int = 640,
              ceiling: float = 1.0) -> str:
    """A small line chart of shares in [0, ceiling] per window (gaps where a value is None)."""
    colours = ["#2563eb", "#dc2626", "#16a34a", "#9333ea"]
    n = max(1, len(labels) - 1)
    x = lambda i: 40 + (width - 60) * i / n  # noqa: E731
    y = lambda v: 10 + (height - 40) * (1 - min(v, ceiling) / ceiling)  # noqa: E731
    parts = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">',
             f'<line x1="40" y1="{y(0)}" x2="{width - 20}" y2="{y(0)}" stroke="#999"/>',
             f'<text x="4" y="{y(ceiling) + 4}" font-size="10">{ceiling:g}</text>',
             f'<text x="4" y="{y(0) + 4}" font-size="10">0</text>']
    for i, label in enumerate(labels):
        parts.append(f'<text x="{x(i)}" y="{height - 8}" font-size="9" text-anchor="middle">{escape(label)}</text>')
    for k, (name, values) in enumerate(series.items()):
        colour = colours[k % len(colours)]
        points = [f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values) if v is not None]
        if points:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(points)}"/>')
            parts += [f'<circle cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="3" fill="{colour}"/>' for p in points]
        parts.append(f'<text x="{50 + 150 * k}" y="12" font-size="11" fill="{colour}">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def window_series(summary: dict) -> tuple[list[str], dict[str, list[float | None]]]:
    labels, uncovered, auc_excess, psi, accuracy = [], [], [], [], []
    for w in summary["windows"]:
        labels.append(w["end"][5:10])
        uncovered.append(w.get("uncovered"))
        auc_excess.append(None if "drift" not in w else max(0.0, 2 * (w["drift"]["auc"] - 0.5)))
        psi.append(None if "outputs" not in w else min(1.0, w["outputs"]["psi"]))
        accuracy.append((w.get("quality") or {}).get("value"))
    series = {"uncovered share": uncovered, "drift (2·AUC−1)": auc_excess, "output PSI (capped at 1)": psi}
    if any(v is not None for v in accuracy):
        series["quality on fresh labels"] = accuracy
    return labels, series


def render_report(summary: dict) -> str:
    answer = summary["answer"]
    drift = summary["input_drift"]
    cov = summary["coverage"]
    out = summary["output_drift"]
    labels, series = window_series(summary)
    rows = []
    for w in summary["windows"]:
        d = w.get("drift")
        o = w.get("outputs") or {}
        q = w.get("quality")
        shown_quality = f"{_pct(q['value'])} (n={q['n']})" if q else "–"
        rows.append(f"<tr><td>{escape(w['start'][:16])} – {escape(w['end'][:16])}</td><td>{w['requests']}</td>"
                    f"<td>{_num(d['auc']) if d else '–'}</td><td>{_num(d['p_value']) if d else '–'}</td>"
                    f"<td>{_pct(w.get('uncovered'))}</td><td>{_num(o.get('psi'))}</td>"
                    f"<td>{_pct(o.get('valid_share'))}</td><td>{shown_quality}</td></tr>")
    gaps = "".join(f"<li><b>{g['size']} requests ({_pct(g['share'])})</b>: {escape(', '.join(g['terms']))}<ul>"
                   + "".join(f"<li>{escape(e)}</li>" for e in g["examples"]) + "</ul></li>" for g in cov["gaps"])
    quality = summary.get("quality")
    quality_html = "<p>No fresh labels given (--labels).</p>"
    if quality:
        quality_html = (f"<p>{escape(quality['label'])} on {quality['n']} fresh labels: <b>{_pct(quality['value'])}</b> "
                        f"(95% interval {_pct(quality['interval'][0])}–{_pct(quality['interval'][1])}; "
                        f"95% confidence sequence, valid under daily runs, {_pct(quality['sequence_interval'][0])}–"
                        f"{_pct(quality['sequence_interval'][1])}); at release: {_pct(quality['release_value'])}"
                        f"{' (' + escape(quality['release_eval']) + ')' if quality['release_eval'] else ''}"
                        + (f"; sequential test wealth {quality['wealth']:.3g} (a drop at 20): "
                           f"{'dropped' if quality['dropped'] else 'no drop shown'}" if quality.get('wealth') is not None else "")
                        + ".</p>")
    moved = (out.get("labels") or {}).get("moved") or []
    moved_html = "".join(f"<li>{escape(str(m['value']))}: {_pct(m['reference_share'])} in training, "
                         f"{_pct(m['current_share'])} now</li>" for m in moved)
    examples = "".join(f"<li>{escape(e)}</li>" for e in drift["examples"])
    colour = {"now": "#fee2e2", "plan": "#fef3c7", "none": "#dcfce7"}[answer["action"]]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Monitor: {escape(summary['subject'])}</title>
<style>body{{font:14px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#111}}
table{{border-collapse:collapse}}td,th{{border-bottom:1px solid #ddd;padding:.25rem .6rem;text-align:left}}
.answer{{background:{colour};padding:1rem;border-radius:.4rem}}code{{background:#f3f4f6;padding:0 .2rem}}</style></head>
<body>
<h1>Monitor: {escape(summary['subject'])}</h1>
<p>{summary['current']['requests']} requests from {escape(summary['current']['source'])},
{escape(summary['period']['since'][:16])} – {escape(summary['period']['until'][:16])} UTC, in windows of
{escape(summary['period']['window'])}; reference: {summary['reference']['inputs']} training inputs from
<code>{escape(summary['reference']['path'])}</code>.</p>
<div class="answer" id="answer"><h2>{escape(answer['headline'])}</h2><p>{escape(answer['paragraph'])}</p></div>
<h2>Over time</h2>
{svg_lines(series, labels)}
<table><thead><tr><th>window</th><th>requests</th><th>drift AUC</th><th>p</th><th>uncovered</th>
<th>output PSI</th><th>valid outputs</th><th>quality</th></tr></thead><tbody>{''.join(rows)}</tbody></table>
<h2>Input drift</h2>
<p>Classifier two-sample test: cross-fitted AUC <b>{drift['auc']:.3f}</b>, p = {_num(drift['p_value'])}
({escape(drift['test'])}), {drift['n_reference']} training vs {drift['n_current']} current inputs:
{'drift' if drift['drifted'] else 'no drift'} reported.</p>
<p>Terms of current traffic: {escape(', '.join(drift['current_terms']) or '–')}.<br>
Terms of training the traffic lacks: {escape(', '.join(drift['reference_terms']) or '–')}.</p>
<p>Current inputs least like training:</p><ul>{examples}</ul>
<h2>Coverage gaps</h2>
<p>{_pct(cov['far_share'])} of requests are far from every training example (cosine similarity below
{cov['threshold']}; {_pct(cov['expected_far_share'])} expected). The labelling queue:
<code>{escape(summary['queue_path'])}</code> ({summary['queue_size']} inputs).</p><ol>{gaps}</ol>
<h2>Output drift</h2>
<p>Outputs: {escape(out['kind'])}; PSI {_num(out['psi'])}; valid {_pct(out.get('valid_share'))};
mean length {_num(out['mean_words'])} words (training {_num(out['reference_mean_words'])});
refusals {_pct(out['refusal_share'])} (training {_pct(out['reference_refusal_share'])}).</p><ul>{moved_html}</ul>
<h2>Quality on fresh labels</h2>{quality_html}
</body></html>
"""
