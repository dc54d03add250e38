//! The harness checked on pages of its own, served here: it reports what it is there to catch (a console
//! error, a request for the internet), drives forms, reads the cookie jar with its flags, keeps two sessions
//! apart, and lays a page out at phone width.

use axum::Router;
use axum::http::header;
use axum::response::{AppendHeaders, Html, IntoResponse};
use axum::routing::get;

use crate::harness::{Browser, Page, Viewport, leaves_the_machine};

/// Serves the harness's test pages on 127.0.0.1 (for as long as the test's runtime runs): their base URL.
async fn serve_test_pages() -> String {
    let pages = Router::new()
        .route("/noisy", get(noisy_page))
        .route("/form", get(form_page))
        .route("/sign-in", get(sign_in));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, pages).await });
    format!("http://{address}")
}

/// A page that does both things a clean page must not: logs an error and asks the internet for an image.
async fn noisy_page() -> Html<&'static str> {
    Html(
        r#"<!DOCTYPE html><html><head><title>noisy</title>
<link rel="icon" href="data:,"></head><body>
<p id="status">noisy</p>
<img src="http://example.invalid/x.png" alt="">
<script>console.error("harness check: a deliberate console error");</script>
</body></html>"#,
    )
}

/// A form whose button writes what was typed into `#greeting`, and a paragraph saying how wide the page is.
async fn form_page() -> Html<&'static str> {
    Html(
        r#"<!DOCTYPE html><html><head><title>form</title><link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1"></head><body>
<input id="name"> <button id="greet" type="button">Greet</button>
<p id="greeting"></p>
<script>
document.getElementById("greet").addEventListener("click", () => {
  document.getElementById("greeting").textContent = "Hello, " + document.getElementById("name").value;
});
</script>
</body></html>"#,
    )
}

/// Sets the cookies a sign-in would: a session the page's scripts cannot read, and one they can.
async fn sign_in() -> impl IntoResponse {
    (
        AppendHeaders([
            (
                header::SET_COOKIE,
                "session=opaque; Path=/; HttpOnly; SameSite=Strict",
            ),
            (header::SET_COOKIE, "theme=dark; Path=/; SameSite=Lax"),
        ]),
        Html(
            "<!DOCTYPE html><html><head><link rel=\"icon\" href=\"data:,\"></head>\
             <body><p id=\"status\">signed in</p></body></html>",
        ),
    )
}

/// The browser, the test pages' base URL, and a page showing the one at `path`; `None` without a browser.
async fn open(path: &str) -> Option<(Browser, String, Page)> {
    let browser = Browser::start()?;
    let base = serve_test_pages().await;
    let page = browser.page().await;
    page.goto(&format!("{base}{path}")).await;
    Some((browser, base, page))
}

#[tokio::test]
async fn reports_console_errors_and_requests_leaving_the_machine() {
    let Some((_, base, page)) = open("/noisy").await else {
        return;
    };
    page.wait_for_text("#status", "noisy").await;

    let errors = page
        .wait_until("the deliberate console error", || async {
            let errors = page.console_errors().await;
            errors
                .iter()
                .any(|error| error.contains("a deliberate console error"))
                .then_some(errors)
        })
        .await;
    assert!(!errors.is_empty(), "{errors:?}");
    let outside = page
        .wait_until("the request for example.invalid", || async {
            let outside = page.requests_leaving_the_machine().await;
            (!outside.is_empty()).then_some(outside)
        })
        .await;
    assert_eq!(outside, ["http://example.invalid/x.png"]);
    // The page itself was requested too, and stays on the machine.
    let requests = page.requests().await;
    assert!(requests.contains(&format!("{base}/noisy")), "{requests:?}");

    // A new page forgets the old one's log.
    page.goto(&format!("{base}/form")).await;
    page.wait_for("#greet").await;
    assert_eq!(page.console_errors().await, Vec::<String>::new());
    assert_eq!(
        page.requests_leaving_the_machine().await,
        Vec::<String>::new()
    );
    page.close().await;
}

#[tokio::test]
async fn assert_clean_fails_a_noisy_page() {
    let Some((_, _, page)) = open("/noisy").await else {
        return;
    };
    // assert_clean panics; the panic is caught as a failed task, and the browser session ends with it.
    let outcome = tokio::spawn(async move {
        page.wait_for_text("#status", "noisy").await;
        page.assert_clean("harness-noisy").await;
    })
    .await;
    let panic = outcome.expect_err("assert_clean passed a page with a console error");
    let message = panic.into_panic();
    let message = message
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or_default();
    assert!(message.contains("not clean"), "{message}");
    assert!(message.contains("example.invalid"), "{message}");
}

#[tokio::test]
async fn fills_clicks_reads_and_takes_screenshots_at_both_widths() {
    let Some((_, _, page)) = open("/form").await else {
        return;
    };
    page.fill("#name", "Оператор 1").await;
    page.click("#greet").await;
    page.wait_for_text("#greeting", "Hello, Оператор 1").await;
    assert_eq!(page.text_of("#greeting").await, "Hello, Оператор 1");
    assert_eq!(page.eval("document.title").await, "form");
    assert_eq!(page.client().title().await.unwrap(), "form");
    assert_eq!(
        page.eval("window.innerWidth").await,
        Viewport::DESKTOP.width
    );

    page.set_viewport(Viewport::PHONE).await;
    assert_eq!(page.eval("window.innerWidth").await, Viewport::PHONE.width);
    assert_eq!(
        page.eval("window.innerHeight").await,
        Viewport::PHONE.height
    );

    page.assert_clean("harness-form").await;
    // The screenshots are of the sizes asked for, and the page is back in its own viewport after them.
    for (viewport, suffix) in [(Viewport::DESKTOP, "desktop"), (Viewport::PHONE, "phone")] {
        let path = crate::harness::target_dir()
            .join("screenshots")
            .join(format!("harness-form-{suffix}.png"));
        let png =
            std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        assert_eq!(&png[1..4], b"PNG", "{}", path.display());
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert_eq!(
            (width, height),
            (viewport.width, viewport.height),
            "{}",
            path.display()
        );
    }
    assert_eq!(page.eval("window.innerWidth").await, Viewport::PHONE.width);
    page.close().await;
}

#[tokio::test]
async fn two_sessions_keep_their_own_cookies_and_see_http_only() {
    let Some((browser, base, manager)) = open("/sign-in").await else {
        return;
    };
    let operator = browser.page().await;
    manager.wait_for_text("#status", "signed in").await;
    let session = manager.cookie("session").await.expect("the session cookie");
    assert_eq!(session.value(), "opaque");
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(
        session.same_site().map(|same_site| same_site.to_string()),
        Some("Strict".to_owned())
    );
    let theme = manager.cookie("theme").await.expect("the theme cookie");
    assert_ne!(theme.http_only(), Some(true));
    // The page's scripts see the one and not the other.
    assert_eq!(manager.eval("document.cookie").await, "theme=dark");

    // The other session, on the same server, has none of them.
    operator.goto(&format!("{base}/form")).await;
    operator.wait_for("#greet").await;
    assert!(operator.cookies().await.is_empty());

    manager.close().await;
    operator.close().await;
}

#[test]
fn loopback_stays_and_everything_else_leaves() {
    for url in [
        "http://127.0.0.1:8000/docs",
        "http://localhost/x",
        "http://[::1]:3000/",
        "data:image/png;base64,AAAA",
        "blob:http://127.0.0.1:8000/0b3c",
        "about:blank",
    ] {
        assert!(!leaves_the_machine(url), "{url}");
    }
    for url in [
        "http://example.invalid/x.png",
        "https://fonts.googleapis.com/css",
        "http://10.0.0.1/",
        "ws://example.com/socket",
        "not a url",
    ] {
        assert!(leaves_the_machine(url), "{url}");
    }
}
