//! `spend`: the ledger's report (calls, rows and cost, failed but charged, estimate
//! against actual, reused answers, budgets, the balance) as text or JSON.

use std::fmt::Write as _;
use std::process::ExitCode;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::{Context, UsageError, today};
use crate::app;
use crate::money::Usd;
use crate::store::reconcile::Reconciled;
use crate::store::reports::{self, SpendFigures, SpendGroup, SpendReport};

#[derive(Debug, clap::Args)]
pub struct SpendArgs {
    /// From this UTC day (yyyy-mm-dd, from 00:00 UTC); default the first of the current month.
    #[arg(long)]
    since: Option<NaiveDate>,
    /// Group by UTC day, job, endpoint, or run (with its job, kind and status).
    #[arg(long, default_value = "day", value_parser = ["day", "job", "endpoint", "run"])]
    by: String,
    /// Only the sandbox calls (not real spend), which are otherwise left out.
    #[arg(long)]
    sandbox: bool,
    /// Print the report as JSON (amounts as exact decimal strings).
    #[arg(long)]
    json: bool,
    /// The ledger reconciled with the account's own books, per closed UTC day: what
    /// the account says it spent on Backlinks, what the ledger booked, the difference,
    /// the abandoned estimates settled and what explains the rest.
    #[arg(long, conflicts_with_all = ["by", "sandbox"])]
    reconcile: bool,
}

pub(super) async fn spend(cx: &Context, args: SpendArgs) -> anyhow::Result<ExitCode> {
    let by: reports::SpendBy = args.by.parse().map_err(UsageError)?;
    let store = app::connect(&cx.config()?).await?;
    let since = args.since.unwrap_or_else(|| {
        let t = today();
        NaiveDate::from_ymd_opt(chrono::Datelike::year(&t), chrono::Datelike::month(&t), 1)
            .expect("first of month")
    });
    if args.reconcile {
        let days = store.reconciliations(since, None).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&days)?);
        } else {
            print!("{}", render_reconciled(&days));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let report = reports::spend_report(&store, since, by, args.sandbox).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_spend(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// Money as the text report prints it: `$0.02003`, `-$0.01`.
fn money(usd: Usd) -> String {
    if usd.0.is_sign_negative() && !usd.0.round_dp(5).is_zero() {
        format!("-{}", Usd(-usd.0))
    } else {
        Usd(usd.0.abs()).to_string()
    }
}

/// How far the bill was from the estimate, as a share of the estimate.
fn deviation(estimated: Usd, actual: Usd) -> String {
    if estimated.is_zero() {
        return "n/a".into();
    }
    let pct = ((actual.0 - estimated.0) * Decimal::ONE_HUNDRED / estimated.0).round_dp(1);
    if pct.is_sign_positive() && !pct.is_zero() {
        format!("+{pct:.1}%")
    } else if pct.is_zero() {
        "0.0%".into()
    } else {
        format!("{pct:.1}%")
    }
}

fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Text reports fit this many columns.
const COLUMNS: usize = 100;
/// Blanks between two table columns.
const GAP: usize = 2;

/// Money in a table column: decimal points aligned (`$0.0209 ` under `$0.02003`).
fn cell(usd: Usd) -> String {
    let s = money(usd);
    let decimals = s.rsplit_once('.').map_or(0, |(_, d)| d.len());
    format!("{s}{}", " ".repeat(5usize.saturating_sub(decimals)))
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// `s` cut to `w` characters, the cut marked with `…`.
fn fit(s: &str, w: usize) -> String {
    if width(s) <= w {
        s.to_string()
    } else {
        let cut: String = s.chars().take(w.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// A text table: a key column, cut so that no line is wider than [`COLUMNS`], then
/// columns as wide as their widest cell; the first `left` columns (the key included)
/// aligned left, the others right. `spans` put a label over a run of columns (index of
/// its first column, how many).
struct Table<'a> {
    header: Vec<&'a str>,
    spans: Vec<(usize, usize, &'a str)>,
    left: usize,
    rows: Vec<Vec<String>>,
}

impl Table<'_> {
    /// Prints the table; `key(row, width)` gives row `row`'s key cut to `width`.
    fn print(&self, out: &mut String, key: impl Fn(usize, usize) -> String) {
        let n = self.header.len();
        let mut widths: Vec<usize> = (0..n)
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| width(&r[c]))
                    .chain([width(self.header[c])])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for &(first, count, label) in &self.spans {
            let last = first + count - 1;
            let spanned = widths[first..=last].iter().sum::<usize>() + (count - 1) * GAP;
            widths[last] += width(label).saturating_sub(spanned);
        }
        let others = widths[1..].iter().map(|w| w + GAP).sum::<usize>();
        widths[0] = widths[0].min(COLUMNS.saturating_sub(others)).max(8);
        let line = |out: &mut String, cells: &[String]| {
            for (c, text) in cells.iter().enumerate() {
                let w = widths[c];
                if c > 0 {
                    out.push_str(&" ".repeat(GAP));
                }
                if c < self.left {
                    let _ = write!(out, "{:<w$}", fit(text, w));
                } else {
                    let _ = write!(out, "{text:>w$}");
                }
            }
            out.push('\n');
        };
        if !self.spans.is_empty() {
            let mut text = " ".repeat(widths[0]);
            let mut c = 1;
            while c < n {
                match self.spans.iter().find(|s| s.0 == c) {
                    Some(&(first, count, label)) => {
                        let w =
                            widths[first..first + count].iter().sum::<usize>() + (count - 1) * GAP;
                        let _ = write!(text, "{:GAP$}{label:>w$}", "");
                        c += count;
                    }
                    None => {
                        let _ = write!(text, "{:w$}", "", w = GAP + widths[c]);
                        c += 1;
                    }
                }
            }
            out.push_str(&text);
            out.push('\n');
        }
        let header: Vec<String> = self.header.iter().map(|h| h.to_string()).collect();
        line(out, &header);
        for (i, row) in self.rows.iter().enumerate() {
            let mut row = row.clone();
            row[0] = key(i, widths[0]);
            line(out, &row);
        }
    }
}

/// A group's key cut to `width`; a run keeps its id, kind and status and loses the
/// end of its job's name.
fn label(g: &SpendGroup, width: usize) -> String {
    if let Some(Some(r)) = &g.run
        && self::width(&g.key) > width
    {
        let fixed = self::width(&format!("#{} ({}, {})", r.id, r.kind, r.status));
        let room = width.saturating_sub(fixed + 1);
        if room >= 4 {
            return format!("#{} {} ({}, {})", r.id, fit(&r.job, room), r.kind, r.status);
        }
    }
    fit(&g.key, width)
}

/// `spend --reconcile` as text: a table of the days (the Backlinks totals, each
/// function below its day), then what explains each day's difference.
fn render_reconciled(days: &[Reconciled]) -> String {
    let mut out = String::new();
    if days.is_empty() {
        out.push_str(
            "no day reconciled yet: the daemon samples the account's books (appendix/user_data) \
             and reconciles each UTC day once it is over\n",
        );
        return out;
    }
    let rows: Vec<Vec<String>> = days
        .iter()
        .map(|d| {
            let key = if d.function == "*" {
                format!("{}{}", d.day, if d.sandbox { " (sandbox)" } else { "" })
            } else {
                format!("  {}", d.function)
            };
            vec![
                key,
                cell(d.account_usd),
                cell(d.ledger_usd),
                cell(d.difference_usd),
                cell(d.settlement_usd),
                cell(d.difference_usd - d.settlement_usd),
                d.kind.clone(),
            ]
        })
        .collect();
    let table = Table {
        header: vec![
            "day, function",
            "account",
            "ledger",
            "difference",
            "settled",
            "left",
            "explained as",
        ],
        spans: vec![],
        left: 1,
        rows,
    };
    table.print(&mut out, |i, w| fit(&table.rows[i][0], w));
    out.push('\n');
    for d in days.iter().filter(|d| d.function == "*") {
        let text = format!("{} {}: {}", d.day, d.api_host, d.explanation);
        for line in wrap(&text, COLUMNS) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// `text` in lines of at most `w` characters, broken at spaces, the later ones
/// indented by two.
fn wrap(text: &str, w: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && width(&line) + 1 + width(word) > w {
            lines.push(std::mem::replace(&mut line, "  ".to_string()));
        }
        if !line.is_empty() && !line.ends_with("  ") {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.trim().is_empty() {
        lines.push(line);
    }
    lines
}

/// The report as text, no line wider than 100 columns.
fn render_spend(report: &SpendReport) -> String {
    let mut out = String::new();
    let w = &mut out;
    spend_table(w, report);
    failed_and_reused(w, report);
    estimate_table(w, report);
    budgets_table(w, report);
    balance_line(w, report);
    // Cells pad to align decimal points; no line ends in blanks.
    out.lines().map(|l| format!("{}\n", l.trim_end())).collect()
}

/// Calls, rows and cost per group, with what failed but was charged and what was
/// reused.
fn spend_table(w: &mut String, report: &SpendReport) {
    let by = report.by.as_str();
    let what = if report.sandbox {
        "sandbox calls only: not real spend, no budget"
    } else {
        "real calls (sandbox calls left out)"
    };
    let _ = writeln!(
        w,
        "spend since {} 00:00 UTC, by {by}; {what}\n",
        report.since
    );

    let t = &report.total;
    let key = |i: usize, width: usize| match report.groups.get(i) {
        Some(g) => label(g, width),
        None => fit("total", width),
    };
    let main = |key: &str, f: &SpendFigures| {
        vec![
            key.to_string(),
            f.calls.to_string(),
            f.rows.to_string(),
            cell(f.cost_usd),
            f.failed_charged_calls.to_string(),
            cell(f.failed_charged_usd),
            f.reused_calls.to_string(),
            cell(f.reused_saved_usd),
        ]
    };
    let mut rows: Vec<Vec<String>> = report
        .groups
        .iter()
        .map(|g| main(&g.key, &g.figures))
        .collect();
    rows.push(main("total", t));
    Table {
        header: vec![
            by, "calls", "rows", "cost", "calls", "cost", "calls", "saved",
        ],
        spans: vec![(4, 2, "failed but charged"), (6, 2, "reused answers")],
        left: 1,
        rows,
    }
    .print(w, key);
    let _ = writeln!(
        w,
        "(calls: requests answered or abandoned, retries included, the credentials check apart;\n \
             failed but charged: brought no data, counted in cost; reused answers: bought\n \
             nothing, saved what the answers they reused cost)\n"
    );
}

/// The totals of calls that failed but were charged, reused, in flight and left out.
fn failed_and_reused(w: &mut String, report: &SpendReport) {
    let t = &report.total;

    let _ = writeln!(
        w,
        "failed but charged: {}, {}",
        plural(t.failed_charged_calls, "call", "calls"),
        money(t.failed_charged_usd)
    );
    for o in &report.failed_charged_by_outcome {
        let _ = writeln!(
            w,
            "  {:<18} {:>9} {:>11}",
            o.outcome,
            plural(o.calls, "call", "calls"),
            cell(o.cost_usd)
        );
    }
    let _ = writeln!(
        w,
        "reused answers: {}, saved {}",
        plural(t.reused_calls, "call", "calls"),
        money(t.reused_saved_usd)
    );
    if t.cost_estimated_calls > 0 {
        let _ = writeln!(
            w,
            "booked at the estimate: {}, {} (the answer's own cost was missing, unreadable, negative or over {} a call; in cost)",
            plural(t.cost_estimated_calls, "call", "calls"),
            money(t.cost_estimated_usd),
            crate::api::prices::MAX_COST_PER_CALL
        );
    }
    if t.in_flight_calls > 0 {
        let _ = writeln!(
            w,
            "in flight: {} sent, not answered yet, {} reserved (not in cost)",
            plural(t.in_flight_calls, "call", "calls"),
            money(t.in_flight_estimated_usd)
        );
    }
    if report.credentials_checks > 0 {
        let _ = writeln!(
            w,
            "credentials checks: {} ({}, free; no job's call, so not in calls, as in `runs`)",
            report.credentials_checks,
            crate::api::account::CREDENTIALS_CHECK
        );
    }
    if let Some(left) = &report.sandbox_left_out {
        let _ = writeln!(
            w,
            "sandbox: {} left out, would have cost {} (--sandbox shows them)",
            plural(left.calls, "call", "calls"),
            money(left.cost_usd)
        );
    }
}

/// What answered calls were estimated to cost against what they cost.
fn estimate_table(w: &mut String, report: &SpendReport) {
    let by = report.by.as_str();
    let t = &report.total;
    let _ = writeln!(
        w,
        "\nestimate against actual (answered calls with an estimate)"
    );
    let answered: Vec<&SpendGroup> = report
        .groups
        .iter()
        .filter(|g| g.figures.answered_calls > 0)
        .collect();
    let est = |key: &str, f: &SpendFigures| {
        vec![
            key.to_string(),
            f.answered_calls.to_string(),
            cell(f.answered_estimated_usd),
            cell(f.answered_cost_usd),
            cell(f.answered_cost_usd - f.answered_estimated_usd),
            deviation(f.answered_estimated_usd, f.answered_cost_usd),
        ]
    };
    let mut rows: Vec<Vec<String>> = answered.iter().map(|g| est(&g.key, &g.figures)).collect();
    rows.push(est("total", t));
    Table {
        header: vec![by, "calls", "estimated", "actual", "difference", "off by"],
        spans: vec![],
        left: 1,
        rows,
    }
    .print(w, |i, width| match answered.get(i) {
        Some(g) => label(g, width),
        None => fit("total", width),
    });
}

/// The budgets in force: cap, booked, left, calls held back.
fn budgets_table(w: &mut String, report: &SpendReport) {
    if report.budgets.is_empty() {
        let _ = writeln!(
            w,
            "\nbudgets: none in force (budget.daily_usd, budget.monthly_usd, a job's budget_monthly_usd)"
        );
    } else {
        let _ = writeln!(
            w,
            "\nbudgets in force (booked: answered calls plus the estimates of calls in flight)"
        );
        let rows = report
            .budgets
            .iter()
            .map(|b| {
                vec![
                    b.budget.clone(),
                    if b.period_kind == "day" {
                        format!("day {}", b.period)
                    } else {
                        format!("month {}", b.period.format("%Y-%m"))
                    },
                    cell(b.cap_usd),
                    cell(b.booked_usd),
                    cell(b.left_usd),
                    b.held_calls.to_string(),
                ]
            })
            .collect();
        Table {
            header: vec!["budget", "period", "cap", "booked", "left", "held"],
            spans: vec![],
            left: 2,
            rows,
        }
        .print(w, |i, width| fit(&report.budgets[i].budget, width));
        let _ = writeln!(w, "(held: queued calls the budget holds back)");
    }
}

/// The newest balance known.
fn balance_line(w: &mut String, report: &SpendReport) {
    let label = if report.sandbox {
        "sandbox balance"
    } else {
        "balance"
    };
    let _ = match &report.balance {
        None => writeln!(
            w,
            "\n{label}: unknown (no appendix/user_data answer stored)"
        ),
        Some(b) => writeln!(
            w,
            "\n{label}: {}, read {} from {}",
            b.balance_usd.map_or_else(|| "unknown".to_string(), money),
            b.taken_at.format("%Y-%m-%d %H:%M:%S UTC"),
            b.api_host
        ),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_puts_the_sign_before_the_dollar() {
        assert_eq!(money(Usd(Decimal::new(-1, 2))), "-$0.01");
        assert_eq!(money(Usd(Decimal::new(2003, 5))), "$0.02003");
        assert_eq!(money(Usd(Decimal::new(-1, 7))), "$0.00");
    }

    #[test]
    fn deviation_is_signed_against_the_estimate() {
        let d = |s: &str| Usd(s.parse().unwrap());
        assert_eq!(deviation(d("0.02"), d("0.021")), "+5.0%");
        assert_eq!(deviation(d("0.02"), d("0.019")), "-5.0%");
        assert_eq!(deviation(d("0.02"), d("0.02")), "0.0%");
        assert_eq!(deviation(d("0"), d("0.02")), "n/a");
    }
}
