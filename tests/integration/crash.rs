//! Crash safety: the real `leadrouter` binary under write load, killed with SIGKILL in the middle of it, then
//! restarted on the same database. Every contact answered `201` and every status change answered `200` must be
//! there, and the counters (operator loads, contact counts) must agree with the contacts themselves.
//!
//! Requests that were in flight when the server died may or may not have been stored; they are not asserted on,
//! only counted.

use crate::common;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Backend, TestDatabase};
use reqwest::StatusCode;
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_leadrouter");

/// Concurrent clients writing during the load phase.
const CLIENTS: usize = 32;
/// The server is killed once this many contacts have been acknowledged…
const KILL_AFTER_CONTACTS: usize = 300;
/// …or after this long, whichever comes first (a bound, not an assertion).
const KILL_AFTER_AT_MOST: Duration = Duration::from_secs(120);
/// The most requests one client sends, so that a client can never loop forever.
const MAX_REQUESTS_PER_CLIENT: usize = 2_000;
/// Phones shared between clients, so that contacts find existing leads by phone.
const SHARED_PHONES: usize = 24;
/// The operators' max_load: small, so that capacity runs out and contacts are left unassigned too.
const MAX_LOADS: [i64; 3] = [7, 11, 13];

/// A running `leadrouter` process; killed (SIGKILL) if still running when dropped, e.g. on a failed assertion.
struct Running {
    child: Child,
    base: String,
}

impl Running {
    /// Starts the binary on `database_url` (port chosen by the OS) and waits, at most a minute, for the address
    /// it logs.
    fn start(dir: &Path, database_url: &str) -> Self {
        let (child, base) = common::spawn_logging_address(
            Command::new(BINARY)
                .current_dir(dir)
                .env("DATABASE_URL", database_url),
        );
        Self { child, base }
    }

    fn signal(&self, signal: &str) {
        common::send_signal(&self.child, signal);
    }

    /// SIGKILL: no chance to finish anything.
    fn kill_hard(mut self) -> std::process::ExitStatus {
        self.signal("KILL");
        self.child.wait().expect("waiting for the killed server")
    }

    /// SIGTERM: graceful stop.
    fn terminate(mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        self.child.wait().expect("waiting for the stopped server")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

/// A GET that must succeed with 200; returns the JSON body.
async fn get(client: &reqwest::Client, base: &str, path: &str, query: &[(&str, String)]) -> Value {
    let response = client
        .get(format!("{base}{path}"))
        .query(query)
        .send()
        .await
        .unwrap_or_else(|error| panic!("GET {path} {query:?}: {error}"));
    let status = response.status();
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(status, StatusCode::OK, "GET {path} {query:?}: {body}");
    body
}

/// A POST that must succeed with 201; returns the JSON body.
async fn post(client: &reqwest::Client, base: &str, path: &str, body: Value) -> Value {
    let response = client
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|error| panic!("POST {path}: {error}"));
    let status = response.status();
    let answer: Value = response.json().await.expect("a JSON body");
    assert_eq!(status, StatusCode::CREATED, "POST {path} {body}: {answer}");
    answer
}

/// Every contact of a list query, paging through with skip/limit (bounded).
async fn list_contacts(
    client: &reqwest::Client,
    base: &str,
    filters: &[(&str, String)],
) -> Vec<Value> {
    let mut all = Vec::new();
    for page in 0..1_000 {
        let mut query = filters.to_vec();
        query.push(("skip", (page * 1_000).to_string()));
        query.push(("limit", "1000".to_owned()));
        let body = get(client, base, "/contacts/", &query).await;
        let items = body.as_array().expect("a list").clone();
        let len = items.len();
        all.extend(items);
        if len < 1_000 {
            return all;
        }
    }
    panic!("more than 1,000,000 contacts listed for {filters:?}");
}

/// A contact the server answered 201 to.
struct AckedContact {
    id: i64,
    lead_id: i64,
    source_id: i64,
    operator_id: Option<i64>,
    external_id: String,
    /// The shared phone it was posted with (E.164), if any.
    shared_phone: Option<String>,
}

/// What one client saw.
#[derive(Default)]
struct ClientLog {
    contacts: Vec<AckedContact>,
    /// Contacts whose change to `closed` was answered 200.
    closed: Vec<i64>,
    /// Answers other than 201/200, by status code.
    other_statuses: BTreeMap<u16, usize>,
    /// Requests that got no complete answer (the server died under them).
    unanswered: usize,
}

fn shared_phone(index: usize) -> String {
    format!("+7999100{:04}", index % SHARED_PHONES)
}

/// Posts contacts and closes some of its own, until the server dies, `stop` is set or the bound is reached.
async fn client_loop(
    client_no: usize,
    client: reqwest::Client,
    base: String,
    source: i64,
    acked_contacts: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> ClientLog {
    let mut log = ClientLog::default();
    let mut open: VecDeque<i64> = VecDeque::new();
    for n in 0..MAX_REQUESTS_PER_CLIENT {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if n % 3 == 2 && !open.is_empty() {
            let id = open.pop_front().unwrap();
            let sent = client
                .patch(format!("{base}/contacts/{id}/status?status=closed"))
                .send()
                .await;
            let Ok(response) = sent else {
                log.unanswered += 1;
                break;
            };
            let status = response.status();
            let Ok(body) = response.json::<Value>().await else {
                log.unanswered += 1;
                break;
            };
            if status == StatusCode::OK {
                assert_eq!(body["id"], id, "{body}");
                assert_eq!(body["status"], "closed", "{body}");
                log.closed.push(id);
            } else {
                *log.other_statuses.entry(status.as_u16()).or_default() += 1;
            }
            continue;
        }

        let external_id = format!("crash-{client_no}-{n}");
        let phone = (n % 4 == 1).then(|| shared_phone(client_no * 7 + n));
        let mut body = json!({
            "source_id": source,
            "lead_external_id": external_id,
            "lead_name": format!("Lead {client_no}/{n}"),
            "message": format!("request {n} of client {client_no}"),
        });
        if let Some(phone) = &phone {
            body["lead_phone"] = json!(phone);
        }
        let sent = client
            .post(format!("{base}/contacts/"))
            .json(&body)
            .send()
            .await;
        let Ok(response) = sent else {
            log.unanswered += 1;
            break;
        };
        let status = response.status();
        let Ok(answer) = response.json::<Value>().await else {
            log.unanswered += 1;
            break;
        };
        if status == StatusCode::CREATED {
            let contact = AckedContact {
                id: answer["id"].as_i64().expect("contact id"),
                lead_id: answer["lead_id"].as_i64().expect("lead id"),
                source_id: answer["source_id"].as_i64().expect("source id"),
                operator_id: answer["operator_id"].as_i64(),
                external_id,
                shared_phone: phone,
            };
            assert_eq!(contact.source_id, source, "{answer}");
            assert_eq!(answer["status"], "active", "{answer}");
            open.push_back(contact.id);
            log.contacts.push(contact);
            acked_contacts.fetch_add(1, Ordering::SeqCst);
        } else {
            *log.other_statuses.entry(status.as_u16()).or_default() += 1;
        }
    }
    log
}

async fn crash_and_check(backend: Backend, database: TestDatabase) {
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let dir = tempfile::tempdir().expect("working directory");
    let client = http_client();

    // 1. The server on a fresh database, and the set-up.
    let server = Running::start(dir.path(), &database.url);
    let base = server.base.clone();
    let source = post(&client, &base, "/sources/", json!({ "name": "crash-bot" })).await["id"]
        .as_i64()
        .unwrap();
    let mut max_loads: BTreeMap<i64, i64> = BTreeMap::new();
    for (i, max_load) in MAX_LOADS.into_iter().enumerate() {
        let operator = post(
            &client,
            &base,
            "/operators/",
            json!({ "name": format!("operator {i}"), "max_load": max_load }),
        )
        .await["id"]
            .as_i64()
            .unwrap();
        post(
            &client,
            &base,
            &format!("/sources/{source}/operators"),
            json!({ "operator_id": operator, "weight": (i + 1) as f64 }),
        )
        .await;
        max_loads.insert(operator, max_load);
    }

    // 2. Write load, and SIGKILL in the middle of it.
    let acked_contacts = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client_no| {
            tokio::spawn(client_loop(
                client_no,
                http_client(),
                base.clone(),
                source,
                acked_contacts.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let load_started = Instant::now();
    while acked_contacts.load(Ordering::SeqCst) < KILL_AFTER_CONTACTS
        && load_started.elapsed() < KILL_AFTER_AT_MOST
        && !clients.iter().all(|c| c.is_finished())
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let waited = load_started.elapsed();
    let acked_at_kill = acked_contacts.load(Ordering::SeqCst);
    let exit = server.kill_hard();
    stop.store(true, Ordering::SeqCst);
    assert_eq!(
        exit.signal(),
        Some(9),
        "the server died of SIGKILL, not otherwise: {exit:?}"
    );
    let mut logs = Vec::new();
    for handle in clients {
        logs.push(handle.await.expect("client task"));
    }

    let contacts: Vec<&AckedContact> = logs.iter().flat_map(|log| &log.contacts).collect();
    let closed: HashSet<i64> = logs
        .iter()
        .flat_map(|log| log.closed.iter().copied())
        .collect();
    let unanswered: usize = logs.iter().map(|log| log.unanswered).sum();
    let mut other_statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for log in &logs {
        for (status, count) in &log.other_statuses {
            *other_statuses.entry(*status).or_default() += count;
        }
    }
    eprintln!(
        "crash test ({name}): killed after {acked_at_kill} acknowledged contacts ({:?} of load); \
         {unanswered} requests unanswered, other answers {other_statuses:?}",
        waited
    );
    assert!(
        !contacts.is_empty(),
        "no contact was acknowledged before the kill"
    );
    // Under this load the only acceptable refusal is 503 (busy: nothing stored, counted as unacknowledged).
    assert!(
        other_statuses.keys().all(|status| *status == 503),
        "unexpected answers during the load: {other_statuses:?}"
    );
    let distinct_ids: HashSet<i64> = contacts.iter().map(|c| c.id).collect();
    assert_eq!(
        distinct_ids.len(),
        contacts.len(),
        "two acknowledged contacts share an id"
    );

    // 3. Restart on the same database and check what was acknowledged.
    let server = Running::start(dir.path(), &database.url);
    let base = server.base.clone();
    let client = http_client();
    let mut problems: Vec<String> = Vec::new();

    let mut found = 0;
    for acked in &contacts {
        let response = client
            .get(format!("{base}/contacts/{}", acked.id))
            .send()
            .await
            .expect("GET contact");
        let status = response.status();
        let body: Value = response.json().await.expect("JSON");
        if status != StatusCode::OK {
            problems.push(format!(
                "acknowledged contact {} ({}) is missing after the restart: {status} {body}",
                acked.id, acked.external_id
            ));
            continue;
        }
        found += 1;
        // A contact acknowledged as waiting may have been assigned from the queue since; one acknowledged with
        // an operator keeps that operator.
        let operator_kept = match acked.operator_id {
            Some(operator) => body["operator_id"].as_i64() == Some(operator),
            None => true,
        };
        if body["lead_id"] != acked.lead_id
            || body["source_id"] != acked.source_id
            || !operator_kept
        {
            problems.push(format!(
                "contact {} changed across the restart: acknowledged lead {} source {} operator {:?}, now {body}",
                acked.id, acked.lead_id, acked.source_id, acked.operator_id
            ));
        }
        let expected = if closed.contains(&acked.id) {
            &["closed"][..]
        } else {
            // A close that was in flight may have been committed.
            &["active", "closed"][..]
        };
        if !expected.iter().any(|s| body["status"] == *s) {
            problems.push(format!(
                "contact {} has status {} after the restart, expected one of {expected:?}",
                acked.id, body["status"]
            ));
        }
    }

    // Leads: one per external_id, one per shared phone, and the contacts point at them.
    let mut lead_of_phone: HashMap<&str, i64> = HashMap::new();
    for acked in &contacts {
        let leads = get(
            &client,
            &base,
            "/leads/",
            &[("external_id", acked.external_id.clone())],
        )
        .await;
        let leads = leads.as_array().unwrap();
        let ok = match (&acked.shared_phone, leads.as_slice()) {
            (_, [lead]) => lead["id"] == acked.lead_id,
            // Found by its shared phone, the lead kept the external_id it was created with.
            (Some(_), []) => true,
            _ => false,
        };
        if !ok {
            problems.push(format!(
                "external_id {} of contact {} (lead {}): leads {leads:?}",
                acked.external_id, acked.id, acked.lead_id
            ));
        }
        if let Some(phone) = &acked.shared_phone {
            let lead = match lead_of_phone.get(phone.as_str()) {
                Some(lead) => *lead,
                None => {
                    let leads = get(&client, &base, "/leads/", &[("phone", phone.clone())]).await;
                    let leads = leads.as_array().unwrap();
                    if leads.len() != 1 {
                        problems.push(format!("phone {phone}: {} leads {leads:?}", leads.len()));
                    }
                    let lead = leads.first().and_then(|l| l["id"].as_i64()).unwrap_or(-1);
                    lead_of_phone.insert(phone, lead);
                    lead
                }
            };
            if lead != acked.lead_id {
                problems.push(format!(
                    "contact {} with phone {phone} has lead {}, the phone's lead is {lead}",
                    acked.id, acked.lead_id
                ));
            }
        }
    }

    // Every contact of the source, acknowledged or not, and the counters against them.
    let all = list_contacts(&client, &base, &[("source_id", source.to_string())]).await;
    let all_ids: HashSet<i64> = all.iter().map(|c| c["id"].as_i64().unwrap()).collect();
    if all_ids.len() != all.len() {
        problems.push(format!(
            "the source's listing repeats contacts: {} rows, {} ids",
            all.len(),
            all_ids.len()
        ));
    }
    let not_listed = distinct_ids.difference(&all_ids).count();
    if not_listed != 0 {
        problems.push(format!(
            "{not_listed} acknowledged contacts are not listed for the source"
        ));
    }
    let extra = all_ids.difference(&distinct_ids).count();

    let source_stats = get(&client, &base, &format!("/stats/sources/{source}"), &[]).await;
    if source_stats["total_contacts"] != all.len() {
        problems.push(format!(
            "source stats total_contacts {} but {} contacts listed",
            source_stats["total_contacts"],
            all.len()
        ));
    }
    let unassigned_listed = all.iter().filter(|c| c["operator_id"].is_null()).count();
    if source_stats["unassigned_contacts"] != unassigned_listed {
        problems.push(format!(
            "source stats unassigned_contacts {} but {unassigned_listed} unassigned contacts listed",
            source_stats["unassigned_contacts"]
        ));
    }
    let distribution = source_stats["operator_distribution"].as_array().unwrap();

    let mut assigned_total = 0;
    for (&operator, &max_load) in &max_loads {
        let stats = get(&client, &base, &format!("/operators/{operator}/stats"), &[]).await;
        let active_listed = list_contacts(
            &client,
            &base,
            &[
                ("operator_id", operator.to_string()),
                ("status", "active".to_owned()),
            ],
        )
        .await
        .len();
        let held = list_contacts(&client, &base, &[("operator_id", operator.to_string())])
            .await
            .len();
        assigned_total += held;
        let active_in_all = all
            .iter()
            .filter(|c| c["operator_id"] == operator && c["status"] == "active")
            .count();
        let held_in_all = all.iter().filter(|c| c["operator_id"] == operator).count();
        let load = stats["active_contacts_count"].as_i64().unwrap();
        if load != active_listed as i64 || active_listed != active_in_all {
            problems.push(format!(
                "operator {operator}: active_contacts_count {load}, {active_listed} active contacts listed \
                 by operator, {active_in_all} in the source's listing"
            ));
        }
        if load > max_load {
            problems.push(format!(
                "operator {operator}: load {load} exceeds max_load {max_load}"
            ));
        }
        if stats["total_contacts"] != held || held != held_in_all {
            problems.push(format!(
                "operator {operator}: total_contacts {}, {held} contacts listed by operator, {held_in_all} \
                 in the source's listing",
                stats["total_contacts"]
            ));
        }
        let row = distribution
            .iter()
            .find(|row| row["operator_id"] == operator);
        let consistent = row.is_some_and(|row| row["count"] == held && row["active_count"] == load);
        if !consistent {
            problems.push(format!(
                "operator {operator}: source stats row {row:?}, but {held} contacts and load {load}"
            ));
        }
        eprintln!(
            "crash test ({name}): operator {operator} max_load {max_load}: load {load}, {held} contacts"
        );
    }
    if assigned_total + unassigned_listed != all.len() {
        problems.push(format!(
            "{assigned_total} assigned + {unassigned_listed} unassigned != {} contacts",
            all.len()
        ));
    }

    println!(
        "crash test ({name}): {} contacts acknowledged, {found} found after restart, {} status changes \
         acknowledged, {extra} extra unacknowledged contacts stored",
        contacts.len(),
        closed.len()
    );
    eprintln!(
        "crash test ({name}): {} contacts in the source after restart ({unassigned_listed} unassigned)",
        all.len()
    );
    assert!(
        problems.is_empty(),
        "crash test ({name}) found {} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );

    let exit = server.terminate();
    assert!(exit.success(), "graceful stop after the check: {exit:?}");
    drop(database);
}

/// Runs as `sigkill_under_write_load_loses_nothing_acknowledged::sqlite` and `…::postgres`, like the tests
/// written with `backend_test!` (which runs an in-process server; this test needs a process it can kill).
mod sigkill_under_write_load_loses_nothing_acknowledged {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite() {
        let database = TestDatabase::new(Backend::Sqlite).await.unwrap();
        crash_and_check(Backend::Sqlite, database).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres() {
        if common::postgres_url().is_none() {
            return common::postgres_not_configured();
        }
        let database = TestDatabase::new(Backend::Postgres).await.unwrap();
        crash_and_check(Backend::Postgres, database).await;
    }
}
