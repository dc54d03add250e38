//! What-if: what the next contact of a source would get, and what its next N contacts would do, played on a
//! copy of its operators by the strategy code that real assignments run ([`strategy::choose`]), writing
//! nothing. Who accepts contacts stays as it is now (availability, shifts and time off do not move during a
//! simulation), nobody closes a contact meanwhile, and the draws come from the simulation's own generator,
//! never from the server's.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;

use super::routing::{LinkedOperator, evaluate};
use super::strategy::{self, Candidate, Round, Strategy};
use super::values::{ValueError, Weight};

/// The most contacts one simulation plays: enough to see shares settle, few enough to answer at once.
pub const MAX_SIMULATED_CONTACTS: u32 = 100_000;

/// How many contacts a simulation plays: 1 to [`MAX_SIMULATED_CONTACTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimulatedContacts(u32);

impl SimulatedContacts {
    pub fn parse(value: i64) -> Result<Self, ValueError> {
        u32::try_from(value)
            .ok()
            .filter(|contacts| (1..=MAX_SIMULATED_CONTACTS).contains(contacts))
            .map(Self)
            .ok_or_else(|| {
                ValueError(format!(
                    "must be a whole number between 1 and {MAX_SIMULATED_CONTACTS}"
                ))
            })
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// Whether a simulation keeps to the operators' capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Capacity {
    /// From their current loads up to their max_load: each simulated contact adds one to its operator's
    /// load and none is closed meanwhile, so the contacts beyond the free capacity go unassigned.
    #[default]
    Current,
    /// Loads and max_load exclude nobody; only whether an operator accepts contacts does.
    Ignore,
}

impl Capacity {
    pub const NAMES: [&'static str; 2] = ["current", "ignore"];

    pub fn as_str(self) -> &'static str {
        match self {
            Capacity::Current => "current",
            Capacity::Ignore => "ignore",
        }
    }

    pub fn parse(value: &str) -> Result<Self, ValueError> {
        match value {
            "current" => Ok(Capacity::Current),
            "ignore" => Ok(Capacity::Ignore),
            _ => Err(ValueError(format!(
                "must be one of {}",
                Capacity::NAMES.join(", ")
            ))),
        }
    }
}

/// A weight a simulation plays instead of the operator's own on the source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeightOverride {
    pub operator_id: i64,
    /// `None`: the operator takes no part, as if unlinked.
    pub weight: Option<Weight>,
}

impl WeightOverride {
    /// 0 plays the source as if the operator were unlinked; any other weight is bounded as a link's is.
    pub fn parse(operator_id: i64, weight: f64) -> Result<Self, ValueError> {
        let weight = if weight == 0.0 {
            None
        } else {
            let refused = |e: ValueError| ValueError(format!("{e}, or 0 (as if unlinked)"));
            Some(Weight::parse(weight).map_err(refused)?)
        };
        Ok(Self {
            operator_id,
            weight,
        })
    }

    fn played_weight(self) -> f64 {
        self.weight.map_or(0.0, Weight::get)
    }
}

/// What to simulate: how many contacts, by which strategy, within which capacity, with which weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    contacts: SimulatedContacts,
    /// `None`: the source's own.
    strategy: Option<Strategy>,
    capacity: Capacity,
    /// At most one per operator.
    weights: Vec<WeightOverride>,
}

impl Scenario {
    /// An operator's weight given more than once counts as the last one given, as a later key of a JSON
    /// object would (a list's items cannot be told unique by their operator in a schema).
    pub fn new(
        contacts: SimulatedContacts,
        strategy: Option<Strategy>,
        capacity: Capacity,
        mut weights: Vec<WeightOverride>,
    ) -> Result<Self, ValueError> {
        let mut seen = HashSet::with_capacity(weights.len());
        weights.reverse();
        weights.retain(|w| seen.insert(w.operator_id));
        weights.reverse();
        Ok(Self {
            contacts,
            strategy,
            capacity,
            weights,
        })
    }

    /// The weight an operator plays with: the one given, or their own.
    fn weight_of(&self, operator_id: i64, own_weight: f64) -> f64 {
        self.weights
            .iter()
            .find(|given| given.operator_id == operator_id)
            .map_or(own_weight, |given| given.played_weight())
    }
}

/// A source as it is now, which a simulation starts from.
#[derive(Debug, Clone, Copy)]
pub struct SourceNow<'a> {
    /// Its linked operators, in operator order, with their time off where it matters now.
    pub linked: &'a [LinkedOperator],
    /// Its own strategy.
    pub strategy: Strategy,
    /// Its smooth_weighted round, as stored.
    pub round: &'a Round,
    pub now: DateTime<Utc>,
}

/// What a simulation found.
#[derive(Debug, Clone, PartialEq)]
pub struct Simulation {
    /// The strategy played.
    pub strategy: Strategy,
    pub capacity: Capacity,
    /// Who could get the next contact, with the probability each has; empty when nobody can take it.
    pub next: Vec<NextChance>,
    /// Every linked operator, in the order given.
    pub operators: Vec<SimulatedOperator>,
    pub assigned: u32,
    pub unassigned: u32,
}

/// A candidate for the next contact and the probability that they get it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NextChance {
    pub operator_id: i64,
    pub probability: f64,
}

/// One linked operator in a simulation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimulatedOperator {
    pub operator_id: i64,
    /// The weight played: the one given, or their own; 0 when taken out.
    pub weight: f64,
    /// weight / Σ weights of the candidates for the first simulated contact; 0 for the others.
    pub target_share: f64,
    pub simulated_count: u32,
    /// simulated_count / the contacts assigned; 0 when none was.
    pub simulated_share: f64,
}

/// Contacts assigned one after another, on a copy of a source's operators, by the choices real assignments
/// make: the candidates a contact is chosen among are those the previous contacts left (a full operator drops
/// out; least_loaded sees the new loads; smooth_weighted's round moves on, or starts afresh when the
/// candidates change, as it does for real).
#[derive(Debug, Clone)]
pub struct Simulator {
    strategy: Strategy,
    capacity: Capacity,
    operators: Vec<SimulatedOperator>,
    /// Who may take the next contact, in operator order.
    candidates: Vec<Candidate>,
    round: Round,
    /// When the latest contact was assigned. Each simulated contact comes a microsecond after the one before
    /// (and after every real assignment), so that least_loaded's oldest-assignment tie-break sees them in the
    /// order they came, as it would the real ones.
    assigned_at: DateTime<Utc>,
    /// Recorded at the first contact.
    next: Option<Vec<NextChance>>,
    assigned: u32,
    unassigned: u32,
}

impl Simulator {
    /// The source's operators as the scenario plays them: every override must name a linked operator.
    /// smooth_weighted continues the source's stored round when the scenario continues the source as it is
    /// (its own strategy, its own weights); otherwise it starts a fresh round.
    pub fn new(scenario: &Scenario, source: SourceNow<'_>) -> Result<Self, ValueError> {
        if let Some(stranger) = scenario.weights.iter().find(|given| {
            !source
                .linked
                .iter()
                .any(|o| o.operator_id == given.operator_id)
        }) {
            return Err(ValueError(format!(
                "operator {} is not linked to the source",
                stranger.operator_id
            )));
        }
        let mut candidates = match scenario.capacity {
            Capacity::Current => evaluate(source.linked, source.now, &[]).candidates,
            Capacity::Ignore => source
                .linked
                .iter()
                .filter(|operator| operator.presence().accepting_at(source.now))
                // max_load 0 counts as 1, so that least_loaded can still rank its load.
                .map(|operator| Candidate {
                    max_load: operator.max_load.max(1),
                    ..operator.candidate()
                })
                .collect(),
        };
        for candidate in &mut candidates {
            candidate.weight = scenario.weight_of(candidate.operator_id, candidate.weight);
        }
        candidates.retain(|candidate| candidate.weight > 0.0);
        let total_weight: f64 = candidates.iter().map(|c| c.weight).sum();
        let operators = source
            .linked
            .iter()
            .map(|operator| {
                let weight = scenario.weight_of(operator.operator_id, operator.weight);
                let is_candidate = candidates
                    .iter()
                    .any(|c| c.operator_id == operator.operator_id);
                SimulatedOperator {
                    operator_id: operator.operator_id,
                    weight,
                    target_share: if is_candidate {
                        weight / total_weight
                    } else {
                        0.0
                    },
                    simulated_count: 0,
                    simulated_share: 0.0,
                }
            })
            .collect();
        let strategy = scenario.strategy.unwrap_or(source.strategy);
        let continues = strategy == source.strategy && scenario.weights.is_empty();
        let latest_assignment = source
            .linked
            .iter()
            .filter_map(|operator| operator.last_assigned_at)
            .max();
        Ok(Self {
            strategy,
            capacity: scenario.capacity,
            operators,
            candidates,
            round: if continues {
                source.round.clone()
            } else {
                Round::default()
            },
            assigned_at: latest_assignment.map_or(source.now, |latest| latest.max(source.now)),
            next: None,
            assigned: 0,
            unassigned: 0,
        })
    }

    /// Assigns one more contact: the operator who gets it, or `None` when nobody can take it (it is counted
    /// unassigned).
    pub fn assign<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Option<i64> {
        let choice = strategy::choose(self.strategy, &self.candidates, &self.round, rng);
        if self.next.is_none() {
            let chances = choice.as_ref().map_or_else(Vec::new, |choice| {
                self.candidates
                    .iter()
                    .zip(&choice.probabilities)
                    .map(|(candidate, &probability)| NextChance {
                        operator_id: candidate.operator_id,
                        probability,
                    })
                    .collect()
            });
            self.next = Some(chances);
        }
        let Some(choice) = choice else {
            self.unassigned += 1;
            return None;
        };
        if let Some(round) = choice.next_round {
            self.round = round;
        }
        self.assigned_at += TimeDelta::microseconds(1);
        if let Some(position) = self
            .candidates
            .iter()
            .position(|c| c.operator_id == choice.operator_id)
        {
            let candidate = &mut self.candidates[position];
            candidate.load += 1;
            candidate.last_assigned_at = Some(self.assigned_at);
            if self.capacity == Capacity::Current && candidate.load >= candidate.max_load {
                self.candidates.remove(position);
            }
        }
        if let Some(operator) = self
            .operators
            .iter_mut()
            .find(|o| o.operator_id == choice.operator_id)
        {
            operator.simulated_count += 1;
        }
        self.assigned += 1;
        Some(choice.operator_id)
    }

    /// What the contacts assigned so far came to.
    pub fn finish(self) -> Simulation {
        let assigned = self.assigned;
        let operators = self
            .operators
            .into_iter()
            .map(|operator| SimulatedOperator {
                simulated_share: if assigned > 0 {
                    f64::from(operator.simulated_count) / f64::from(assigned)
                } else {
                    0.0
                },
                ..operator
            })
            .collect();
        Simulation {
            strategy: self.strategy,
            capacity: self.capacity,
            next: self.next.unwrap_or_default(),
            operators,
            assigned,
            unassigned: self.unassigned,
        }
    }
}

/// Plays the scenario's contacts on the source as it is now, drawing from `rng` where the strategy draws.
pub fn simulate<R: Rng + ?Sized>(
    scenario: &Scenario,
    source: SourceNow<'_>,
    rng: &mut R,
) -> Result<Simulation, ValueError> {
    let mut simulator = Simulator::new(scenario, source)?;
    let contacts = scenario.contacts.get();
    for played in 1..=contacts {
        if simulator.assign(rng).is_none() {
            // Nothing a simulation does frees anyone: nobody takes the rest either.
            simulator.unassigned += contacts - played;
            break;
        }
    }
    Ok(simulator.finish())
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::domain::{Availability, RandomSource, TimeZoneName};

    fn linked(operator_id: i64, weight: f64, active_load: i64, max_load: i64) -> LinkedOperator {
        LinkedOperator {
            operator_id,
            weight,
            is_active: true,
            max_load,
            active_load,
            last_assigned_at: None,
            availability: Availability::Available,
            away_until: None,
            timezone: TimeZoneName::UTC,
            schedule: None,
            time_off: Vec::new(),
        }
    }

    fn scenario(
        contacts: u32,
        strategy: Strategy,
        capacity: Capacity,
        weights: Vec<WeightOverride>,
    ) -> Scenario {
        let contacts = SimulatedContacts::parse(i64::from(contacts)).unwrap();
        Scenario::new(contacts, Some(strategy), capacity, weights).unwrap()
    }

    fn source<'a>(
        linked: &'a [LinkedOperator],
        strategy: Strategy,
        round: &'a Round,
    ) -> SourceNow<'a> {
        SourceNow {
            linked,
            strategy,
            round,
            now: Utc::now(),
        }
    }

    fn run(scenario: &Scenario, linked: &[LinkedOperator]) -> Simulation {
        let round = Round::default();
        let source = source(linked, Strategy::WeightedRandom, &round);
        simulate(scenario, source, &mut StdRng::seed_from_u64(1)).unwrap()
    }

    fn counts(simulation: &Simulation) -> Vec<u32> {
        simulation
            .operators
            .iter()
            .map(|o| o.simulated_count)
            .collect()
    }

    #[test]
    fn contacts_are_between_1_and_100_000() {
        assert_eq!(SimulatedContacts::parse(1).unwrap().get(), 1);
        assert_eq!(SimulatedContacts::parse(100_000).unwrap().get(), 100_000);
        for bad in [0, -1, 100_001, i64::MAX] {
            assert!(SimulatedContacts::parse(bad).is_err(), "{bad}");
        }
        for name in Capacity::NAMES {
            assert_eq!(Capacity::parse(name).unwrap().as_str(), name);
        }
        assert!(Capacity::parse("unlimited").is_err());
    }

    #[test]
    fn current_capacity_fills_operators_to_max_load_and_leaves_the_rest_unassigned() {
        let operators = [
            linked(1, 1.0, 0, 2),
            linked(2, 1.0, 0, 3),
            linked(3, 5.0, 4, 4),
        ];
        for strategy in Strategy::NAMES.map(|name| Strategy::parse(name).unwrap()) {
            let simulation = run(
                &scenario(10, strategy, Capacity::Current, Vec::new()),
                &operators,
            );
            assert_eq!(counts(&simulation), vec![2, 3, 0], "{strategy:?}");
            assert_eq!((simulation.assigned, simulation.unassigned), (5, 5));
            // Operator 3 is full from the start: no candidate, no target.
            assert_eq!(simulation.operators[2].target_share, 0.0);
            assert_eq!(simulation.operators[0].target_share, 0.5);
            assert_eq!(simulation.operators[1].simulated_share, 0.6);
        }
    }

    #[test]
    fn ignored_capacity_counts_full_operators_but_not_those_who_do_not_accept() {
        let inactive = LinkedOperator {
            is_active: false,
            ..linked(3, 1.0, 0, 10)
        };
        let away = LinkedOperator {
            availability: Availability::Away,
            ..linked(4, 1.0, 0, 10)
        };
        let operators = [linked(1, 1.0, 2, 2), linked(2, 1.0, 0, 0), inactive, away];
        let simulation = run(
            &scenario(10, Strategy::SmoothWeighted, Capacity::Ignore, Vec::new()),
            &operators,
        );
        assert_eq!(counts(&simulation), vec![5, 5, 0, 0]);
        assert_eq!(simulation.unassigned, 0);
        let current = run(
            &scenario(10, Strategy::SmoothWeighted, Capacity::Current, Vec::new()),
            &operators,
        );
        assert_eq!(counts(&current), vec![0, 0, 0, 0]);
        assert_eq!((current.assigned, current.unassigned), (0, 10));
        assert!(current.next.is_empty(), "nobody can take the next contact");
        assert!(current.operators.iter().all(|o| o.simulated_share == 0.0));
    }

    #[test]
    fn ignored_capacity_still_ranks_loads_for_least_loaded() {
        // Operator 1 starts past their max_load; max_load 0 counts as 1.
        let operators = [
            linked(1, 1.0, 3, 2),
            linked(2, 1.0, 0, 0),
            linked(3, 1.0, 0, 4),
        ];
        let simulation = run(
            &scenario(1, Strategy::LeastLoaded, Capacity::Ignore, Vec::new()),
            &operators,
        );
        let next: Vec<(i64, f64)> = simulation
            .next
            .iter()
            .map(|n| (n.operator_id, n.probability))
            .collect();
        assert_eq!(next, vec![(1, 0.0), (2, 1.0), (3, 0.0)]);
    }

    #[test]
    fn given_weights_replace_the_operators_own_and_0_takes_an_operator_out() {
        let operators = [
            linked(1, 1.0, 0, 100),
            linked(2, 1.0, 0, 100),
            linked(3, 2.0, 0, 100),
        ];
        let weights = vec![
            WeightOverride::parse(1, 3.0).unwrap(),
            WeightOverride::parse(3, 0.0).unwrap(),
        ];
        let simulation = run(
            &scenario(8, Strategy::SmoothWeighted, Capacity::Current, weights),
            &operators,
        );
        let played: Vec<(f64, f64)> = simulation
            .operators
            .iter()
            .map(|o| (o.weight, o.target_share))
            .collect();
        assert_eq!(played, vec![(3.0, 0.75), (1.0, 0.25), (0.0, 0.0)]);
        assert_eq!(counts(&simulation), vec![6, 2, 0]);
        assert!(simulation.next.iter().all(|n| n.operator_id != 3));
    }

    #[test]
    fn weights_must_name_linked_operators_once_each_with_a_weight_a_link_could_have() {
        let operators = [linked(1, 1.0, 0, 10)];
        let round = Round::default();
        let stranger = scenario(
            5,
            Strategy::WeightedRandom,
            Capacity::Current,
            vec![WeightOverride::parse(9, 1.0).unwrap()],
        );
        let refused = Simulator::new(
            &stranger,
            source(&operators, Strategy::WeightedRandom, &round),
        );
        assert_eq!(
            refused.unwrap_err().0,
            "operator 9 is not linked to the source"
        );
        let twice = vec![
            WeightOverride::parse(1, 1.0).unwrap(),
            WeightOverride::parse(1, 2.0).unwrap(),
        ];
        let contacts = SimulatedContacts::parse(5).unwrap();
        let last_wins = Scenario::new(contacts, None, Capacity::Current, twice).unwrap();
        assert_eq!(
            last_wins.weights,
            vec![WeightOverride::parse(1, 2.0).unwrap()]
        );
        for bad in [-1.0, 1_000_001.0, f64::NAN, f64::INFINITY] {
            assert!(WeightOverride::parse(1, bad).is_err(), "{bad}");
        }
        assert_eq!(WeightOverride::parse(1, 0.0).unwrap().weight, None);
        assert!(WeightOverride::parse(1, 0.001).unwrap().weight.is_some());
    }

    #[test]
    fn weighted_random_next_is_the_weights_share_and_draws_what_the_server_would() {
        let operators = [linked(1, 1.0, 0, 1000), linked(2, 3.0, 0, 1000)];
        let round = Round::default();
        let play = scenario(200, Strategy::WeightedRandom, Capacity::Current, Vec::new());
        let mut simulator =
            Simulator::new(&play, source(&operators, Strategy::WeightedRandom, &round)).unwrap();
        let mut rng = StdRng::seed_from_u64(42);
        let simulated: Vec<Option<i64>> = (0..200).map(|_| simulator.assign(&mut rng)).collect();
        // A server seeded alike, choosing among the same candidates, one contact after another.
        let server = RandomSource::new(Some(42));
        let candidates: Vec<Candidate> = operators.iter().map(LinkedOperator::candidate).collect();
        let real: Vec<Option<i64>> = (0..200)
            .map(|_| {
                server
                    .choose(Strategy::WeightedRandom, &candidates, &Round::default())
                    .map(|choice| choice.operator_id)
            })
            .collect();
        assert_eq!(simulated, real);
        let next: Vec<f64> = simulator
            .finish()
            .next
            .iter()
            .map(|n| n.probability)
            .collect();
        assert_eq!(next, vec![0.25, 0.75]);
    }

    #[test]
    fn smooth_weighted_continues_the_stored_round_unless_the_scenario_changes_the_source() {
        let operators = [linked(1, 1.0, 0, 100), linked(2, 3.0, 0, 100)];
        let candidates: Vec<Candidate> = operators.iter().map(LinkedOperator::candidate).collect();
        let mut rng = StdRng::seed_from_u64(1);
        // One real assignment: operator 2 opens the round, and operator 1 is owed the next.
        let first = strategy::choose(
            Strategy::SmoothWeighted,
            &candidates,
            &Round::default(),
            &mut rng,
        )
        .unwrap();
        assert_eq!(first.operator_id, 2);
        let stored = first.next_round.unwrap();
        let mut next_of = |play: &Scenario, own: Strategy| {
            let simulation = simulate(play, source(&operators, own, &stored), &mut rng).unwrap();
            let chosen: Vec<i64> = simulation
                .next
                .iter()
                .filter(|n| n.probability == 1.0)
                .map(|n| n.operator_id)
                .collect();
            chosen
        };
        let own = scenario(1, Strategy::SmoothWeighted, Capacity::Current, Vec::new());
        assert_eq!(next_of(&own, Strategy::SmoothWeighted), vec![1]);
        // No strategy given is the source's own.
        let contacts = SimulatedContacts::parse(1).unwrap();
        let unnamed = Scenario::new(contacts, None, Capacity::Current, Vec::new()).unwrap();
        assert_eq!(next_of(&unnamed, Strategy::SmoothWeighted), vec![1]);
        // Another strategy was the source's own: its round is not this one's.
        assert_eq!(next_of(&own, Strategy::LeastLoaded), vec![2]);
        // The same weights given are still weights given: a fresh round.
        let reweighed = scenario(
            1,
            Strategy::SmoothWeighted,
            Capacity::Current,
            vec![WeightOverride::parse(2, 3.0).unwrap()],
        );
        assert_eq!(next_of(&reweighed, Strategy::SmoothWeighted), vec![2]);
    }

    #[test]
    fn least_loaded_sees_the_loads_the_simulated_contacts_leave() {
        let mut busy = linked(1, 1.0, 1, 4);
        busy.last_assigned_at = Some(Utc::now());
        let operators = [busy, linked(2, 1.0, 0, 2), linked(3, 1.0, 3, 10)];
        let play = scenario(6, Strategy::LeastLoaded, Capacity::Current, Vec::new());
        let round = Round::default();
        let mut simulator =
            Simulator::new(&play, source(&operators, Strategy::LeastLoaded, &round)).unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        let order: Vec<Option<i64>> = (0..6).map(|_| simulator.assign(&mut rng)).collect();
        // Loads 1/4, 0/2, 3/10: operator 2 (0), then 1 (1/4 < 3/10), then 3 twice (3/10, 4/10 < 1/2); all
        // at 1/2, operator 2's last contact is the oldest; then operator 2 is full, and 1's contact is older
        // than 3's.
        assert_eq!(
            order,
            vec![Some(2), Some(1), Some(3), Some(3), Some(2), Some(1)]
        );
        let simulation = simulator.finish();
        assert_eq!(
            simulation
                .next
                .iter()
                .map(|n| n.probability)
                .collect::<Vec<_>>(),
            vec![0.0, 1.0, 0.0]
        );
    }

    /// 10,000 contacts among weights 1, 2, 3 and 4 with capacity to spare, under each strategy: the largest
    /// deviation of any count from its target (n × weight / 10) after any contact, and the final shares.
    #[test]
    fn ten_thousand_contacts_with_weights_1_2_3_4() {
        let operators: Vec<LinkedOperator> = (1..=4)
            .map(|id| linked(id, id as f64, 0, 1_000_000))
            .collect();
        let round = Round::default();
        let mut largest_by_strategy = Vec::new();
        for strategy in Strategy::NAMES.map(|name| Strategy::parse(name).unwrap()) {
            let play = scenario(10_000, strategy, Capacity::Current, Vec::new());
            let mut simulator =
                Simulator::new(&play, source(&operators, strategy, &round)).unwrap();
            let mut rng = StdRng::seed_from_u64(2026);
            let mut counts = [0u32; 4];
            let mut largest: f64 = 0.0;
            for step in 1..=10_000u32 {
                let chosen = simulator.assign(&mut rng).expect("capacity to spare");
                counts[(chosen - 1) as usize] += 1;
                for (index, &count) in counts.iter().enumerate() {
                    let target = f64::from(step) * (index + 1) as f64 / 10.0;
                    largest = largest.max((f64::from(count) - target).abs());
                }
            }
            let simulation = simulator.finish();
            let shares: Vec<f64> = simulation
                .operators
                .iter()
                .map(|o| o.simulated_share)
                .collect();
            println!(
                "{}: largest deviation from target {largest:.4} contacts; final shares {shares:?} \
                 (targets [0.1, 0.2, 0.3, 0.4])",
                strategy.as_str()
            );
            largest_by_strategy.push((strategy, largest, shares));
        }
        for (strategy, largest, shares) in largest_by_strategy {
            match strategy {
                Strategy::SmoothWeighted => {
                    assert!(largest <= 1.0, "{largest}");
                    assert_eq!(shares, vec![0.1, 0.2, 0.3, 0.4]);
                }
                // Binomial(10,000, p): 5σ is under 0.025 of share for every p here.
                Strategy::WeightedRandom => {
                    for (index, share) in shares.iter().enumerate() {
                        let target = (index + 1) as f64 / 10.0;
                        assert!((share - target).abs() < 0.025, "{shares:?}");
                    }
                }
                // Equal max_loads: least_loaded evens out the loads, weights only break ties.
                Strategy::LeastLoaded => assert_eq!(shares, vec![0.25; 4]),
            }
        }
    }
}
