//! The dashboard for supervisors, security officers and auditors: server-rendered SVG charts of
//! the last two weeks of cases, each with a data table saying the same in text. The geometry is
//! computed here so the template only places shapes: no script, no inline style. The numbers and
//! who may see them are the service's ([`Service::dashboard_stats`](deskgate_app::service::Service::dashboard_stats)).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use deskgate_app::AppError;
use deskgate_core::{Action, ApiId};

use super::session::SignedIn;
use super::{Console, Failure, Nav, refuse, words};
use deskgate_app::service::{Day, Exceptions, Stats};

/// Plot area of the per-day chart, in SVG user units.
const PLOT_LEFT: u32 = 40;
const PLOT_TOP: u32 = 10;
const PLOT_HEIGHT: u32 = 200;
const SLOT: u32 = 46;
const BAR: u32 = 30;
/// Horizontal charts: label column, bar length at 100 %, row pitch.
const LABEL_WIDTH: u32 = 150;
const BAR_SPAN: u32 = 420;
const ROW: u32 = 28;

/// One rectangle of a chart, with its value in words for its SVG `<title>` tooltip.
struct Segment {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
    class: &'static str,
    title: String,
}

struct Column {
    label: String,
    label_x: u32,
    segments: Vec<Segment>,
}

struct Row {
    label: String,
    text_y: u32,
    segments: Vec<Segment>,
    value: String,
    value_x: u32,
}

/// A horizontal bar chart.
struct Bars {
    id: &'static str,
    title: &'static str,
    desc: String,
    height: u32,
    rows: Vec<Row>,
}

struct Legend {
    class: &'static str,
    name: String,
}

struct DayRow {
    date: String,
    counts: Vec<u32>,
    total: u32,
}

#[derive(Template, WebTemplate)]
#[template(path = "console/dashboard.html")]
struct DashboardPage {
    nav: Option<Nav>,
    actions: Vec<Legend>,
    columns: Vec<Column>,
    day_max: u32,
    day_desc: String,
    day_rows: Vec<DayRow>,
    tiers: Bars,
    rates: Bars,
    agents: Bars,
    shifts: Bars,
    total: u32,
    denial: String,
    escalation: String,
    executed: u32,
    median: String,
    per_agent: Vec<Exceptions>,
    per_shift: Vec<Exceptions>,
}

/// One CSS class per action, so each series has its own colour and the legend matches.
const SERIES: [&str; 7] = ["s0", "s1", "s2", "s3", "s4", "s5", "s6"];

fn series(index: usize) -> &'static str {
    SERIES.get(index).copied().unwrap_or("s0")
}

fn scale(value: u32, max: u32, span: u32) -> u32 {
    // An empty chart (max 0) draws nothing.
    (value * span).checked_div(max).unwrap_or(0)
}

fn columns(s: &Stats, max: u32) -> Vec<Column> {
    let base = PLOT_TOP + PLOT_HEIGHT;
    s.days
        .iter()
        .zip(0u32..)
        .map(|(day, i)| {
            let x = PLOT_LEFT + i * SLOT + (SLOT - BAR) / 2;
            let mut below = 0;
            let mut segments = Vec::new();
            for (index, count) in day.per_action.iter().enumerate() {
                if *count == 0 {
                    continue;
                }
                // Cumulative scaling keeps stacked segments flush despite integer rounding.
                let bottom = base - scale(below, max, PLOT_HEIGHT);
                below += count;
                let top = base - scale(below, max, PLOT_HEIGHT);
                let action = Action::all().get(index).map(words).unwrap_or_default();
                segments.push(Segment {
                    x,
                    y: top,
                    width: BAR,
                    height: bottom - top,
                    class: series(index),
                    title: format!("{}: {count} {action}", day.date),
                });
            }
            Column {
                label: day.date.format("%m-%d").to_string(),
                label_x: x + BAR / 2,
                segments,
            }
        })
        .collect()
}

/// One row of a horizontal chart before layout: its label, the stacked parts as (amount, CSS
/// class, what is counted), and the value written after the bar.
struct Line {
    label: String,
    parts: Vec<(u32, &'static str, &'static str)>,
    value: String,
}

/// A horizontal chart whose rows stack their parts against `max`.
fn bars(id: &'static str, title: &'static str, desc: String, lines: Vec<Line>, max: u32) -> Bars {
    let rows: Vec<Row> = lines
        .into_iter()
        .zip(0u32..)
        .map(
            |(
                Line {
                    label,
                    parts,
                    value,
                },
                i,
            )| {
                let y = i * ROW + 4;
                let mut x = LABEL_WIDTH;
                let mut segments = Vec::new();
                for (amount, class, name) in parts {
                    let width = scale(amount, max, BAR_SPAN);
                    if width > 0 {
                        segments.push(Segment {
                            x,
                            y,
                            width,
                            height: ROW - 8,
                            class,
                            title: format!("{label}: {amount} {name}"),
                        });
                    }
                    x += width;
                }
                Row {
                    label,
                    text_y: y + ROW / 2,
                    segments,
                    value,
                    value_x: x + 6,
                }
            },
        )
        .collect();
    Bars {
        id,
        title,
        desc,
        height: (rows.len() as u32).max(1) * ROW + 4,
        rows,
    }
}

/// `n of total (p%)`, or "no cases" when there is nothing to divide by.
fn rate(n: u32, total: u32) -> String {
    // Rounded to the nearest whole percent.
    match (n * 100 + total / 2).checked_div(total) {
        Some(percent) => format!("{n} of {total} ({percent}%)"),
        None => "no cases".to_owned(),
    }
}

fn duration_words(d: Duration) -> String {
    let seconds = d.num_seconds().max(0);
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if h > 0 {
        format!("{h} h {m:02} min")
    } else {
        format!("{m} min {s:02} s")
    }
}

fn exception_bars(id: &'static str, title: &'static str, rows: &[Exceptions]) -> Bars {
    let max = rows
        .iter()
        .map(|r| r.break_glass + r.escalations)
        .max()
        .unwrap_or(0);
    let desc = if rows.is_empty() {
        "No break-glass cases or escalations in the last 14 days.".to_owned()
    } else {
        rows.iter()
            .map(|r| {
                format!(
                    "{}: {} break-glass, {} escalations",
                    r.who, r.break_glass, r.escalations
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    bars(
        id,
        title,
        desc,
        rows.iter()
            .map(|r| Line {
                label: r.who.clone(),
                parts: vec![
                    (r.break_glass, "bg", "break-glass"),
                    (r.escalations, "esc", "escalations"),
                ],
                value: (r.break_glass + r.escalations).to_string(),
            })
            .collect(),
        max,
    )
}

/// Cases by tier, as bars.
fn tier_bars(s: &Stats) -> Bars {
    let tier_max = s.by_tier.iter().map(|(_, n)| *n).max().unwrap_or(0);
    bars(
        "tiers",
        "Cases by tier",
        s.by_tier
            .iter()
            .map(|(t, n)| format!("{}: {n}", words(t)))
            .collect::<Vec<_>>()
            .join(", "),
        s.by_tier
            .iter()
            .map(|(t, n)| Line {
                label: words(t),
                parts: vec![(*n, "s0", "cases")],
                value: n.to_string(),
            })
            .collect(),
        tier_max,
    )
}

/// Denial and escalation rates, as bars.
fn rate_bars(s: &Stats, denial: &str, escalation: &str) -> Bars {
    bars(
        "rates",
        "Denial and escalation rates",
        format!("Denied {denial}; escalated {escalation}."),
        vec![
            Line {
                label: "denied".to_owned(),
                parts: vec![(s.denied, "deny", "denied")],
                value: denial.to_owned(),
            },
            Line {
                label: "escalated".to_owned(),
                parts: vec![(s.escalated, "esc", "escalated")],
                value: escalation.to_owned(),
            },
        ],
        s.total,
    )
}

fn page(nav: Nav, s: Stats) -> DashboardPage {
    let day_max = s.days.iter().map(Day::total).max().unwrap_or(0);
    let tiers = tier_bars(&s);
    let (denial, escalation) = (rate(s.denied, s.total), rate(s.escalated, s.total));
    let rates = rate_bars(&s, &denial, &escalation);
    let day_desc = s
        .days
        .iter()
        .filter(|d| d.total() > 0)
        .map(|d| format!("{}: {}", d.date, d.total()))
        .collect::<Vec<_>>()
        .join(", ");
    DashboardPage {
        nav: Some(nav),
        actions: Action::all()
            .iter()
            .enumerate()
            .map(|(i, a)| Legend {
                class: series(i),
                name: words(a),
            })
            .collect(),
        columns: columns(&s, day_max),
        day_max,
        day_desc: if day_desc.is_empty() {
            "No cases were opened in the last 14 days.".to_owned()
        } else {
            format!("Cases opened per day: {day_desc}.")
        },
        day_rows: s
            .days
            .iter()
            .map(|d| DayRow {
                date: d.date.to_string(),
                counts: d.per_action.clone(),
                total: d.total(),
            })
            .collect(),
        tiers,
        rates,
        agents: exception_bars("agents", "Exceptions per agent", &s.per_agent),
        shifts: exception_bars("shifts", "Exceptions per shift", &s.per_shift),
        total: s.total,
        denial,
        escalation,
        executed: s.executed,
        median: s
            .median_to_execute
            .map_or_else(|| "no executed cases".to_owned(), duration_words),
        per_agent: s.per_agent,
        per_shift: s.per_shift,
    }
}

pub(super) async fn dashboard(
    State(console): State<Console>,
    staff: SignedIn,
) -> Result<Response, Failure> {
    match console.service.dashboard_stats(&staff.0).await {
        Ok(s) => Ok(page(staff.nav(), s).into_response()),
        Err(e) if matches!(e, AppError::Forbidden(_) | AppError::PolicyDenied { .. }) => {
            Ok(refuse(&staff, e.message()))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_round_to_whole_percent_and_durations_read_as_words() {
        assert_eq!(rate(1, 3), "1 of 3 (33%)");
        assert_eq!(rate(2, 3), "2 of 3 (67%)");
        assert_eq!(rate(0, 0), "no cases");
        assert_eq!(duration_words(Duration::seconds(95)), "1 min 35 s");
        assert_eq!(duration_words(Duration::minutes(125)), "2 h 05 min");
    }

    #[test]
    fn stacked_segments_fill_the_bar_without_gaps() {
        let s = Stats {
            days: vec![Day {
                date: chrono::NaiveDate::MIN,
                per_action: vec![1, 0, 2, 0, 0, 0, 0],
            }],
            by_tier: Vec::new(),
            total: 3,
            denied: 0,
            escalated: 0,
            executed: 0,
            median_to_execute: None,
            per_agent: Vec::new(),
            per_shift: Vec::new(),
        };
        let columns = columns(&s, 3);
        let segs = &columns[0].segments;
        assert_eq!(segs.len(), 2);
        let base = PLOT_TOP + PLOT_HEIGHT;
        assert_eq!(segs[0].y + segs[0].height, base);
        assert_eq!(segs[1].y + segs[1].height, segs[0].y);
        assert_eq!(segs[1].y, PLOT_TOP, "the tallest day reaches the top");
    }
}
