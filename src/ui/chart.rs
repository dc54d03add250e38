//! Target against actual share, drawn as SVG on the server: one group of bars per operator (target, today,
//! all time), with the figures beside each bar, so the chart reads without a script and without colour alone.

use maud::{Markup, html};

use super::layout::percent;

/// One operator's shares; `None` where there is nothing to measure yet.
#[derive(Debug, Clone)]
pub struct ShareRow {
    pub name: String,
    pub target: f64,
    pub today: Option<f64>,
    pub all_time: Option<f64>,
}

/// Labels of the three bars, and of the whole chart.
pub struct Legend<'a> {
    pub title: &'a str,
    pub target: &'a str,
    pub today: &'a str,
    pub all_time: &'a str,
}

const BAR: f64 = 9.0;
const GAP: f64 = 3.0;
const GROUP_GAP: f64 = 10.0;
const LABEL_WIDTH: f64 = 120.0;
const PLOT_WIDTH: f64 = 300.0;
const VALUE_WIDTH: f64 = 60.0;

pub fn shares(rows: &[ShareRow], legend: &Legend) -> Markup {
    let group = 3.0 * BAR + 2.0 * GAP + GROUP_GAP;
    let height = 22.0 + group * rows.len() as f64;
    let width = LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH;
    let scale = rows
        .iter()
        .flat_map(|r| [Some(r.target), r.today, r.all_time])
        .flatten()
        .fold(0.0_f64, f64::max)
        .max(0.01);
    let bars = [
        ("target", legend.target),
        ("today", legend.today),
        ("all-time", legend.all_time),
    ];
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {width} {height}")) role="img" aria-label=(legend.title)
                xmlns="http://www.w3.org/2000/svg" {
                title { (legend.title) }
                @for (i, (class, label)) in bars.iter().enumerate() {
                    rect class=(format!("bar {class}")) x=(LABEL_WIDTH + i as f64 * 100.0) y="4"
                        width="10" height="10" {}
                    text.legend x=(LABEL_WIDTH + 14.0 + i as f64 * 100.0) y="13" { (label) }
                }
                @for (n, row) in rows.iter().enumerate() {
                    @let top = 22.0 + n as f64 * group;
                    text.name x=(LABEL_WIDTH - 6.0) y=(top + 1.5 * BAR + GAP) text-anchor="end" { (row.name) }
                    @for (i, (class, value)) in [("target", Some(row.target)), ("today", row.today),
                        ("all-time", row.all_time)].into_iter().enumerate() {
                        @let y = top + i as f64 * (BAR + GAP);
                        @if let Some(value) = value {
                            @let length = (value / scale * PLOT_WIDTH).max(1.0);
                            rect class=(format!("bar {class}")) x=(LABEL_WIDTH) y=(y)
                                width=(format!("{length:.1}")) height=(BAR) {}
                            text.value x=(LABEL_WIDTH + length + 4.0) y=(y + BAR - 1.0) { (percent(value)) }
                        } @else {
                            text.value x=(LABEL_WIDTH + 4.0) y=(y + BAR - 1.0) { "–" }
                        }
                    }
                }
            }
        }
    }
}
