//! What must hold after any run, checked through the API: nobody over max_load, counts that add up, shares
//! that follow the weights, one lead per returning identity.

use serde::{Deserialize, Serialize};

use crate::api::Api;
use crate::run::Tally;
use crate::scenario::Scenario;

/// How far (in standard deviations of a binomial) an operator's count may stray from weight × assigned.
/// At 5 σ a correct service fails this about once in 1.7 million checks.
const SHARE_TOLERANCE_SIGMAS: f64 = 5.0;

#[derive(Debug, Serialize)]
pub struct Check {
    pub name: String,
    pub verdict: Verdict,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Passed,
    Failed,
    /// The check does not apply to this run (e.g. shares when capacity ran out).
    Skipped,
}

#[derive(Deserialize)]
struct OperatorStats {
    active_contacts_count: i64,
}

#[derive(Deserialize)]
struct SourceStats {
    total_contacts: i64,
    assigned_contacts: i64,
    unassigned_contacts: i64,
    operator_distribution: Vec<OperatorShare>,
}

#[derive(Deserialize)]
struct OperatorShare {
    operator_id: Option<i64>,
    count: i64,
    target_share: Option<f64>,
}

/// `preloaded[i]` and `run.created_per_source[i]` are the 201s the bench got for source i.
pub async fn check(
    api: &Api,
    scenario: &Scenario,
    preloaded: &[u64],
    run: &Tally,
) -> anyhow::Result<Vec<Check>> {
    let mut checks = vec![max_load_respected(api, scenario).await?];
    for (index, &source_id) in scenario.source_ids.iter().enumerate() {
        let stats: SourceStats = api.get(&format!("/stats/sources/{source_id}")).await?;
        let acknowledged = Acknowledged {
            preloaded: preloaded[index],
            measured: run.created_per_source[index],
        };
        checks.push(counts_add_up(source_id, &stats, acknowledged));
        checks.push(shares_follow_weights(source_id, &stats));
    }
    if !run.leads_per_identity.is_empty() {
        checks.push(one_lead_per_identity(run));
    }
    Ok(checks)
}

pub fn all_passed(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.verdict != Verdict::Failed)
}

async fn max_load_respected(api: &Api, scenario: &Scenario) -> anyhow::Result<Check> {
    let mut over = Vec::new();
    let mut fullest = (0, 0);
    for operator in &scenario.operators {
        let stats: OperatorStats = api
            .get(&format!("/operators/{}/stats", operator.id))
            .await?;
        // Against the max_load the scenario set, not the one the server reports: nothing changes it.
        let max_load = operator.max_load as i64;
        if stats.active_contacts_count > max_load {
            over.push(format!(
                "operator {} has {} active contacts, max_load {max_load}",
                operator.id, stats.active_contacts_count
            ));
        }
        fullest = fullest.max((stats.active_contacts_count, max_load));
    }
    let (load, max_load) = fullest;
    Ok(Check {
        name: "no operator over max_load".into(),
        verdict: if over.is_empty() {
            Verdict::Passed
        } else {
            Verdict::Failed
        },
        detail: if over.is_empty() {
            format!(
                "{} operators, highest load {load} of max_load {max_load}",
                scenario.operators.len()
            )
        } else {
            over.join("; ")
        },
    })
}

/// total_contacts is the sum of the distribution rows, and every 201 the bench got is counted: no more
/// (nothing phantom), no fewer (a 201 means committed).
fn counts_add_up(source_id: i64, stats: &SourceStats, acknowledged: Acknowledged) -> Check {
    let distributed: i64 = stats
        .operator_distribution
        .iter()
        .map(|row| row.count)
        .sum();
    let created = (acknowledged.preloaded + acknowledged.measured) as i64;
    let holds = stats.total_contacts == distributed && stats.total_contacts == created;
    Check {
        name: format!("source {source_id}: counts add up"),
        verdict: if holds {
            Verdict::Passed
        } else {
            Verdict::Failed
        },
        detail: format!(
            "total_contacts {}, sum of operator_distribution {distributed}, 201s received {created} \
             ({} preloaded, {} in the run)",
            stats.total_contacts, acknowledged.preloaded, acknowledged.measured
        ),
    }
}

/// The 201s the bench got for one source.
#[derive(Debug, Clone, Copy)]
struct Acknowledged {
    preloaded: u64,
    measured: u64,
}

/// With capacity to spare every contact is a weighted draw, so an operator's count is binomial
/// (assigned, target_share). When capacity ran out the full operators drop out of the draw and the shares
/// legitimately drift, so the check is skipped.
fn shares_follow_weights(source_id: i64, stats: &SourceStats) -> Check {
    let name = format!("source {source_id}: shares follow the weights");
    if stats.unassigned_contacts > 0 {
        return Check {
            name,
            verdict: Verdict::Skipped,
            detail: format!(
                "capacity ran out ({} contacts unassigned)",
                stats.unassigned_contacts
            ),
        };
    }
    let assigned = stats.assigned_contacts as f64;
    let mut worst = 0.0_f64;
    let mut strays = Vec::new();
    for row in &stats.operator_distribution {
        let (Some(operator_id), Some(target)) = (row.operator_id, row.target_share) else {
            continue;
        };
        let expected = assigned * target;
        let sigma = (assigned * target * (1.0 - target)).sqrt();
        // The +1 keeps tiny samples, where σ is below one contact, from failing on rounding.
        let deviation = (row.count as f64 - expected).abs();
        let sigmas = deviation / sigma.max(f64::MIN_POSITIVE);
        if deviation > SHARE_TOLERANCE_SIGMAS * sigma + 1.0 {
            strays.push(format!(
                "operator {operator_id}: {} contacts, expected {expected:.0} ± {sigma:.1} ({sigmas:.1} σ off)",
                row.count
            ));
        }
        if sigma > 0.0 {
            worst = worst.max(sigmas);
        }
    }
    Check {
        name,
        verdict: if strays.is_empty() {
            Verdict::Passed
        } else {
            Verdict::Failed
        },
        detail: if strays.is_empty() {
            format!(
                "{} assigned, every operator within {SHARE_TOLERANCE_SIGMAS} σ (worst {worst:.1} σ)",
                stats.assigned_contacts
            )
        } else {
            strays.join("; ")
        },
    }
}

fn one_lead_per_identity(run: &Tally) -> Check {
    let split: Vec<_> = run
        .leads_per_identity
        .iter()
        .filter(|(_, leads)| leads.len() != 1)
        .collect();
    Check {
        name: "one lead per returning identity".into(),
        verdict: if split.is_empty() {
            Verdict::Passed
        } else {
            Verdict::Failed
        },
        detail: match split.first() {
            None => format!(
                "{} identities, each always answered with the same lead",
                run.leads_per_identity.len()
            ),
            Some((identity, leads)) => format!(
                "{} identities answered with several leads, e.g. identity {identity}: leads {leads:?}",
                split.len()
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(counts: &[(i64, f64)], unassigned: i64) -> SourceStats {
        let assigned: i64 = counts.iter().map(|(count, _)| count).sum();
        let mut operator_distribution: Vec<OperatorShare> = counts
            .iter()
            .zip(1..)
            .map(|(&(count, target), id)| OperatorShare {
                operator_id: Some(id),
                count,
                target_share: Some(target),
            })
            .collect();
        operator_distribution.push(OperatorShare {
            operator_id: None,
            count: unassigned,
            target_share: None,
        });
        SourceStats {
            total_contacts: assigned + unassigned,
            assigned_contacts: assigned,
            unassigned_contacts: unassigned,
            operator_distribution,
        }
    }

    fn acknowledged(preloaded: u64, measured: u64) -> Acknowledged {
        Acknowledged {
            preloaded,
            measured,
        }
    }

    #[test]
    fn counts_must_match_the_201s_received() {
        let source = stats(&[(30, 0.25), (70, 0.75)], 5);
        assert_eq!(
            counts_add_up(1, &source, acknowledged(5, 100)).verdict,
            Verdict::Passed
        );
        // A contact acknowledged but not counted, and one counted but never acknowledged.
        assert_eq!(
            counts_add_up(1, &source, acknowledged(5, 101)).verdict,
            Verdict::Failed
        );
        assert_eq!(
            counts_add_up(1, &source, acknowledged(5, 99)).verdict,
            Verdict::Failed
        );
    }

    #[test]
    fn shares_within_five_sigma_pass_and_beyond_fail() {
        // 1000 draws at 25 %: σ ≈ 13.7, so 250 ± 68 passes.
        let close = stats(&[(300, 0.25), (700, 0.75)], 0);
        assert_eq!(shares_follow_weights(1, &close).verdict, Verdict::Passed);
        let far = stats(&[(500, 0.25), (500, 0.75)], 0);
        assert_eq!(shares_follow_weights(1, &far).verdict, Verdict::Failed);
    }

    #[test]
    fn shares_are_not_judged_once_capacity_ran_out() {
        let full = stats(&[(500, 0.25), (500, 0.75)], 1);
        assert_eq!(shares_follow_weights(1, &full).verdict, Verdict::Skipped);
    }
}
