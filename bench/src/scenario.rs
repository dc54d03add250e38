//! The scenario, created through the API before the run: operators with weights and max_load, sources, and
//! every operator linked to every source.

use serde::Deserialize;
use serde_json::json;

use crate::api::Api;

pub struct Scenario {
    /// Unique to this run, so that names and lead identities never collide with an earlier run's on a
    /// server that is reused (--url).
    pub tag: String,
    pub source_ids: Vec<i64>,
    pub operators: Vec<Operator>,
}

#[derive(Debug, Clone)]
pub struct Operator {
    pub id: i64,
    pub weight: f64,
    pub max_load: u64,
}

#[derive(Deserialize)]
struct Created {
    id: i64,
}

impl Scenario {
    pub async fn create(
        api: &Api,
        sources: u64,
        weights: &[f64],
        max_load: u64,
    ) -> anyhow::Result<Self> {
        let tag = run_tag();
        let mut operators = Vec::with_capacity(weights.len());
        for (number, &weight) in weights.iter().enumerate() {
            let body = json!({"name": format!("bench {tag} operator {}", number + 1), "max_load": max_load});
            let created: Created = api.post("/operators/", &body).await?;
            operators.push(Operator {
                id: created.id,
                weight,
                max_load,
            });
        }
        let mut source_ids = Vec::new();
        for number in 1..=sources {
            let body = json!({"name": format!("bench {tag} source {number}")});
            let source: Created = api.post("/sources/", &body).await?;
            for operator in &operators {
                let link = json!({"operator_id": operator.id, "weight": operator.weight});
                let path = format!("/sources/{}/operators", source.id);
                let _: serde_json::Value = api.post(&path, &link).await?;
            }
            source_ids.push(source.id);
        }
        Ok(Self {
            tag,
            source_ids,
            operators,
        })
    }
}

/// Time and process id, in base 36: short, and different for every run on one machine.
fn run_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    let mut value = nanos ^ (u64::from(std::process::id()) << 40);
    let mut digits = Vec::new();
    while value > 0 {
        digits.push(char::from_digit((value % 36) as u32, 36).unwrap_or('0'));
        value /= 36;
    }
    digits.iter().rev().collect()
}
