//! The seed's weighted random choice: each free operator is drawn with probability weight / sum of weights.

use rand::Rng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;

/// An operator who may take the contact: linked to the source, active, and below max_load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub operator_id: i64,
    pub weight: f64,
    /// max_load less the active load, as read: how many contacts the operator could take.
    pub free_slots: i64,
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

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
