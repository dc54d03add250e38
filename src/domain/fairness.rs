//! How closely a source's automatic assignments followed its weights over a window of time.
//!
//! Each assignment was a choice among its candidates, and by the weights operator i was due `w_i / Σ w` of
//! it (the sum over that assignment's candidates: who was full or away then was no candidate, and is not
//! owed the contact). Summed over the window this is each operator's expected count, which Pearson's
//! chi-square test compares with the count they got. The weights are the target whatever the strategy:
//! weighted_random draws by them, smooth_weighted keeps every count within one contact of them (so its
//! statistic stays near 0, and its p-value near 1, far more than chance would), and least_loaded, which
//! evens out load instead, is measured against the share its weights would give.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::strategy::{Candidate, usable};
use super::values::ValueError;

/// A span of time `[since, until)`; an absent end is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

impl Window {
    /// A window that ends before it starts, or as it starts, is empty: it holds no assignment (an answer, not
    /// an error: each bound alone is valid, and no schema can say how two must compare).
    pub fn new(
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Self, ValueError> {
        Ok(Self { since, until })
    }

    pub fn since(&self) -> Option<DateTime<Utc>> {
        self.since
    }

    pub fn until(&self) -> Option<DateTime<Utc>> {
        self.until
    }
}

/// An automatic assignment: whom it went to, and the candidates it chose among with their weights.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub chosen_operator_id: i64,
    pub candidates: Vec<Candidate>,
}

/// One operator's part in a window's assignments.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorFairness {
    pub operator_id: i64,
    /// The assignments they got.
    pub assignments: i64,
    /// The assignments the weights gave them: Σ over the assignments they were a candidate of, of their
    /// weight / the candidates' weights.
    pub expected: f64,
}

/// A window's assignments against the weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Fairness {
    pub assignments: i64,
    /// Every operator who was a candidate of an assignment, by id.
    pub operators: Vec<OperatorFairness>,
    /// Σ (got − expected)² / expected over the operators expected to get some; `None` with fewer than two
    /// of them, where there is nothing to compare.
    pub chi_square: Option<f64>,
    /// Those operators less one; 0 when there is no statistic.
    pub degrees_of_freedom: i64,
    /// The chance of a statistic at least this large had every assignment been drawn by the weights.
    pub p_value: Option<f64>,
}

/// Compares the assignments with the shares their candidates' weights gave.
pub fn measure(assignments: &[Assignment]) -> Fairness {
    let mut operators: BTreeMap<i64, OperatorFairness> = BTreeMap::new();
    fn row(operators: &mut BTreeMap<i64, OperatorFairness>, id: i64) -> &mut OperatorFairness {
        operators.entry(id).or_insert_with(|| OperatorFairness {
            operator_id: id,
            assignments: 0,
            expected: 0.0,
        })
    }
    for assignment in assignments {
        let total: f64 = assignment.candidates.iter().map(|c| usable(c.weight)).sum();
        let count = assignment.candidates.len() as f64;
        for candidate in &assignment.candidates {
            // Weights that cannot be drawn from are never all there is; should they be, each is due alike.
            row(&mut operators, candidate.operator_id).expected += if total > 0.0 {
                usable(candidate.weight) / total
            } else {
                1.0 / count
            };
        }
        row(&mut operators, assignment.chosen_operator_id).assignments += 1;
    }
    let operators: Vec<OperatorFairness> = operators.into_values().collect();
    let tested: Vec<&OperatorFairness> = operators.iter().filter(|o| o.expected > 0.0).collect();
    let (chi_square, degrees_of_freedom, p_value) = if tested.len() < 2 {
        (None, 0, None)
    } else {
        let chi_square: f64 = tested
            .iter()
            .map(|o| (o.assignments as f64 - o.expected).powi(2) / o.expected)
            .sum();
        let degrees_of_freedom = tested.len() as i64 - 1;
        let p_value = chi_square_upper_tail(chi_square, degrees_of_freedom);
        (Some(chi_square), degrees_of_freedom, Some(p_value))
    };
    Fairness {
        assignments: assignments.len() as i64,
        operators,
        chi_square,
        degrees_of_freedom,
        p_value,
    }
}

/// P(X ≥ x) for X chi-square distributed with `degrees_of_freedom` (at least 1): the regularized upper
/// incomplete gamma function Q(k/2, x/2).
fn chi_square_upper_tail(x: f64, degrees_of_freedom: i64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    // Only an infinite statistic is refused here, and its tail is empty.
    statrs::function::gamma::checked_gamma_ur(degrees_of_freedom as f64 / 2.0, x / 2.0)
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(operator_id: i64, weight: f64) -> Candidate {
        Candidate {
            operator_id,
            weight,
            load: 0,
            max_load: 10,
            last_assigned_at: None,
        }
    }

    /// `counts[i]` assignments to operator i + 1, each among all of them with the weights given.
    fn split(weights: &[f64], counts: &[usize]) -> Vec<Assignment> {
        let candidates: Vec<Candidate> = weights
            .iter()
            .zip(1..)
            .map(|(&weight, id)| candidate(id, weight))
            .collect();
        counts
            .iter()
            .zip(1..)
            .flat_map(|(&count, id)| {
                std::iter::repeat_n(
                    Assignment {
                        chosen_operator_id: id,
                        candidates: candidates.clone(),
                    },
                    count,
                )
            })
            .collect()
    }

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn a_30_70_split_of_equal_weights_is_far_from_chance() {
        let fairness = measure(&split(&[1.0, 1.0], &[30, 70]));
        assert_eq!(fairness.assignments, 100);
        assert_eq!(fairness.degrees_of_freedom, 1);
        assert!(close(fairness.chi_square.unwrap(), 16.0, 1e-9));
        // erfc(√8), from a table.
        assert!(close(fairness.p_value.unwrap(), 6.334e-5, 1e-8));
        let expected: Vec<(i64, i64, f64)> = fairness
            .operators
            .iter()
            .map(|o| (o.operator_id, o.assignments, o.expected))
            .collect();
        assert_eq!(expected, vec![(1, 30, 50.0), (2, 70, 50.0)]);
    }

    #[test]
    fn an_exact_split_has_no_deviation() {
        let fairness = measure(&split(&[1.0, 1.0], &[50, 50]));
        assert_eq!(fairness.chi_square, Some(0.0));
        assert_eq!(fairness.p_value, Some(1.0));
        let fairness = measure(&split(&[1.0, 3.0], &[25, 75]));
        assert!(close(fairness.chi_square.unwrap(), 0.0, 1e-12));
        assert!(close(fairness.p_value.unwrap(), 1.0, 1e-9));
        assert_eq!(fairness.operators[0].expected, 25.0);
        assert_eq!(fairness.operators[1].expected, 75.0);
    }

    #[test]
    fn the_tail_matches_the_tables_critical_values() {
        assert!(close(chi_square_upper_tail(3.841_459, 1), 0.05, 1e-6));
        assert!(close(chi_square_upper_tail(5.991_465, 2), 0.05, 1e-6));
        assert!(close(chi_square_upper_tail(6.634_897, 1), 0.01, 1e-6));
        assert_eq!(chi_square_upper_tail(f64::INFINITY, 1), 0.0);
    }

    #[test]
    fn each_assignment_is_shared_among_its_own_candidates() {
        let both = vec![candidate(1, 1.0), candidate(2, 1.0)];
        let alone = vec![candidate(1, 1.0)];
        let assignments = [
            Assignment {
                chosen_operator_id: 1,
                candidates: both,
            },
            Assignment {
                chosen_operator_id: 1,
                candidates: alone,
            },
        ];
        let fairness = measure(&assignments);
        let expected: Vec<(i64, f64)> = fairness
            .operators
            .iter()
            .map(|o| (o.operator_id, o.expected))
            .collect();
        assert_eq!(expected, vec![(1, 1.5), (2, 0.5)]);
        // (2 − 1.5)² / 1.5 + (0 − 0.5)² / 0.5
        assert!(close(fairness.chi_square.unwrap(), 0.25 / 1.5 + 0.5, 1e-12));
    }

    #[test]
    fn nothing_to_compare_has_no_statistic() {
        for fairness in [measure(&[]), measure(&split(&[2.0], &[7]))] {
            assert_eq!(fairness.chi_square, None);
            assert_eq!(fairness.p_value, None);
            assert_eq!(fairness.degrees_of_freedom, 0);
        }
        assert_eq!(measure(&[]).operators, Vec::new());
    }

    #[test]
    fn a_window_keeps_its_bounds() {
        let at = DateTime::parse_from_rfc3339("2026-06-01T10:00:00Z")
            .unwrap()
            .to_utc();
        assert!(
            Window::new(Some(at), Some(at)).is_ok(),
            "empty, not refused"
        );
        assert!(Window::new(Some(at), None).is_ok());
        assert!(Window::new(None, Some(at)).is_ok());
        let window = Window::new(Some(at), Some(at + chrono::TimeDelta::seconds(1))).unwrap();
        assert_eq!(window.since(), Some(at));
    }
}
