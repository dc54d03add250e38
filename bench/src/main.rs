//! leadrouter-bench: a load generator and invariant checker for leadrouter, over HTTP.
//!
//! set up a scenario (scenario.rs) → preload history → the measured run (run.rs, driven by workload.rs) →
//! read the server's memory → check the invariants (invariants.rs) → with --raw-sqlite, raw SQLite's rate for
//! the same write (raw_sqlite.rs) → print the summary (report.rs).

mod api;
mod cli;
mod invariants;
mod raw_sqlite;
mod report;
mod run;
mod scenario;
mod server;
mod workload;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use api::Api;
use cli::{Args, Stop, Workload};
use report::{Invariants, Measured, ScenarioSummary, ServerSummary, Summary};
use scenario::Scenario;
use server::LocalServer;
use workload::Plan;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // Dropping `bench` on Ctrl-C drops the local server's guard inside it, which stops the server.
    let outcome = tokio::select! {
        outcome = bench(&args) => outcome,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("leadrouter-bench: interrupted");
            return ExitCode::from(130);
        }
    };
    match outcome {
        Ok(summary) => {
            if args.json {
                match serde_json::to_string_pretty(&summary) {
                    Ok(json) => println!("{json}"),
                    Err(error) => eprintln!("leadrouter-bench: encoding the summary: {error}"),
                }
            } else {
                print!("{}", summary.to_table());
            }
            if summary.invariants.passed {
                ExitCode::SUCCESS
            } else {
                announce_broken_invariants(&summary);
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("leadrouter-bench: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn bench(args: &Args) -> anyhow::Result<Summary> {
    let weights = args.operator_weights()?;
    let concurrency = args.concurrency as usize;
    if args.raw_sqlite && args.workload != Workload::NewLeads {
        anyhow::bail!(
            "--raw-sqlite measures a new lead's write, so it needs --workload new-leads, not {}",
            args.workload.name()
        );
    }
    if args.url.len() > concurrency {
        anyhow::bail!(
            "{} --url but --concurrency {concurrency}: every server needs a client",
            args.url.len()
        );
    }
    let (urls, local) = match args.url.as_slice() {
        [] => {
            let server = LocalServer::start().await?;
            (vec![server.url.clone()], Some(server))
        }
        urls => (urls.to_vec(), None),
    };
    // One client and its connection pool for all of them; the set-up and the checks use the first.
    let api = Api::new(&urls[0], concurrency)?;
    let servers: Vec<Api> = urls.iter().map(|url| api.for_server(url)).collect();
    let scenario = Scenario::create(&api, args.sources, &weights, args.max_load).await?;
    let sources = scenario.source_ids.len();
    let show_progress = !args.quiet;

    let preloaded = if args.preload > 0 {
        let plan = Arc::new(Plan::preload(&scenario));
        let stop = Stop::AfterRequests(args.preload);
        let outcome = run::run(
            &servers,
            plan,
            sources,
            concurrency,
            stop,
            None,
            "preload",
            show_progress,
        )
        .await;
        if outcome.tally.error_count() > 0 {
            anyhow::bail!("the preload failed: {:?}", outcome.tally.errors);
        }
        outcome.tally.created_per_source
    } else {
        vec![0; sources]
    };

    let plan = Arc::new(Plan::new(args.workload, args.lead_pool, &scenario));
    let outcome = run::run(
        &servers,
        plan,
        sources,
        concurrency,
        args.stop(),
        args.rate,
        args.workload.name(),
        show_progress,
    )
    .await;
    // Read before the checks add their own requests.
    let server_memory = local.as_ref().and_then(LocalServer::memory);
    let checks = invariants::check(&api, &scenario, &preloaded, &outcome.tally).await?;

    let measured = Measured::of(&outcome);
    let per_sec = |count: u64| count as f64 / measured.elapsed_secs.max(1e-9);
    let raw_sqlite = match &local {
        Some(server) if args.raw_sqlite => {
            let same_scenario = raw_sqlite::Scenario {
                sources,
                weights: weights.clone(),
                max_load: args.max_load,
                preload: args.preload,
            };
            let batch_size = raw_sqlite::batch_size(concurrency);
            Some(raw_sqlite::measure(server.dir(), same_scenario, batch_size, args.stop()).await?)
        }
        _ => None,
    };
    let contacts_per_sec = per_sec(measured.contacts_created);
    Ok(Summary {
        workload: args.workload.name(),
        local_server: local.is_some(),
        by_server: urls
            .iter()
            .zip(&measured.per_server)
            .map(|(url, tally)| ServerSummary {
                url: url.clone(),
                requests: tally.requests,
                contacts_created: tally.contacts_created,
            })
            .collect(),
        server: urls[0].clone(),
        scenario: ScenarioSummary {
            sources,
            operators: weights.len(),
            weights,
            max_load: args.max_load,
            preload: args.preload,
            lead_pool: (args.workload == Workload::ReturningLeads).then_some(args.lead_pool),
        },
        concurrency: args.concurrency,
        elapsed_secs: measured.elapsed_secs,
        requests: measured.requests,
        errors: measured.errors,
        throughput_per_sec: per_sec(measured.requests),
        contacts_created: measured.contacts_created,
        contacts_per_sec,
        latency_ms: measured.latency_ms,
        slowest_ms: measured.slowest_ms,
        p999_over_p50: measured.latency_ms.tail_over_median(),
        by_kind: measured.by_kind,
        errors_by_status: measured.errors_by_status,
        server_memory,
        ratio_to_raw_sqlite: raw_sqlite.map(|raw| contacts_per_sec / raw.contacts_per_sec),
        raw_sqlite,
        invariants: Invariants {
            passed: invariants::all_passed(&checks),
            checks,
        },
    })
}

/// On stderr, so that it shows even under --json, and impossible to miss in a CI log.
fn announce_broken_invariants(summary: &Summary) {
    eprintln!("\n!!!!!!!! leadrouter-bench: INVARIANT BROKEN !!!!!!!!");
    for check in &summary.invariants.checks {
        if check.verdict == invariants::Verdict::Failed {
            eprintln!("!!! {}: {}", check.name, check.detail);
        }
    }
}
