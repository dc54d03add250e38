//! Who gets a contact: which linked operators are candidates, the seed's weighted random choice among them,
//! and the draw-and-claim loop that new contacts and queue drains share. Pure rules over what the store
//! loaded; the claim of capacity (the one step that must re-check the database) is the caller's.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use chrono::{DateTime, Utc};

use super::{Availability, Clock, Period, Presence, Schedule, TimeZoneName};

/// An operator linked to a source, as loaded for routing.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedOperator {
    pub operator_id: i64,
    pub weight: f64,
    pub is_active: bool,
    pub max_load: i64,
    pub active_load: i64,
    pub availability: Availability,
    pub away_until: Option<DateTime<Utc>>,
    pub timezone: TimeZoneName,
    pub schedule: Option<Schedule>,
    /// Their time off (the store may leave out what is over).
    pub time_off: Vec<Period>,
}

impl LinkedOperator {
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

/// An operator who may take the contact: linked to the source, accepting, and below max_load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub operator_id: i64,
    pub weight: f64,
    /// max_load less the active load, as read: how many contacts the operator could take.
    pub free_slots: i64,
}

/// The linked operators who may take a contact at `now`: accepting (active, available, on shift, not on time
/// off) and below max_load, in the order given.
pub fn candidates(linked: &[LinkedOperator], now: DateTime<Utc>) -> Vec<Candidate> {
    linked
        .iter()
        .filter(|o| o.active_load < o.max_load && o.presence().accepting_at(now))
        .map(|o| Candidate {
            operator_id: o.operator_id,
            weight: o.weight,
            free_slots: o.max_load - o.active_load,
        })
        .collect()
}

/// Picks one candidate by weight, or none when there is no candidate. Weights are positive and finite by
/// construction ([`super::Weight`]); should any be unusable the first candidate is taken rather than none,
/// since leaving a contact unassigned while an operator is free would be the worse error.
pub fn choose_operator<R: Rng + ?Sized>(
    candidates: &[Candidate],
    rng: &mut R,
) -> Option<Candidate> {
    match candidates {
        [] => None,
        [only] => Some(*only),
        _ => {
            let index = WeightedIndex::new(candidates.iter().map(|c| c.weight))
                .map(|weights| weights.sample(rng))
                .unwrap_or(0);
            Some(candidates[index])
        }
    }
}

/// The random source of routing, shared by every request of an instance. Seeded, it makes the sequence of
/// draws repeatable (tests); by default it is seeded from the operating system.
#[derive(Clone)]
pub struct RandomSource(Arc<Mutex<StdRng>>);

impl RandomSource {
    pub fn new(seed: Option<u64>) -> Self {
        let rng = match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Self(Arc::new(Mutex::new(rng)))
    }

    pub fn choose(&self, candidates: &[Candidate]) -> Option<Candidate> {
        let mut rng = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        choose_operator(candidates, &mut *rng)
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

/// Draws among the candidates and claims capacity on the one drawn. Should the claim fail (a concurrent
/// transaction took the last slot), that operator is dropped — from `candidates`, and reported to `refused`
/// so that the caller can drop them wherever else they stand — and the draw is repeated among the rest, as if
/// they had been the candidates all along.
pub async fn draw_and_claim<C: CapacityClaim>(
    candidates: &mut Vec<Candidate>,
    random: &RandomSource,
    claimer: &mut C,
    mut refused: impl FnMut(i64) + Send,
) -> Result<Option<C::Claimed>, C::Error> {
    while let Some(pick) = random.choose(candidates) {
        if let Some(claimed) = claimer.claim(pick.operator_id).await? {
            return Ok(Some(claimed));
        }
        candidates.retain(|c| c.operator_id != pick.operator_id);
        refused(pick.operator_id);
    }
    Ok(None)
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

    #[test]
    fn candidates_are_the_accepting_operators_below_max_load() {
        let linked = |operator_id, is_active, max_load, active_load| LinkedOperator {
            operator_id,
            weight: 1.0,
            is_active,
            max_load,
            active_load,
            availability: Availability::Available,
            away_until: None,
            timezone: TimeZoneName::UTC,
            schedule: None,
            time_off: Vec::new(),
        };
        let away = LinkedOperator {
            availability: Availability::Away,
            ..linked(6, true, 3, 0)
        };
        let off_shift = LinkedOperator {
            schedule: Some(Schedule(Vec::new())),
            ..linked(7, true, 3, 0)
        };
        let found = candidates(
            &[
                linked(1, true, 3, 2),
                linked(2, false, 3, 0),
                linked(3, true, 3, 3),
                linked(4, true, 0, 0),
                linked(5, true, 5, 7),
                away,
                off_shift,
            ],
            chrono::Utc::now(),
        );
        assert_eq!(
            found,
            vec![Candidate {
                operator_id: 1,
                weight: 1.0,
                free_slots: 1
            }]
        );
    }

    #[test]
    fn a_refused_claim_drops_the_operator_and_draws_again() {
        let mut candidates = vec![
            Candidate {
                operator_id: 1,
                weight: 1000.0,
                free_slots: 1,
            },
            Candidate {
                operator_id: 2,
                weight: 1.0,
                free_slots: 1,
            },
        ];
        // Operator 1 (almost always drawn first) turns out to be full.
        let mut slots = Slots(HashMap::from([(1, 0), (2, 1)]));
        let mut refused = Vec::new();
        let random = RandomSource::new(Some(5));
        let claimed = block_on(draw_and_claim(&mut candidates, &random, &mut slots, |id| {
            refused.push(id)
        }));
        assert_eq!(claimed, Ok(Some(2)));
        assert_eq!(refused, vec![1]);
        assert_eq!(candidates.len(), 1);
        let claimed = block_on(draw_and_claim(&mut candidates, &random, &mut slots, |_| {}));
        assert_eq!(claimed, Ok(None), "nobody has capacity left");
        assert!(candidates.is_empty());
    }

    #[test]
    fn a_seeded_source_repeats_its_draws() {
        let candidates = [
            Candidate {
                operator_id: 1,
                weight: 1.0,
                free_slots: 1,
            },
            Candidate {
                operator_id: 2,
                weight: 3.0,
                free_slots: 1,
            },
        ];
        let draws = |seed| {
            let random = RandomSource::new(Some(seed));
            (0..50)
                .map(|_| random.choose(&candidates).unwrap().operator_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(9), draws(9));
        assert_ne!(draws(9), draws(10));
    }

    fn draw_counts(candidates: &[Candidate], draws: usize, seed: u64) -> Vec<usize> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut counts = vec![0; candidates.len()];
        for _ in 0..draws {
            let pick = choose_operator(candidates, &mut rng).unwrap();
            counts[candidates.iter().position(|c| *c == pick).unwrap()] += 1;
        }
        counts
    }

    #[test]
    fn no_candidates_means_no_operator() {
        assert_eq!(choose_operator(&[], &mut StdRng::seed_from_u64(1)), None);
    }

    #[test]
    fn weights_10_and_30_split_25_75() {
        let candidates = [
            Candidate {
                operator_id: 1,
                weight: 10.0,
                free_slots: 1,
            },
            Candidate {
                operator_id: 2,
                weight: 30.0,
                free_slots: 1,
            },
        ];
        let counts = draw_counts(&candidates, 40_000, 7);
        // Binomial(40000, 0.25): σ ≈ 87, so ±5σ is ±435.
        assert!((9_565..=10_435).contains(&counts[0]), "{counts:?}");
    }

    #[test]
    fn fractional_weights_are_honoured() {
        let candidates = [
            Candidate {
                operator_id: 1,
                weight: 0.5,
                free_slots: 1,
            },
            Candidate {
                operator_id: 2,
                weight: 1.5,
                free_slots: 1,
            },
            Candidate {
                operator_id: 3,
                weight: 2.0,
                free_slots: 1,
            },
        ];
        let counts = draw_counts(&candidates, 40_000, 11);
        // Expected 5000 / 15000 / 20000; 5σ is under 500 for each.
        assert!((4_500..=5_500).contains(&counts[0]), "{counts:?}");
        assert!((14_500..=15_500).contains(&counts[1]), "{counts:?}");
        assert!((19_500..=20_500).contains(&counts[2]), "{counts:?}");
    }

    #[test]
    fn the_same_seed_gives_the_same_choices() {
        let candidates = [
            Candidate {
                operator_id: 1,
                weight: 1.0,
                free_slots: 1,
            },
            Candidate {
                operator_id: 2,
                weight: 2.0,
                free_slots: 1,
            },
        ];
        assert_eq!(
            draw_counts(&candidates, 100, 3),
            draw_counts(&candidates, 100, 3)
        );
    }
}
