//! `operator` keys (issue 12): bound to one operator, they read it and switch its availability, read the
//! contacts assigned to it and change their status — and nothing else.

use crate::common;

use common::{
    TestApp, call_with_key as call, call_with_key_ok as call_ok, create_key_with_id,
    create_operator_key, id_of, ids, keys_command, keys_output,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Asserts the status, and a detail that contains `needle`.
fn assert_refused(answer: &(StatusCode, Value), status: StatusCode, needle: &str, what: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{what}: {body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(needle), "{what}: {needle:?} not in {body}");
}

/// Every read and status change of the contact answers the operator key 404, as for a contact that does not
/// exist.
async fn assert_out_of_reach(app: &TestApp, token: &str, id: i64) {
    for (method, path, body) in [
        (Method::GET, format!("/contacts/{id}"), None),
        (Method::GET, format!("/contacts/{id}/history"), None),
        (
            Method::PATCH,
            format!("/contacts/{id}"),
            Some(json!({ "status": "closed" })),
        ),
        (
            Method::PATCH,
            format!("/contacts/{id}/status?status=closed"),
            None,
        ),
        (Method::POST, format!("/contacts/{id}/accept"), None),
        (Method::POST, format!("/contacts/{id}/decline"), None),
    ] {
        let answer = call(app, Some(token), method.clone(), &path, body).await;
        let what = format!("{method} {path}");
        assert_refused(&answer, StatusCode::NOT_FOUND, "Contact not found", &what);
    }
}

/// Two operators, each with one contact assigned by hand, and a contact nobody has, all made while the API is
/// open; then an admin key and a key for the first operator. Nothing is linked, so that nothing moves by
/// itself.
struct Setting {
    own: i64,
    other: i64,
    own_contact: i64,
    other_contact: i64,
    unassigned_contact: i64,
    admin: String,
    key_id: i64,
    token: String,
}

impl Setting {
    /// A request about its own operator, with the operator key.
    async fn own_operator(
        &self,
        app: &TestApp,
        method: Method,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let path = format!("/operators/{}", self.own);
        call(app, Some(&self.token), method, &path, body).await
    }

    /// A request with the admin key, expecting a 2xx; the answer.
    async fn as_admin(
        &self,
        app: &TestApp,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        call_ok(app, Some(&self.admin), method, path, body).await
    }

    /// [`Setting::own_operator`], expecting 200; the operator answered.
    async fn own_operator_ok(&self, app: &TestApp, method: Method, body: Option<Value>) -> Value {
        let (status, operator) = self.own_operator(app, method, body).await;
        assert_eq!(status, StatusCode::OK, "{operator}");
        operator
    }
}

async fn setting(app: &TestApp) -> Setting {
    let source = app.source("bot").await;
    let own = app.operator("Anna", 10).await;
    let other = app.operator("Boris", 10).await;
    let own_contact = id_of(&app.contact_through(source).await);
    let other_contact = id_of(&app.contact_through(source).await);
    let unassigned_contact = id_of(&app.contact_through(source).await);
    app.assign_ok(own_contact, json!(own)).await;
    app.assign_ok(other_contact, json!(other)).await;
    let (_, admin) = create_key_with_id(app, "admin", "ops");
    let (key_id, token) = create_operator_key(app, own, "anna-phone");
    Setting {
        own,
        other,
        own_contact,
        other_contact,
        unassigned_contact,
        admin,
        key_id,
        token,
    }
}

backend_test!(
    an_operator_key_reads_and_switches_only_its_own_operator,
    |app| {
        let s = setting(&app).await;
        let key = Some(s.token.as_str());

        let read = s.own_operator_ok(&app, Method::GET, None).await;
        assert_eq!(read["name"], "Anna");
        let switch = |body: Value| s.own_operator_ok(&app, Method::PATCH, Some(body));
        let away =
            switch(json!({ "availability": "away", "away_until": "2099-01-01T12:00:00Z" })).await;
        assert_eq!(away["availability"], "away");
        assert_eq!(away["away_until"], "2099-01-01T12:00:00.000000Z");
        let back = switch(json!({ "availability": "available" })).await;
        assert_eq!(
            (back["availability"].clone(), back["away_until"].clone()),
            (json!("available"), Value::Null)
        );
        // Its values are still checked as anyone's are.
        let answer = s
            .own_operator(
                &app,
                Method::PATCH,
                Some(json!({ "availability": "asleep" })),
            )
            .await;
        assert_eq!(answer.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.1);

        // Any other field, even null, even unknown, is refused by name, and nothing changes.
        for (body, field) in [
            (json!({ "name": "Anna K." }), "name"),
            (
                json!({ "availability": "away", "max_load": 50 }),
                "max_load",
            ),
            (json!({ "is_active": null }), "is_active"),
            (json!({ "schedule": null }), "schedule"),
            (json!({ "timezone": "Europe/Berlin" }), "timezone"),
            (json!({ "nickname": "A" }), "nickname"),
        ] {
            let answer = s
                .own_operator(&app, Method::PATCH, Some(body.clone()))
                .await;
            assert_refused(&answer, StatusCode::FORBIDDEN, field, &body.to_string());
        }
        let unchanged = s.own_operator_ok(&app, Method::GET, None).await;
        assert_eq!(
            (
                unchanged["name"].clone(),
                unchanged["max_load"].clone(),
                unchanged["availability"].clone()
            ),
            (json!("Anna"), json!(10), json!("available"))
        );

        // Another operator is not its business: read, changed, or its contacts listed.
        for (method, path, body) in [
            (Method::GET, format!("/operators/{}", s.other), None),
            (
                Method::PATCH,
                format!("/operators/{}", s.other),
                Some(json!({ "availability": "away" })),
            ),
            (
                Method::GET,
                format!("/contacts/?operator_id={}", s.other),
                None,
            ),
        ] {
            let answer = call(&app, key, method.clone(), &path, body).await;
            let what = format!("{method} {path}");
            assert_refused(&answer, StatusCode::FORBIDDEN, "own operator", &what);
        }
        let other = s
            .as_admin(&app, Method::GET, &format!("/operators/{}", s.other), None)
            .await;
        assert_eq!(other["availability"], "available");

        // Nothing else, whatever the method; the detail says what the scope allows.
        for (method, path, body) in [
            (Method::GET, "/operators/".to_owned(), None),
            (
                Method::POST,
                "/operators/".to_owned(),
                Some(json!({ "name": "Vera" })),
            ),
            (Method::DELETE, format!("/operators/{}", s.own), None),
            (Method::GET, format!("/operators/{}/stats", s.own), None),
            (Method::GET, format!("/operators/{}/time-off", s.own), None),
            (Method::GET, "/sources/".to_owned(), None),
            (
                Method::POST,
                "/sources/".to_owned(),
                Some(json!({ "name": "web" })),
            ),
            (Method::GET, "/sources/1/queue".to_owned(), None),
            (
                Method::POST,
                "/contacts/".to_owned(),
                Some(json!({ "source_id": 1 })),
            ),
            (Method::GET, "/leads/".to_owned(), None),
            (Method::GET, "/stats/sources/1".to_owned(), None),
            (Method::GET, "/webhooks".to_owned(), None),
            (Method::GET, "/audit".to_owned(), None),
            (Method::GET, "/metrics".to_owned(), None),
        ] {
            let answer = call(&app, key, method.clone(), &path, body).await;
            assert_refused(
                &answer,
                StatusCode::FORBIDDEN,
                "scope (operator)",
                &format!("{method} {path}"),
            );
            assert_refused(
                &answer,
                StatusCode::FORBIDDEN,
                "PATCH /operators/{id} with availability",
                &path,
            );
        }

        // The audit trail names the key as who switched the availability.
        let entries = s
            .as_admin(
                &app,
                Method::GET,
                &format!(
                    "/audit?target_type=operator&target_id={}&action=operator.updated",
                    s.own
                ),
                None,
            )
            .await;
        let entries = entries.as_array().unwrap();
        assert_eq!(entries.len(), 2, "{entries:?}");
        for entry in entries {
            assert_eq!(entry["key_id"], s.key_id, "{entry}");
            assert_eq!(entry["actor"], format!("key {}", s.key_id), "{entry}");
        }
    }
);

backend_test!(
    an_operator_key_sees_and_changes_only_the_contacts_assigned_to_it,
    |app| {
        let s = setting(&app).await;
        let key = Some(s.token.as_str());
        let own = s.own_contact;

        // The list is its own, whatever it asks for, and refuses another operator's.
        for path in [
            "/contacts/".to_owned(),
            "/contacts/?status=active".to_owned(),
            format!("/contacts/?operator_id={}", s.own),
        ] {
            let list = call_ok(&app, key, Method::GET, &path, None).await;
            assert_eq!(ids(&list), [own], "{path}");
        }
        let list = call_ok(&app, key, Method::GET, "/contacts/?unassigned=true", None).await;
        assert_eq!(ids(&list), Vec::<i64>::new());

        // Its own contact: read, its status changed both ways, and its history says who changed it.
        let contact = call_ok(&app, key, Method::GET, &format!("/contacts/{own}"), None).await;
        assert_eq!(contact["operator_id"], s.own);
        let closed = call_ok(
            &app,
            key,
            Method::PATCH,
            &format!("/contacts/{own}"),
            Some(json!({ "status": "closed" })),
        )
        .await;
        assert_eq!(
            (closed["status"].clone(), closed["operator_id"].clone()),
            (json!("closed"), json!(s.own))
        );
        let reopened = call_ok(
            &app,
            key,
            Method::PATCH,
            &format!("/contacts/{own}/status?status=active"),
            None,
        )
        .await;
        assert_eq!(reopened["status"], "active");
        let history = call_ok(
            &app,
            key,
            Method::GET,
            &format!("/contacts/{own}/history"),
            None,
        )
        .await;
        let changes: Vec<&Value> = history
            .as_array()
            .unwrap()
            .iter()
            .filter(|entry| entry["event"] == "status_changed")
            .collect();
        assert_eq!(changes.len(), 2, "{history}");
        assert!(
            changes.iter().all(|entry| entry["api_key_id"] == s.key_id),
            "{history}"
        );

        // It may not give its contact away, nor force anything.
        for (body, field) in [
            (json!({ "operator_id": s.other }), "operator_id"),
            (json!({ "operator_id": null }), "operator_id"),
            (json!({ "status": "closed", "force": true }), "force"),
        ] {
            let answer = call(
                &app,
                key,
                Method::PATCH,
                &format!("/contacts/{own}"),
                Some(body.clone()),
            )
            .await;
            assert_refused(&answer, StatusCode::FORBIDDEN, field, &body.to_string());
        }

        // Another operator's contact, an unassigned one and a missing one are all the same to it: not there.
        for id in [s.other_contact, s.unassigned_contact, 999_999] {
            assert_out_of_reach(&app, &s.token, id).await;
        }
        for id in [s.other_contact, s.unassigned_contact] {
            let untouched = s
                .as_admin(&app, Method::GET, &format!("/contacts/{id}"), None)
                .await;
            assert_eq!(untouched["status"], "active", "{untouched}");
        }

        // Given to someone else, the contact is no longer its own, from the next request on.
        s.as_admin(
            &app,
            Method::PATCH,
            &format!("/contacts/{own}"),
            Some(json!({ "operator_id": s.other })),
        )
        .await;
        assert_out_of_reach(&app, &s.token, own).await;
        let list = call_ok(&app, key, Method::GET, "/contacts/", None).await;
        assert_eq!(ids(&list), Vec::<i64>::new());
    }
);

backend_test!(a_deleted_operators_key_stops_working, |app| {
    let s = setting(&app).await;
    s.as_admin(&app, Method::DELETE, &format!("/operators/{}", s.own), None)
        .await;
    for (method, path) in [
        (Method::GET, format!("/operators/{}", s.own)),
        (Method::GET, "/contacts/".to_owned()),
        (Method::GET, format!("/contacts/{}", s.own_contact)),
        (
            Method::PATCH,
            format!("/contacts/{}/status?status=closed", s.own_contact),
        ),
    ] {
        let answer = call(&app, Some(&s.token), method.clone(), &path, None).await;
        assert_refused(
            &answer,
            StatusCode::FORBIDDEN,
            "has been deleted",
            &format!("{method} {path}"),
        );
    }
    // The key still says whom it was for.
    let listed = keys_command(&app, &["list"]);
    let line = listed
        .lines()
        .find(|line| line.ends_with("anna-phone"))
        .unwrap();
    let columns: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        columns[1..3],
        ["operator", s.own.to_string().as_str()],
        "{listed}"
    );
});

backend_test!(
    keys_create_binds_an_operator_key_to_an_operator_that_exists,
    |app| {
        let operator = app.operator("Anna", 10).await.to_string();
        let refusals = [
            (vec!["--scope", "operator"], "--operator"),
            (
                vec!["--scope", "operator", "--operator", "999999"],
                "No operator with id 999999",
            ),
            (
                vec!["--scope", "read", "--operator", operator.as_str()],
                "--operator",
            ),
            (
                vec!["--scope", "admin", "--operator", operator.as_str()],
                "only an operator key",
            ),
        ];
        for (args, expected) in refusals {
            let mut command = vec!["create", "--name", "anna-phone"];
            command.extend(&args);
            let output = keys_output(&app, &command);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(!output.status.success(), "{command:?} succeeded");
            assert!(
                stderr.contains(expected),
                "{command:?}: {expected:?} not in {stderr}"
            );
        }
        // Nothing was created: the API is still open.
        assert_eq!(app.get("/operators/").await.0, StatusCode::OK);

        let printed = keys_command(
            &app,
            &[
                "create",
                "--scope",
                "operator",
                "--operator",
                operator.as_str(),
                "--name",
                "anna-phone",
            ],
        );
        assert!(
            printed.contains(&format!("scope operator, for operator {operator}")),
            "{printed}"
        );
        let listed = keys_command(&app, &["list"]);
        assert!(
            listed.lines().next().unwrap().contains("operator"),
            "{listed}"
        );
    }
);

database_test!(
    upgrading_keeps_the_keys_and_the_contacts_that_name_them,
    |database| {
        database.migrate_before("0008").await;
        let token = "lr_from_before_operator_keys";
        let hash = leadrouter::domain::access::token_hash(token);
        for statement in [
            "INSERT INTO sources (name, created_at) VALUES ('bot', '2026-01-01T00:00:00Z')"
                .to_owned(),
            "INSERT INTO leads (created_at) VALUES ('2026-01-01T00:00:00Z')".to_owned(),
            format!(
                "INSERT INTO api_keys (name, scope, token_hash, created_at) \
             VALUES ('bot', 'ingest', '{hash}', '2026-01-01T00:00:00Z')"
            ),
            "INSERT INTO contacts (lead_id, source_id, status, created_at, created_by_key_id) \
         VALUES (1, 1, 'closed', '2026-01-01T00:00:00Z', 1)"
                .to_owned(),
        ] {
            database.execute_sql(&statement).await;
        }

        let app = TestApp::spawn_on(database).await;
        // The key still works, and still reads back the contact it created.
        let contact = call_ok(&app, Some(token), Method::GET, "/contacts/1", None).await;
        assert_eq!(contact["status"], "closed");
        let listed = keys_command(&app, &["list"]);
        assert!(
            listed
                .lines()
                .any(|line| line.contains("ingest") && line.ends_with("bot")),
            "{listed}"
        );
        if !app.database.is_postgres() {
            let broken = "SELECT COUNT(*) FROM pragma_foreign_key_check";
            assert_eq!(app.sql_number(broken).await, Some(0));
        }
        // A new key's id follows the old ones.
        let (id, _) = create_key_with_id(&app, "read", "dashboard");
        assert_eq!(id, 2);
    }
);

backend_test!(
    an_operator_key_accepts_and_declines_only_its_own_contacts,
    |app| {
        let setting = setting(&app).await;
        let token = Some(setting.token.as_str());
        assert_out_of_reach(&app, &setting.token, setting.other_contact).await;
        assert_out_of_reach(&app, &setting.token, setting.unassigned_contact).await;

        let path = |action: &str| format!("/contacts/{}/{action}", setting.own_contact);
        let accepted = call_ok(&app, token, Method::POST, &path("accept"), None).await;
        assert!(accepted["accepted_at"].is_string(), "{accepted}");
        let history = setting
            .as_admin(
                &app,
                Method::GET,
                &format!("/contacts/{}/history", setting.own_contact),
                None,
            )
            .await;
        let entry = history.as_array().unwrap().last().unwrap().clone();
        assert_eq!(entry["event"], "accepted");
        assert_eq!(entry["api_key_id"], setting.key_id, "{entry}");

        // Declined, it leaves the operator (nobody else is linked: it waits), and so the key's reach.
        let declined = call_ok(&app, token, Method::POST, &path("decline"), None).await;
        assert_eq!(declined["operator_id"], Value::Null, "{declined}");
        assert_out_of_reach(&app, &setting.token, setting.own_contact).await;
        // The other operator's contact is untouched by all of it.
        let other = setting
            .as_admin(
                &app,
                Method::GET,
                &format!("/contacts/{}", setting.other_contact),
                None,
            )
            .await;
        assert_eq!(other["operator_id"], setting.other);
        assert_eq!(other["accepted_at"], Value::Null);
    }
);
