//! The dashboard over HTTP (issue 14): signing in with a key for a session cookie, what each scope may see
//! and do through it, CSRF, sign-out, the event stream, the language, and the headers every page sends. The
//! pages' behaviour in a real browser is in tests/browser.

use std::time::{Duration, Instant};

use crate::common;

use common::{TestApp, create_key_with_id, create_operator_key, keys_command};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode, redirect};
use serde_json::{Value, json};

/// A browser's side of the conversation: no redirects followed, the session cookie kept by hand.
struct Visitor<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    cookie: Option<String>,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .unwrap_or_default()
    }

    fn set_cookie(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|c| c.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// The CSRF token the page carries.
    fn csrf(&self) -> String {
        let marker = "name=\"csrf-token\" content=\"";
        let start = self
            .body
            .find(marker)
            .expect("the page carries a CSRF token")
            + marker.len();
        self.body[start..].split('"').next().unwrap().to_owned()
    }
}

impl<'a> Visitor<'a> {
    fn new(app: &'a TestApp) -> Self {
        let client = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            app,
            client,
            cookie: None,
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let request = match &self.cookie {
            Some(cookie) => request.header("cookie", cookie),
            None => request,
        };
        let response = request.send().await.expect("request sent");
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap_or_default(),
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(self.client.get(self.app.url(path))).await
    }

    async fn post_form(&self, path: &str, form: &str) -> Answer {
        let request = self
            .client
            .post(self.app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned());
        self.send(request).await
    }

    async fn api(&self, method: Method, path: &str, csrf: Option<&str>, body: Value) -> Answer {
        let mut request = self.client.request(method, self.app.url(path)).json(&body);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        self.send(request).await
    }

    /// Signs in with the token and keeps the session cookie; returns the answer to the sign-in.
    async fn sign_in(&mut self, token: &str) -> Answer {
        let answer = self
            .post_form("/ui/sign-in", &format!("token={token}"))
            .await;
        let cookie = answer
            .set_cookie()
            .into_iter()
            .find(|c| c.starts_with("leadrouter_session="))
            .unwrap_or_else(|| panic!("no session cookie: {} {}", answer.status, answer.body));
        self.cookie = Some(cookie.split(';').next().unwrap().to_owned());
        answer
    }
}

backend_test!(a_key_is_exchanged_for_an_httponly_strict_session, |app| {
    let operator_id = app.operator("Анна", 3).await;
    let (_, token) = create_key_with_id(&app, "admin", "manager");
    let mut visitor = Visitor::new(&app);

    let answer = visitor.get("/ui/sources").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), "/ui/sign-in?next=/ui/sources");

    let wrong = visitor.post_form("/ui/sign-in", "token=lr_nope").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.body.contains("Unknown or revoked key"),
        "{}",
        wrong.body
    );
    assert!(wrong.set_cookie().is_empty());

    let signed_in = visitor.sign_in(&token).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.location(), "/ui/");
    let cookie = &signed_in.set_cookie()[0];
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(
            cookie.contains(attribute),
            "{attribute} missing from {cookie}"
        );
    }
    assert!(!cookie.contains(&token), "the cookie is not the key");

    let page = visitor.get("/ui/").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Анна"));
    assert!(
        page.body
            .contains(&format!("data-operator-id=\"{operator_id}\""))
    );
    assert!(!page.body.contains(&token), "the page never holds the key");
});

backend_test!(changes_through_a_session_need_its_csrf_token, |app| {
    let operator_id = app.operator("Анна", 3).await;
    let (_, token) = create_key_with_id(&app, "admin", "manager");
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(&token).await;
    let csrf = visitor.get("/ui/operators").await.csrf();
    let path = format!("/operators/{operator_id}");

    let bare = visitor
        .api(Method::PATCH, &path, None, json!({ "max_load": 7 }))
        .await;
    assert_eq!(bare.status, StatusCode::FORBIDDEN, "{}", bare.body);
    assert!(bare.body.contains("X-CSRF-Token"), "{}", bare.body);
    let forged = visitor
        .api(
            Method::PATCH,
            &path,
            Some("lr_forged"),
            json!({ "max_load": 7 }),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let read_back = visitor.api(Method::GET, &path, None, json!(null)).await;
    assert!(
        read_back.body.contains("\"max_load\":3"),
        "{}",
        read_back.body
    );

    let done = visitor
        .api(Method::PATCH, &path, Some(&csrf), json!({ "max_load": 7 }))
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let read_back = visitor.api(Method::GET, &path, None, json!(null)).await;
    assert!(
        read_back.body.contains("\"max_load\":7"),
        "{}",
        read_back.body
    );
});

backend_test!(
    a_read_key_session_sees_everything_and_changes_nothing,
    |app| {
        let operator_id = app.operator("Анна", 3).await;
        let (_, token) = create_key_with_id(&app, "read", "auditor");
        let mut visitor = Visitor::new(&app);
        visitor.sign_in(&token).await;
        let page = visitor.get("/ui/").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("Анна"));
        assert!(
            page.body.contains("read key"),
            "the page says it is read-only"
        );
        assert!(
            !page.body.contains("<fieldset>"),
            "every control is disabled"
        );
        assert!(page.body.contains("<fieldset disabled>"));
        let csrf = page.csrf();
        let path = format!("/operators/{operator_id}");
        let refused = visitor
            .api(
                Method::PATCH,
                &path,
                Some(&csrf),
                json!({ "is_active": false }),
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
        assert_eq!(
            visitor.get("/ui/webhooks").await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(visitor.get("/ui/keys").await.status, StatusCode::FORBIDDEN);
    }
);

backend_test!(an_operator_session_sees_only_its_own_contacts, |app| {
    let (source_id, anna) = app.source_with_operator("Анна", 1).await;
    let boris = app.operator("Борис", 1).await;
    app.link(source_id, boris, 1.0).await;
    let first = app.contact_through(source_id).await;
    let second = app.contact_through(source_id).await;
    let (own, other) = match first["operator_id"].as_i64() == Some(anna) {
        true => (
            first["id"].as_i64().unwrap(),
            second["id"].as_i64().unwrap(),
        ),
        false => (
            second["id"].as_i64().unwrap(),
            first["id"].as_i64().unwrap(),
        ),
    };
    let (_, token) = create_operator_key(&app, anna, "anna");
    let mut visitor = Visitor::new(&app);
    let signed_in = visitor.sign_in(&token).await;
    assert_eq!(signed_in.location(), "/ui/me");
    assert_eq!(visitor.get("/ui/").await.location(), "/ui/me");
    let page = visitor.get("/ui/me").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&format!("data-contact-id=\"{own}\"")));
    assert!(!page.body.contains(&format!("data-contact-id=\"{other}\"")));
    assert_eq!(
        visitor.get(&format!("/ui/contacts/{other}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        visitor.get(&format!("/ui/contacts/{own}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        visitor.get("/ui/operators").await.status,
        StatusCode::FORBIDDEN
    );
    let csrf = page.csrf();
    let away = visitor
        .api(
            Method::PATCH,
            &format!("/operators/{anna}"),
            Some(&csrf),
            json!({ "availability": "away" }),
        )
        .await;
    assert_eq!(away.status, StatusCode::OK, "{}", away.body);
    let not_hers = visitor
        .api(
            Method::PATCH,
            &format!("/operators/{boris}"),
            Some(&csrf),
            json!({ "availability": "away" }),
        )
        .await;
    assert_eq!(not_hers.status, StatusCode::FORBIDDEN);
});

backend_test!(sign_out_and_revocation_end_the_session, |app| {
    let (_, token) = create_key_with_id(&app, "admin", "manager");
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(&token).await;
    let csrf = visitor.get("/ui/").await.csrf();
    let forged = visitor.post_form("/ui/sign-out", "csrf=lr_forged").await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(
        visitor.get("/ui/").await.status,
        StatusCode::OK,
        "still signed in"
    );
    let out = visitor
        .post_form("/ui/sign-out", &format!("csrf={csrf}"))
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.set_cookie()[0].contains("Max-Age=0"));
    assert_eq!(visitor.get("/ui/").await.status, StatusCode::SEE_OTHER);
    let api = visitor
        .api(Method::GET, "/operators", None, json!(null))
        .await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED, "{}", api.body);

    let (id, token) = create_key_with_id(&app, "admin", "second");
    visitor.sign_in(&token).await;
    assert_eq!(visitor.get("/ui/").await.status, StatusCode::OK);
    keys_command(&app, &["revoke", &id.to_string()]);
    assert_eq!(visitor.get("/ui/").await.status, StatusCode::SEE_OTHER);
    let api = visitor
        .api(Method::GET, "/operators", None, json!(null))
        .await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
});

backend_test!(
    ingest_keys_other_sites_and_far_redirects_are_refused,
    |app| {
        let (_, ingest) = create_key_with_id(&app, "ingest", "bot");
        let (_, admin) = create_key_with_id(&app, "admin", "manager");
        let visitor = Visitor::new(&app);
        let answer = visitor
            .post_form("/ui/sign-in", &format!("token={ingest}"))
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert!(answer.body.contains("ingest key"), "{}", answer.body);

        let request = visitor
            .client
            .post(app.url("/ui/sign-in"))
            .header("origin", "http://evil.example")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={admin}"));
        let foreign = visitor.send(request).await;
        assert_eq!(foreign.status, StatusCode::FORBIDDEN);
        assert!(foreign.set_cookie().is_empty());

        let far = visitor
            .post_form(
                "/ui/sign-in",
                &format!("token={admin}&next=%2F%2Fevil.example%2Fui%2F"),
            )
            .await;
        assert_eq!(far.status, StatusCode::SEE_OTHER);
        assert_eq!(far.location(), "/ui/");
    }
);

backend_test!(an_open_dashboard_says_so_and_root_leads_to_it, |app| {
    let visitor = Visitor::new(&app);
    let root = visitor.get("/").await;
    assert_eq!(root.status, StatusCode::SEE_OTHER);
    assert_eq!(root.location(), "/ui/");
    let page = visitor.get("/ui/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("No API key exists yet"));
    assert!(!page.body.contains("csrf-token"), "no session, no token");
});

backend_test!(pages_send_a_strict_policy_and_no_inline_code, |app| {
    let source_id = app.source("Telegram").await;
    let operator_id = app.operator("Анна", 2).await;
    app.link(source_id, operator_id, 1.0).await;
    let contact = app.contact_through(source_id).await;
    let visitor = Visitor::new(&app);
    let pages = [
        "/ui/".to_owned(),
        "/ui/contacts".to_owned(),
        format!("/ui/contacts/{}", contact["id"]),
        "/ui/operators".to_owned(),
        "/ui/sources".to_owned(),
        format!("/ui/sources/{source_id}"),
        "/ui/webhooks".to_owned(),
        "/ui/keys".to_owned(),
        "/ui/sign-in".to_owned(),
    ];
    for path in pages {
        let page = visitor.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        let policy = page.headers["content-security-policy"].to_str().unwrap();
        assert!(
            policy.contains("default-src 'none'") && policy.contains("script-src 'self'"),
            "{policy}"
        );
        assert!(!policy.contains("unsafe"), "{policy}");
        assert_eq!(page.headers["x-frame-options"], "DENY");
        assert!(!page.body.contains(" style=\""), "{path}: an inline style");
        assert!(!page.body.contains("<script>"), "{path}: an inline script");
        for attribute in [
            "src=\"http",
            "href=\"http",
            "action=\"http",
            "src=\"//",
            "href=\"//",
        ] {
            assert!(
                !page.body.contains(attribute),
                "{path}: an outside URL ({attribute})"
            );
        }
    }
});

backend_test!(the_language_follows_the_browser_then_the_switch, |app| {
    let visitor = Visitor::new(&app);
    let request = visitor
        .client
        .get(app.url("/ui/"))
        .header("accept-language", "ru-RU,ru;q=0.9,en;q=0.5");
    let russian = visitor.send(request).await;
    assert!(russian.body.contains("<html lang=\"ru\">") && russian.body.contains("Сейчас"));
    let switched = visitor.get("/ui/lang/en?back=/ui/operators").await;
    assert_eq!(switched.location(), "/ui/operators");
    let cookie = switched.set_cookie()[0]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let request = visitor
        .client
        .get(app.url("/ui/"))
        .header("accept-language", "ru")
        .header("cookie", cookie);
    let english = visitor.send(request).await;
    assert!(english.body.contains("<html lang=\"en\">") && english.body.contains(">Now<"));
});

backend_test!(a_contacts_history_is_told_in_the_pages_language, |app| {
    let (source, _) = app.source_with_operator("Анна", 5).await;
    let contact = app.contact_through(source).await;
    app.patch_ok(
        &format!("/contacts/{}", contact["id"]),
        json!({ "status": "closed" }),
    )
    .await;
    let visitor = Visitor::new(&app);
    let request = visitor
        .client
        .get(app.url(&format!("/ui/contacts/{}", contact["id"])))
        .header("accept-language", "ru");
    let page = visitor.send(request).await;
    let history = &page.body[page.body.find("history-title").expect("the history")..];
    for russian in [
        "создан",
        "новый контакт",
        "статус изменён",
        "вручную",
        "закрыт",
    ] {
        assert!(history.contains(russian), "{russian} in {history}");
    }
    for code in ["created", "status_changed", "manual"] {
        assert!(
            !history.contains(&format!(" {code} ")),
            "{code} in {history}"
        );
    }
});

backend_test!(the_event_stream_tells_of_changes_and_resumes, |app| {
    let source_id = app.source("Telegram").await;
    let client = reqwest::Client::new();
    // A page that saw nothing yet ("0.0") hears at once that it missed something.
    let mut stream = client
        .get(app.url("/ui/events"))
        .header("last-event-id", "0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let first = next_event(&mut stream).await;
    assert!(first.contains("event: change"), "{first}");
    let id = first
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .expect("an id")
        .to_owned();
    // A contact written now is told of.
    app.contact_through(source_id).await;
    let next = next_event(&mut stream).await;
    assert!(next.contains("event: change"), "{next}");
    assert_ne!(
        next.lines().find_map(|l| l.strip_prefix("id: ")),
        Some(id.as_str())
    );
    // Resuming from the latest id hears nothing at once: only the keep-alive comment could come.
    let current = next
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap()
        .to_owned();
    let mut resumed = client
        .get(app.url("/ui/events"))
        .header("last-event-id", current)
        .send()
        .await
        .unwrap();
    app.contact_through(source_id).await;
    let after = next_event(&mut resumed).await;
    assert!(after.contains("event: change"), "{after}");
});

/// The next event of the stream (comments skipped), waiting up to a generous bound.
async fn next_event(stream: &mut reqwest::Response) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut text = String::new();
    while Instant::now() < deadline {
        let chunk = tokio::time::timeout(Duration::from_secs(20), stream.chunk())
            .await
            .expect("an event within 20 s")
            .expect("the stream goes on")
            .expect("the stream is open");
        text.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(end) = text.find("\n\n") {
            let event = text[..end].to_owned();
            if event.lines().all(|l| l.starts_with(':')) {
                text.drain(..end + 2);
                continue;
            }
            return event;
        }
    }
    panic!("no event: {text}");
}

backend_test!(
    the_dashboards_download_holds_the_rows_the_api_lists,
    |app| {
        let (source_id, _) = app.source_with_operator("Анна", 5).await;
        let other = app.source("WhatsApp").await;
        for _ in 0..3 {
            app.contact_through(source_id).await;
        }
        app.contact_through(other).await;
        let listed = app
            .get_ok(&format!("/contacts?source_id={source_id}"))
            .await;
        let listed: Vec<String> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].to_string())
            .collect();
        let visitor = Visitor::new(&app);
        let download = visitor
            .get(&format!(
                "/ui/export/contacts.csv?source_id={source_id}&status="
            ))
            .await;
        assert_eq!(download.status, StatusCode::OK, "{}", download.body);
        assert!(
            download.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        let ids: Vec<String> = download
            .body
            .lines()
            .skip(1)
            .map(|line| line.split(',').next().unwrap().to_owned())
            .collect();
        assert_eq!(ids, listed);
        let stats = visitor
            .get(&format!("/ui/export/sources/{source_id}.csv"))
            .await;
        assert_eq!(stats.status, StatusCode::OK);
        assert!(stats.body.lines().count() >= 2, "{}", stats.body);
    }
);
