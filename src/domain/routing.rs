//! Who gets a contact: which linked operators are candidates (and why the others are not), and the
//! choose-and-claim loop that new contacts, queue drains and hand-ons share, by the source's strategy
//! ([`super::strategy`]). Pure rules over what the store
//! loaded; the claim of capacity (the one step that must re-check the database) is the caller's.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use rand::SeedableRng;
use rand::rngs::StdRng;

use chrono::{DateTime, Utc};

use super::strategy::{
    self, Candidate, Choice, Decision, Excluded, Exclusion, Field, Round, Strategy,
};
use super::{Availability, Clock, Period, Presence, Schedule, TimeZoneName};

/// An operator linked to a source, as loaded for routing.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedOperator {
    pub operator_id: i64,
    pub weight: f64,
    pub is_active: bool,
    pub max_load: i64,
    pub active_load: i64,
    /// When they were last given a contact, by any source.
    pub last_assigned_at: Option<DateTime<Utc>>,
    pub availability: Availability,
    pub away_until: Option<DateTime<Utc>>,
    pub timezone: TimeZoneName,
    pub schedule: Option<Schedule>,
    /// Their time off (the store may leave out what is over).
    pub time_off: Vec<Period>,
}

impl LinkedOperator {
    /// The operator as a candidate, with their weight, load and capacity as loaded.
    pub fn candidate(&self) -> Candidate {
        Candidate {
            operator_id: self.operator_id,
            weight: self.weight,
            load: self.active_load,
            max_load: self.max_load,
            last_assigned_at: self.last_assigned_at,
        }
    }

    pub fn presence(&self) -> Presence<'_> {
        Presence {
            is_active: self.is_active,
            availability: self.availability,
            away_until: self.away_until,
            timezone: self.timezone,
            schedule: self.schedule.as_ref(),
            time_off: &self.time_off,
        }
    }
}

/// The linked operators as a field at `now`: candidates (accepting, below max_load, not among `refusers`) in
/// the order given, and the others with why they are left out — a refusal first, then not accepting, then
/// full.
pub fn evaluate(linked: &[LinkedOperator], now: DateTime<Utc>, refusers: &[i64]) -> Field {
    let mut field = Field::default();
    for operator in linked {
        let why = if refusers.contains(&operator.operator_id) {
            Some(Exclusion::Declined)
        } else if let Some(because) = operator.presence().not_accepting_because(now) {
            Some(because.into())
        } else if operator.active_load >= operator.max_load {
            Some(Exclusion::Full)
        } else {
            None
        };
        match why {
            Some(why) => field.excluded.push(Excluded {
                operator_id: operator.operator_id,
                why,
            }),
            None => field.candidates.push(operator.candidate()),
        }
    }
    field
}

/// The candidates of [`evaluate`] alone.
pub fn candidates(linked: &[LinkedOperator], now: DateTime<Utc>) -> Vec<Candidate> {
    evaluate(linked, now, &[]).candidates
}

/// The random source of routing, shared by every request of an instance. Seeded, it makes the sequence of
/// draws repeatable (tests); by default it is seeded from the operating system.
#[derive(Clone)]
pub struct RandomSource(Arc<Mutex<StdRng>>);

impl RandomSource {
    pub fn new(seed: Option<u64>) -> Self {
        Self(Arc::new(Mutex::new(random_generator(seed))))
    }

    /// The strategy's choice among the candidates, drawing from this source when it draws at all.
    pub fn choose(
        &self,
        strategy: Strategy,
        candidates: &[Candidate],
        round: &Round,
    ) -> Option<Choice> {
        let mut rng = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        strategy::choose(strategy, candidates, round, &mut *rng)
    }
}

/// The generator routing draws from: seeded, the same draws every time; without a seed, seeded by the
/// operating system. A simulation seeded like a server draws what that server's first choices will.
pub fn random_generator(seed: Option<u64>) -> StdRng {
    match seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_os_rng(),
    }
}

/// What routing decides with besides the store's rows: its random source and its clock.
#[derive(Clone)]
pub struct Routing {
    pub random: RandomSource,
    pub clock: Clock,
}

/// Takes one unit of an operator's capacity, re-checked against what is committed now.
pub trait CapacityClaim {
    /// What a successful claim returns (the operator as the claim left them).
    type Claimed: Send;
    type Error;
    /// `None` when the operator is no longer active or has no capacity left.
    fn claim(
        &mut self,
        operator_id: i64,
    ) -> impl Future<Output = Result<Option<Self::Claimed>, Self::Error>> + Send;
}

/// How a source chooses: its strategy and, for smooth_weighted, its round as the choices so far left it.
#[derive(Debug, Clone, Default)]
pub struct Chooser {
    pub strategy: Strategy,
    pub round: Round,
    /// The round moved on, and is to be stored with the assignment.
    pub round_changed: bool,
}

impl Chooser {
    pub fn new(strategy: Strategy, round: Round) -> Self {
        Self {
            strategy,
            round,
            round_changed: false,
        }
    }
}

/// Chooses among the field's candidates and claims capacity on the one chosen. Should the claim fail (a
/// concurrent transaction took the last slot), that operator is excluded as full — in `field`, and reported
/// to `refused` so that the caller can drop them wherever else they stand — and the choice is made again
/// among the rest, as if they had been the candidates all along. The decision records the final choice, or
/// that there was nobody.
pub async fn choose_and_claim<C: CapacityClaim>(
    field: &mut Field,
    chooser: &mut Chooser,
    random: &RandomSource,
    claimer: &mut C,
    mut refused: impl FnMut(i64) + Send,
) -> Result<(Option<C::Claimed>, Decision), C::Error> {
    while let Some(choice) = random.choose(chooser.strategy, &field.candidates, &chooser.round) {
        if let Some(claimed) = claimer.claim(choice.operator_id).await? {
            let decision = Decision::chosen(chooser.strategy, field, &choice);
            if let Some(next) = choice.next_round {
                chooser.round = next;
                chooser.round_changed = true;
            }
            return Ok((Some(claimed), decision));
        }
        field.exclude(choice.operator_id, Exclusion::Full);
        refused(choice.operator_id);
    }
    Ok((None, Decision::nobody(chooser.strategy, field)))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::future::ready;

    use super::*;

    /// Capacity as a map of free slots; claims succeed while a slot is left.
    struct Slots(HashMap<i64, i64>);

    impl CapacityClaim for Slots {
        type Claimed = i64;
        type Error = ();
        fn claim(
            &mut self,
            operator_id: i64,
        ) -> impl Future<Output = Result<Option<i64>, ()>> + Send {
            let free = self.0.entry(operator_id).or_default();
            let claimed = (*free > 0).then(|| {
                *free -= 1;
                operator_id
            });
            ready(Ok(claimed))
        }
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        let waker = std::task::Waker::noop();
        let mut context = std::task::Context::from_waker(waker);
        let mut future = std::pin::pin!(future);
        match future.as_mut().poll(&mut context) {
            std::task::Poll::Ready(output) => output,
            std::task::Poll::Pending => panic!("the claims are ready at once"),
        }
    }

    fn linked(
        operator_id: i64,
        is_active: bool,
        max_load: i64,
        active_load: i64,
    ) -> LinkedOperator {
        LinkedOperator {
            operator_id,
            weight: 1.0,
            is_active,
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

    fn candidate(operator_id: i64, weight: f64) -> Candidate {
        Candidate {
            operator_id,
            weight,
            load: 0,
            max_load: 1,
            last_assigned_at: None,
        }
    }

    #[test]
    fn the_field_is_the_accepting_operators_below_max_load_and_why_the_others_are_not() {
        let now = chrono::Utc::now();
        let away = LinkedOperator {
            availability: Availability::Away,
            ..linked(6, true, 3, 0)
        };
        let off_shift = LinkedOperator {
            schedule: Some(Schedule(Vec::new())),
            ..linked(7, true, 3, 0)
        };
        let offline = LinkedOperator {
            availability: Availability::Offline,
            ..linked(8, true, 3, 3)
        };
        let on_time_off = LinkedOperator {
            time_off: vec![Period {
                starts_at: now - chrono::TimeDelta::hours(1),
                ends_at: now + chrono::TimeDelta::hours(1),
            }],
            ..linked(10, true, 3, 0)
        };
        let field = evaluate(
            &[
                linked(1, true, 3, 2),
                linked(2, false, 3, 0),
                linked(3, true, 3, 3),
                linked(4, true, 0, 0),
                linked(5, true, 5, 7),
                away,
                off_shift,
                offline,
                linked(9, true, 3, 0),
                on_time_off,
            ],
            now,
            &[9],
        );
        assert_eq!(
            field.candidates,
            vec![Candidate {
                operator_id: 1,
                weight: 1.0,
                load: 2,
                max_load: 3,
                last_assigned_at: None,
            }]
        );
        let why: Vec<(i64, &str)> = field
            .excluded
            .iter()
            .map(|e| (e.operator_id, e.why.as_str()))
            .collect();
        assert_eq!(
            why,
            vec![
                (2, "inactive"),
                (3, "full"),
                (4, "full"),
                (5, "full"),
                (6, "away"),
                (7, "off_shift"),
                (8, "offline"),
                (9, "declined"),
                (10, "time_off"),
            ]
        );
    }

    #[test]
    fn a_refused_claim_excludes_the_operator_as_full_and_chooses_again() {
        let mut field = Field {
            candidates: vec![candidate(1, 1000.0), candidate(2, 1.0)],
            excluded: Vec::new(),
        };
        // Operator 1 (almost always drawn first) turns out to be full.
        let mut slots = Slots(HashMap::from([(1, 0), (2, 1)]));
        let mut refused = Vec::new();
        let random = RandomSource::new(Some(5));
        let mut chooser = Chooser::default();
        let (claimed, decision) = block_on(choose_and_claim(
            &mut field,
            &mut chooser,
            &random,
            &mut slots,
            |id| refused.push(id),
        ))
        .unwrap();
        assert_eq!(claimed, Some(2));
        assert_eq!(refused, vec![1]);
        assert_eq!(decision.chosen_operator_id, Some(2));
        assert_eq!(decision.candidates, vec![(candidate(2, 1.0), 1.0)]);
        assert_eq!(
            decision.excluded,
            vec![Excluded {
                operator_id: 1,
                why: Exclusion::Full
            }]
        );
        let (claimed, decision) = block_on(choose_and_claim(
            &mut field,
            &mut chooser,
            &random,
            &mut slots,
            |_| {},
        ))
        .unwrap();
        assert_eq!(claimed, None, "nobody has capacity left");
        assert_eq!(decision.chosen_operator_id, None);
        assert!(field.candidates.is_empty());
        assert_eq!(decision.excluded.len(), 2);
    }

    #[test]
    fn the_smooth_round_moves_on_only_with_a_claim() {
        let mut field = Field {
            candidates: vec![candidate(1, 1.0), candidate(2, 3.0)],
            excluded: Vec::new(),
        };
        let mut slots = Slots(HashMap::from([(1, 5), (2, 5)]));
        let mut chooser = Chooser::new(Strategy::SmoothWeighted, Round::default());
        let random = RandomSource::new(Some(1));
        let (claimed, _) = block_on(choose_and_claim(
            &mut field,
            &mut chooser,
            &random,
            &mut slots,
            |_| {},
        ))
        .unwrap();
        assert_eq!(claimed, Some(2), "the heavier operator opens a fresh round");
        assert!(chooser.round_changed);
        assert_eq!(chooser.round.assignments, 1);
    }

    #[test]
    fn a_seeded_source_repeats_its_choices() {
        let candidates = [candidate(1, 1.0), candidate(2, 3.0)];
        let draws = |seed| {
            let random = RandomSource::new(Some(seed));
            (0..50)
                .map(|_| {
                    random
                        .choose(Strategy::WeightedRandom, &candidates, &Round::default())
                        .unwrap()
                        .operator_id
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(9), draws(9));
        assert_ne!(draws(9), draws(10));
    }
}
