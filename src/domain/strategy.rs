//! How a source chooses among its candidates, and the record of each choice.
//!
//! - `weighted_random`: the specification's rule, one uniform draw over the candidates' weights.
//! - `smooth_weighted`: deterministic shares by Tijdeman's algorithm for the chairman assignment problem.
//!   A [`Round`] lasts while the candidates and their weights stay the same. In it, after every assignment
//!   each operator's count is within one contact of `n × weight / Σ weights` (strictly, within
//!   `1 − 1/(2k − 2)` for k candidates). When the candidates change (someone fills up, stops accepting,
//!   returns, or a weight changes), a new round starts with every credit at zero: nobody is owed contacts
//!   from an earlier round, so an operator back from a break is not flooded.
//! - `least_loaded`: the lowest `load / max_load`; ties to the larger weight, then to the operator whose
//!   last assignment is oldest (never assigned counts as oldest), then to the lower id.

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::values::ValueError;

/// A source's rule for choosing among its candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    #[default]
    WeightedRandom,
    SmoothWeighted,
    LeastLoaded,
}

impl Strategy {
    pub const NAMES: [&'static str; 3] = ["weighted_random", "smooth_weighted", "least_loaded"];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::WeightedRandom => "weighted_random",
            Strategy::SmoothWeighted => "smooth_weighted",
            Strategy::LeastLoaded => "least_loaded",
        }
    }

    pub fn parse(value: &str) -> Result<Self, ValueError> {
        match value {
            "weighted_random" => Ok(Strategy::WeightedRandom),
            "smooth_weighted" => Ok(Strategy::SmoothWeighted),
            "least_loaded" => Ok(Strategy::LeastLoaded),
            _ => Err(ValueError(format!(
                "must be one of {}",
                Strategy::NAMES.join(", ")
            ))),
        }
    }

    /// Whether the strategy's choice depends on state that concurrent assignments of the same source change
    /// (its round, or the loads it ranks): those assignments must then take their turns.
    pub fn needs_serial_choices(self) -> bool {
        !matches!(self, Strategy::WeightedRandom)
    }
}

/// An operator who may take the contact: linked to the source, accepting, and below max_load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub operator_id: i64,
    pub weight: f64,
    /// Their contacts in status `active`, as read.
    pub load: i64,
    pub max_load: i64,
    /// When they were last given a contact, by any source.
    pub last_assigned_at: Option<DateTime<Utc>>,
}

impl Candidate {
    /// How many contacts the operator could take, as read.
    pub fn free_slots(&self) -> i64 {
        (self.max_load - self.load).max(0)
    }
}

/// Why a linked operator is no candidate for a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Exclusion {
    Inactive,
    Away,
    Offline,
    OffShift,
    TimeOff,
    Full,
    /// They declined this contact, or let it time out.
    Declined,
}

impl Exclusion {
    pub const NAMES: [&'static str; 7] = [
        "inactive",
        "away",
        "offline",
        "off_shift",
        "time_off",
        "full",
        "declined",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Exclusion::Inactive => "inactive",
            Exclusion::Away => "away",
            Exclusion::Offline => "offline",
            Exclusion::OffShift => "off_shift",
            Exclusion::TimeOff => "time_off",
            Exclusion::Full => "full",
            Exclusion::Declined => "declined",
        }
    }

    pub fn parse(value: &str) -> Result<Self, ValueError> {
        Exclusion::NAMES
            .iter()
            .position(|name| *name == value)
            .map(|index| Exclusion::ALL[index])
            .ok_or_else(|| ValueError(format!("must be one of {}", Exclusion::NAMES.join(", "))))
    }

    const ALL: [Exclusion; 7] = [
        Exclusion::Inactive,
        Exclusion::Away,
        Exclusion::Offline,
        Exclusion::OffShift,
        Exclusion::TimeOff,
        Exclusion::Full,
        Exclusion::Declined,
    ];
}

impl From<super::NotAccepting> for Exclusion {
    fn from(because: super::NotAccepting) -> Self {
        use super::NotAccepting;
        match because {
            NotAccepting::Inactive => Exclusion::Inactive,
            NotAccepting::Away => Exclusion::Away,
            NotAccepting::Offline => Exclusion::Offline,
            NotAccepting::OffShift => Exclusion::OffShift,
            NotAccepting::TimeOff => Exclusion::TimeOff,
        }
    }
}

/// A linked operator left out of a choice, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Excluded {
    pub operator_id: i64,
    pub why: Exclusion,
}

/// Who may take a contact and who may not: what a choice is made from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Field {
    /// In operator order.
    pub candidates: Vec<Candidate>,
    pub excluded: Vec<Excluded>,
}

impl Field {
    /// Takes the operator out of the candidates, as excluded for `why` (or changes why they are excluded).
    pub fn exclude(&mut self, operator_id: i64, why: Exclusion) {
        self.candidates.retain(|c| c.operator_id != operator_id);
        match self
            .excluded
            .iter_mut()
            .find(|e| e.operator_id == operator_id)
        {
            Some(excluded) => excluded.why = why,
            None => self.excluded.push(Excluded { operator_id, why }),
        }
    }

    /// The field for one contact that these operators refused.
    pub fn without_refusers(&self, refusers: &[i64]) -> Field {
        let mut field = self.clone();
        for &operator_id in refusers {
            let linked = field
                .candidates
                .iter()
                .any(|c| c.operator_id == operator_id)
                || field.excluded.iter().any(|e| e.operator_id == operator_id);
            if linked {
                field.exclude(operator_id, Exclusion::Declined);
            }
        }
        field
    }
}

/// The state of a smooth_weighted source: the current round's members, their weights and credits.
/// A credit is what the operator is owed: `n × share − count` over the round's n assignments so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Round {
    /// Assignments in this round.
    #[serde(rename = "n")]
    pub assignments: u64,
    /// `[operator_id, weight, credit]`, in operator order.
    #[serde(rename = "m")]
    pub members: Vec<(i64, f64, f64)>,
}

impl Round {
    fn fresh(candidates: &[Candidate]) -> Round {
        Round {
            assignments: 0,
            members: candidates
                .iter()
                .map(|c| (c.operator_id, c.weight, 0.0))
                .collect(),
        }
    }

    /// Whether the round was played by exactly these candidates with these weights.
    fn is_for(&self, candidates: &[Candidate]) -> bool {
        self.members.len() == candidates.len()
            && self
                .members
                .iter()
                .zip(candidates)
                .all(|(&(id, weight, _), c)| id == c.operator_id && weight == c.weight)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A round as stored; anything unreadable starts a new round, which costs only evenness.
    pub fn from_json(text: Option<&str>) -> Round {
        text.and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default()
    }
}

/// One choice among candidates: who, with what probability each, what the strategy used, and the round it
/// leaves (for smooth_weighted), to be kept only if the chosen operator's capacity is claimed.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub operator_id: i64,
    /// Per candidate, in their order.
    pub probabilities: Vec<f64>,
    pub detail: Value,
    pub next_round: Option<Round>,
}

/// Chooses among the candidates by the strategy, or `None` when there are none.
pub fn choose<R: Rng + ?Sized>(
    strategy: Strategy,
    candidates: &[Candidate],
    round: &Round,
    rng: &mut R,
) -> Option<Choice> {
    if candidates.is_empty() {
        return None;
    }
    Some(match strategy {
        Strategy::WeightedRandom => weighted_random(candidates, rng),
        Strategy::SmoothWeighted => smooth_weighted(candidates, round),
        Strategy::LeastLoaded => least_loaded(candidates),
    })
}

/// Weights that cannot be drawn from (none are, by [`super::Weight`]) count as 0; should all be 0, the first
/// candidate is taken rather than none, since leaving a contact waiting while an operator is free would be
/// the worse error.
pub(super) fn usable(weight: f64) -> f64 {
    if weight.is_finite() && weight > 0.0 {
        weight
    } else {
        0.0
    }
}

/// The chance each of the weights has in a weighted random draw, in their order: its share of the usable
/// weight, or, should there be none, certainty for the first (see [`usable`]).
pub fn weighted_shares(weights: impl Iterator<Item = f64> + Clone) -> Vec<f64> {
    let total: f64 = weights.clone().map(usable).sum();
    weights
        .enumerate()
        .map(|(i, weight)| {
            if total > 0.0 {
                usable(weight) / total
            } else {
                f64::from(u8::from(i == 0))
            }
        })
        .collect()
}

fn weighted_random<R: Rng + ?Sized>(candidates: &[Candidate], rng: &mut R) -> Choice {
    let total: f64 = candidates.iter().map(|c| usable(c.weight)).sum();
    // One draw per choice, whatever the number of candidates: a seeded source repeats its choices.
    let random = rng.random::<f64>() * total;
    let mut index = 0;
    let mut reached = 0.0;
    for (i, candidate) in candidates.iter().enumerate() {
        let weight = usable(candidate.weight);
        reached += weight;
        index = i;
        if weight > 0.0 && random < reached {
            break;
        }
    }
    Choice {
        operator_id: candidates[index].operator_id,
        probabilities: weighted_shares(candidates.iter().map(|c| c.weight)),
        detail: json!({ "random": random, "total_weight": total }),
        next_round: None,
    }
}

/// Tijdeman's rule: every candidate accrues its share; among those owed at least `1/(2k − 2)`, the one
/// whose credit would first run out of bound — the earliest deadline `(1 − 1/(2k − 2) − credit) / share` —
/// gets the contact and pays one for it.
fn smooth_weighted(candidates: &[Candidate], round: &Round) -> Choice {
    let fresh_round = !round.is_for(candidates);
    let mut next = if fresh_round {
        Round::fresh(candidates)
    } else {
        round.clone()
    };
    let k = candidates.len();
    let total: f64 = candidates.iter().map(|c| usable(c.weight)).sum();
    let share = |weight: f64| {
        if total > 0.0 {
            usable(weight) / total
        } else {
            1.0 / k as f64
        }
    };
    for member in &mut next.members {
        member.2 += share(member.1);
    }
    let chosen = if k == 1 {
        0
    } else {
        let least_owed = 1.0 / (2.0 * (k as f64) - 2.0);
        // Float error must not make the one eligible candidate ineligible.
        const SLACK: f64 = 1e-9;
        next.members
            .iter()
            .enumerate()
            .filter(|(_, member)| member.2 >= least_owed - SLACK && share(member.1) > 0.0)
            .min_by(|(_, a), (_, b)| {
                let deadline = |m: &(i64, f64, f64)| (1.0 - least_owed - m.2) / share(m.1);
                deadline(a).total_cmp(&deadline(b))
            })
            .map_or(0, |(index, _)| index)
    };
    let credits: Vec<Value> = next
        .members
        .iter()
        .map(|&(operator_id, _, credit)| json!({ "operator_id": operator_id, "credit": credit }))
        .collect();
    next.members[chosen].2 -= 1.0;
    // The credits sum to zero; keep them there against accumulated rounding.
    let drift = next.members.iter().map(|m| m.2).sum::<f64>() / k as f64;
    for member in &mut next.members {
        member.2 -= drift;
    }
    next.assignments += 1;
    let mut probabilities = vec![0.0; k];
    probabilities[chosen] = 1.0;
    Choice {
        operator_id: candidates[chosen].operator_id,
        probabilities,
        detail: json!({
            "round_assignments": next.assignments,
            "fresh_round": fresh_round,
            "credits": credits,
        }),
        next_round: Some(next),
    }
}

fn least_loaded(candidates: &[Candidate]) -> Choice {
    use std::cmp::Ordering;
    // load / max_load compared exactly, by cross-multiplying (every candidate has max_load ≥ 1).
    let by_ratio = |a: &Candidate, b: &Candidate| (a.load * b.max_load).cmp(&(b.load * a.max_load));
    let lowest = candidates
        .iter()
        .min_by(|a, b| by_ratio(a, b))
        .copied()
        .unwrap_or(candidates[0]);
    let tied: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| by_ratio(c, &lowest) == Ordering::Equal)
        .collect();
    let heaviest = tied
        .iter()
        .map(|c| c.weight)
        .fold(f64::NEG_INFINITY, f64::max);
    let heavy: Vec<&Candidate> = tied
        .iter()
        .copied()
        .filter(|c| c.weight == heaviest)
        .collect();
    // Never assigned sorts first: `None` is less than any time.
    let oldest = heavy.iter().map(|c| c.last_assigned_at).min().flatten();
    let longest_idle: Vec<&Candidate> = heavy
        .iter()
        .copied()
        .filter(|c| c.last_assigned_at == oldest)
        .collect();
    let tie_break = if tied.len() == 1 {
        Value::Null
    } else if heavy.len() == 1 {
        json!("weight")
    } else if longest_idle.len() == 1 {
        json!("oldest_assignment")
    } else {
        json!("operator_id")
    };
    let chosen = longest_idle[0].operator_id;
    Choice {
        operator_id: chosen,
        probabilities: candidates
            .iter()
            .map(|c| f64::from(u8::from(c.operator_id == chosen)))
            .collect(),
        detail: json!({
            "lowest_load_ratio": lowest.load as f64 / lowest.max_load.max(1) as f64,
            "tied": tied.iter().map(|c| c.operator_id).collect::<Vec<_>>(),
            "tie_break": tie_break,
        }),
        next_round: None,
    }
}

/// The record of one automatic assignment attempt: whom the strategy could choose from, whom it left out and
/// why, whom it chose (or nobody), and what it used.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub strategy: Strategy,
    pub chosen_operator_id: Option<i64>,
    /// The candidates of the final choice, each with the probability it had.
    pub candidates: Vec<(Candidate, f64)>,
    pub excluded: Vec<Excluded>,
    pub detail: Value,
}

impl Decision {
    /// Nobody could take the contact: everyone linked is excluded.
    pub fn nobody(strategy: Strategy, field: &Field) -> Decision {
        Decision {
            strategy,
            chosen_operator_id: None,
            candidates: Vec::new(),
            excluded: field.excluded.clone(),
            detail: json!({}),
        }
    }

    /// The choice made among the field's candidates.
    pub fn chosen(strategy: Strategy, field: &Field, choice: &Choice) -> Decision {
        Decision {
            strategy,
            chosen_operator_id: Some(choice.operator_id),
            candidates: field
                .candidates
                .iter()
                .copied()
                .zip(choice.probabilities.iter().copied())
                .collect(),
            excluded: field.excluded.clone(),
            detail: choice.detail.clone(),
        }
    }

    /// A returning lead given back to their previous operator, outside the strategy.
    pub fn sticky(
        strategy: Strategy,
        field: &Field,
        operator_id: i64,
        sticky_hours: i64,
    ) -> Decision {
        Decision {
            strategy,
            chosen_operator_id: Some(operator_id),
            candidates: field
                .candidates
                .iter()
                .map(|c| (*c, f64::from(u8::from(c.operator_id == operator_id))))
                .collect(),
            excluded: field.excluded.clone(),
            detail: json!({ "previous_operator_id": operator_id, "sticky_hours": sticky_hours }),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::{ProptestConfig, prop, prop_assert, proptest};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn candidate(operator_id: i64, weight: f64) -> Candidate {
        Candidate {
            operator_id,
            weight,
            load: 0,
            max_load: 1_000_000,
            last_assigned_at: None,
        }
    }

    /// Plays `n` smooth choices among fixed candidates, and returns the largest |count − n × share| seen
    /// after any of them.
    fn largest_smooth_deviation(candidates: &[Candidate], n: usize) -> f64 {
        let total: f64 = candidates.iter().map(|c| c.weight).sum();
        let mut round = Round::default();
        let mut counts = vec![0u64; candidates.len()];
        let mut largest: f64 = 0.0;
        for step in 1..=n {
            let choice = smooth_weighted(candidates, &round);
            round = choice.next_round.unwrap();
            let index = candidates
                .iter()
                .position(|c| c.operator_id == choice.operator_id)
                .unwrap();
            counts[index] += 1;
            for (c, &count) in candidates.iter().zip(&counts) {
                let target = step as f64 * c.weight / total;
                largest = largest.max((count as f64 - target).abs());
            }
        }
        largest
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        /// The chairman assignment bound: after every assignment, every count within one contact of its
        /// target (Tijdeman: within 1 − 1/(2k − 2)).
        #[test]
        fn smooth_weighted_stays_within_one_contact_of_target(
            weights in prop::collection::vec(0.01f64..100.0, 1..12),
            n in 1usize..1500,
        ) {
            let candidates: Vec<Candidate> = weights
                .iter()
                .enumerate()
                .map(|(i, &w)| candidate(i as i64 + 1, w))
                .collect();
            let k = candidates.len() as f64;
            let bound = if candidates.len() == 1 { 0.0 } else { 1.0 - 1.0 / (2.0 * k - 2.0) };
            let largest = largest_smooth_deviation(&candidates, n);
            prop_assert!(largest <= bound + 1e-6, "largest {largest} > bound {bound} for {weights:?}");
            prop_assert!(largest <= 1.0);
        }

        /// Integer weights, as admins mostly set them, over long runs.
        #[test]
        fn smooth_weighted_with_whole_weights_over_long_runs(
            weights in prop::collection::vec(1u32..50, 2..8),
        ) {
            let candidates: Vec<Candidate> = weights
                .iter()
                .enumerate()
                .map(|(i, &w)| candidate(i as i64 + 1, f64::from(w)))
                .collect();
            prop_assert!(largest_smooth_deviation(&candidates, 5_000) <= 1.0);
        }
    }

    /// Smooth weighted round-robin (nginx's rule) on a weight set where it leaves the ±1 bound, which the
    /// rule here keeps: why Tijdeman's algorithm and not the better-known one.
    #[test]
    fn smooth_weighted_round_robin_can_leave_the_bound_tijdeman_does_not() {
        fn swrr_largest_deviation(weights: &[f64], n: usize) -> f64 {
            let total: f64 = weights.iter().sum();
            let mut current = vec![0.0; weights.len()];
            let mut counts = vec![0.0; weights.len()];
            let mut largest: f64 = 0.0;
            for step in 1..=n {
                for (c, w) in current.iter_mut().zip(weights) {
                    *c += w;
                }
                let best = (0..weights.len())
                    .max_by(|&a, &b| current[a].total_cmp(&current[b]).then(b.cmp(&a)))
                    .unwrap();
                current[best] -= total;
                counts[best] += 1.0;
                for (count, w) in counts.iter().zip(weights) {
                    largest = largest.max((count - step as f64 * w / total).abs());
                }
            }
            largest
        }
        // The smallest found by searching whole weights up to 11: the two heavy operators take turns while
        // the light ones fall behind by 1.04 contacts.
        let weights = [1.0, 1.0, 1.0, 11.0, 11.0];
        assert!(swrr_largest_deviation(&weights, 25) > 1.0);
        let candidates: Vec<Candidate> = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| candidate(i as i64 + 1, w))
            .collect();
        assert!(largest_smooth_deviation(&candidates, 25) <= 1.0);
    }

    #[test]
    fn a_changed_field_starts_a_fresh_round() {
        let two = [candidate(1, 1.0), candidate(2, 3.0)];
        let mut round = Round::default();
        for _ in 0..3 {
            round = smooth_weighted(&two, &round).next_round.unwrap();
        }
        assert_eq!(round.assignments, 3);
        // Operator 3 returns: no debt carried in either direction.
        let three = [candidate(1, 1.0), candidate(2, 3.0), candidate(3, 1.0)];
        let choice = smooth_weighted(&three, &round);
        assert_eq!(choice.detail["fresh_round"], true);
        assert_eq!(choice.next_round.unwrap().assignments, 1);
        // A weight change does as well.
        let reweighed = [candidate(1, 2.0), candidate(2, 3.0)];
        assert_eq!(
            smooth_weighted(&reweighed, &round).detail["fresh_round"],
            true
        );
        assert_eq!(smooth_weighted(&two, &round).detail["fresh_round"], false);
    }

    #[test]
    fn a_round_survives_its_stored_form() {
        let two = [candidate(1, 1.0), candidate(2, 3.0)];
        let round = smooth_weighted(&two, &Round::default()).next_round.unwrap();
        assert_eq!(Round::from_json(Some(&round.to_json())), round);
        assert_eq!(Round::from_json(Some("not json")), Round::default());
        assert_eq!(Round::from_json(None), Round::default());
    }

    #[test]
    fn least_loaded_takes_the_lowest_ratio_then_weight_then_oldest_assignment() {
        let at = |minute: u32| {
            Some(
                DateTime::parse_from_rfc3339(&format!("2026-12-02T10:{minute:02}:00Z"))
                    .unwrap()
                    .with_timezone(&Utc),
            )
        };
        let c = |operator_id, weight, load, max_load, last| Candidate {
            operator_id,
            weight,
            load,
            max_load,
            last_assigned_at: last,
        };
        // 1/4 beats 1/2 and 2/5, whatever the weights.
        let choice = least_loaded(&[
            c(1, 9.0, 1, 2, None),
            c(2, 1.0, 1, 4, at(5)),
            c(3, 9.0, 2, 5, None),
        ]);
        assert_eq!(choice.operator_id, 2);
        assert_eq!(choice.detail["tie_break"], Value::Null);
        assert_eq!(choice.probabilities, vec![0.0, 1.0, 0.0]);
        // 1/2 = 2/4: the larger weight.
        let choice = least_loaded(&[c(1, 1.0, 1, 2, None), c(2, 3.0, 2, 4, at(1))]);
        assert_eq!(
            (choice.operator_id, choice.detail["tie_break"].clone()),
            (2, json!("weight"))
        );
        // Same ratio and weight: the oldest last assignment, never assigned first.
        let choice = least_loaded(&[
            c(1, 1.0, 0, 2, at(9)),
            c(2, 1.0, 0, 3, at(3)),
            c(3, 1.0, 0, 5, at(7)),
        ]);
        assert_eq!(
            (choice.operator_id, choice.detail["tie_break"].clone()),
            (2, json!("oldest_assignment"))
        );
        let choice = least_loaded(&[c(1, 1.0, 0, 2, at(9)), c(2, 1.0, 0, 3, None)]);
        assert_eq!(choice.operator_id, 2);
        // Nothing tells them apart: the lower id.
        let choice = least_loaded(&[c(4, 1.0, 0, 2, None), c(5, 1.0, 0, 2, None)]);
        assert_eq!(
            (choice.operator_id, choice.detail["tie_break"].clone()),
            (4, json!("operator_id"))
        );
        assert_eq!(choice.detail["tied"], json!([4, 5]));
    }

    #[test]
    fn weighted_random_records_its_draw() {
        let candidates = [candidate(1, 10.0), candidate(2, 30.0)];
        let mut rng = StdRng::seed_from_u64(3);
        let choice = weighted_random(&candidates, &mut rng);
        assert_eq!(choice.probabilities, vec![0.25, 0.75]);
        assert_eq!(choice.detail["total_weight"], 40.0);
        let random = choice.detail["random"].as_f64().unwrap();
        assert!((0.0..40.0).contains(&random));
        assert_eq!(choice.operator_id, if random < 10.0 { 1 } else { 2 });
    }

    #[test]
    fn weighted_random_splits_10_and_30_as_25_and_75() {
        let candidates = [candidate(1, 10.0), candidate(2, 30.0)];
        let mut rng = StdRng::seed_from_u64(7);
        let first = (0..40_000)
            .filter(|_| weighted_random(&candidates, &mut rng).operator_id == 1)
            .count();
        // Binomial(40000, 0.25): σ ≈ 87, so ±5σ is ±435.
        assert!((9_565..=10_435).contains(&first), "{first}");
    }

    #[test]
    fn fractional_weights_are_honoured() {
        let candidates = [candidate(1, 0.5), candidate(2, 1.5), candidate(3, 2.0)];
        let mut rng = StdRng::seed_from_u64(11);
        let mut counts = [0; 3];
        for _ in 0..40_000 {
            counts[weighted_random(&candidates, &mut rng).operator_id as usize - 1] += 1;
        }
        // Expected 5000 / 15000 / 20000; 5σ is under 500 for each.
        assert!((4_500..=5_500).contains(&counts[0]), "{counts:?}");
        assert!((14_500..=15_500).contains(&counts[1]), "{counts:?}");
        assert!((19_500..=20_500).contains(&counts[2]), "{counts:?}");
    }

    #[test]
    fn no_candidates_means_no_choice() {
        for strategy in [
            Strategy::WeightedRandom,
            Strategy::SmoothWeighted,
            Strategy::LeastLoaded,
        ] {
            assert_eq!(
                choose(
                    strategy,
                    &[],
                    &Round::default(),
                    &mut StdRng::seed_from_u64(1)
                ),
                None
            );
        }
    }

    #[test]
    fn strategies_and_exclusions_parse_their_names() {
        for name in Strategy::NAMES {
            assert_eq!(Strategy::parse(name).unwrap().as_str(), name);
        }
        for name in Exclusion::NAMES {
            assert_eq!(Exclusion::parse(name).unwrap().as_str(), name);
        }
        assert!(Strategy::parse("round_robin").is_err());
    }

    #[test]
    fn refusers_are_excluded_as_declined() {
        let field = Field {
            candidates: vec![candidate(1, 1.0), candidate(2, 1.0)],
            excluded: vec![Excluded {
                operator_id: 3,
                why: Exclusion::Away,
            }],
        };
        let field = field.without_refusers(&[2, 3, 9]);
        assert_eq!(field.candidates, vec![candidate(1, 1.0)]);
        assert_eq!(
            field.excluded,
            vec![
                Excluded {
                    operator_id: 3,
                    why: Exclusion::Declined
                },
                Excluded {
                    operator_id: 2,
                    why: Exclusion::Declined
                },
            ]
        );
    }
}
