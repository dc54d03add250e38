//! The browser harness: a real headless Chromium (Debian's `chromium` and `chromium-driver`) driven over
//! WebDriver with fantoccini.
//!
//! [`Browser::start`] finds chromedriver and Chromium, and starts one chromedriver for the whole test binary (on
//! a free loopback port, the first time a test asks); a test without them is skipped (`None`), or fails under
//! CI. [`Browser::page`] opens a [`Page`]: a browser session of its own, with a fresh profile, so two pages are
//! two people with two cookie jars. A page collects what the browser logged since it last navigated: its console
//! errors ([`Page::console_errors`]) and every URL it requested ([`Page::requests_leaving_the_machine`]);
//! [`Page::assert_clean`] checks both and saves a screenshot at desktop and at phone width under
//! `target/screenshots/`.
//!
//! Nothing a page does leaves the machine: Chromium is given a proxy on a closed loopback port for every
//! address but loopback, and resolves no name but `localhost`, so a request for the internet fails in the
//! browser (and is still reported) instead of going out.
//!
//! No process outlives the test binary: chromedriver runs under a small `sh` watchdog that leads a process group
//! of its own and reads its standard input from the test binary; when the binary exits, however it exits, the
//! pipe closes and the watchdog kills the group, chromedriver and every Chromium it started. A page's own
//! Chromium is ended sooner, when the page is closed or dropped.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::http::Method;
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use url::Url;

pub use fantoccini::cookies::Cookie;

use super::common::in_ci;

/// Overrides the chromedriver found on `PATH` or in `/usr/bin`.
pub const CHROMEDRIVER_VAR: &str = "LEADROUTER_TEST_CHROMEDRIVER";
/// Overrides the Chromium found on `PATH` or in `/usr/bin`.
pub const CHROMIUM_VAR: &str = "LEADROUTER_TEST_CHROMIUM";

/// How long the waiting helpers poll before they fail: generous, since a loaded CI machine may be slow to
/// start a browser or render a page. It bounds a wait; it asserts nothing about speed.
pub const WAIT: Duration = Duration::from_secs(10);
const POLL_EVERY: Duration = Duration::from_millis(50);

/// A viewport the page lays out in (CSS pixels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewport {
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
    /// Emulates a phone: `<meta name="viewport">` is honoured, touch events, a mobile user agent's layout.
    pub mobile: bool,
}

impl Viewport {
    pub const DESKTOP: Viewport = Viewport {
        name: "desktop",
        width: 1280,
        height: 800,
        mobile: false,
    };
    pub const PHONE: Viewport = Viewport {
        name: "phone",
        width: 390,
        height: 844,
        mobile: true,
    };
}

/// The shared chromedriver of this test binary, and the Chromium it starts.
#[derive(Clone, Debug)]
pub struct Browser {
    /// `http://127.0.0.1:PORT/`
    driver_url: String,
    chromium: PathBuf,
}

/// The watchdog: starts chromedriver (its arguments are the script's), then waits for its standard input, the
/// test binary's pipe, to close; then ends its process group (itself, chromedriver and the browsers), with
/// `TERM` and, a second later, `KILL` for whatever ignored it. TERM is ignored by the shell only after
/// chromedriver has started, so that chromedriver does not inherit the ignoring.
const WATCHDOG: &str =
    r#""$@" </dev/null & trap '' TERM; cat >/dev/null; kill -TERM 0; sleep 1; kill -KILL 0"#;

struct Driver {
    url: String,
    /// Kept, with its standard input open, until the process exits.
    _watchdog: Child,
}

static DRIVER: OnceLock<Result<Driver, String>> = OnceLock::new();

impl Browser {
    /// The browser, when chromedriver and Chromium are installed: starts the binary's chromedriver the first
    /// time. Without them, `None` and a `skipped:` line on stderr (the test returns early), except under CI,
    /// where it panics.
    pub fn start() -> Option<Browser> {
        let (Some(chromedriver), Some(chromium)) = (
            find_program(CHROMEDRIVER_VAR, "chromedriver"),
            find_program(CHROMIUM_VAR, "chromium"),
        ) else {
            if in_ci() {
                panic!(
                    "CI is set, and chromium or chromedriver is missing (looked on PATH and in /usr/bin; \
                     {CHROMIUM_VAR} and {CHROMEDRIVER_VAR} override): the browser tests must run under CI \
                     (.ci/run installs them: apt-get install chromium chromium-driver)"
                );
            }
            eprintln!(
                "skipped: no chromium/chromedriver (apt-get install chromium chromium-driver)"
            );
            return None;
        };
        let driver = DRIVER.get_or_init(|| start_driver(&chromedriver));
        match driver {
            Ok(driver) => Some(Browser {
                driver_url: driver.url.clone(),
                chromium,
            }),
            Err(error) => panic!("{error}"),
        }
    }

    /// A new page at desktop size, in a browser session of its own (its own Chromium, profile and cookies).
    pub async fn page(&self) -> Page {
        let profile = tempfile::tempdir().expect("a temporary profile directory");
        let arguments = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            format!(
                "--window-size={},{}",
                Viewport::DESKTOP.width,
                Viewport::DESKTOP.height
            ),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--hide-scrollbars".to_owned(),
            // Every address but loopback goes through a proxy on a port nothing listens on (discard, 9): a
            // request for the internet fails at once, in the browser, whatever the page asked for.
            "--proxy-server=http://127.0.0.1:9".to_owned(),
            // And no name but localhost resolves, so not even a DNS query leaves.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"
                .to_owned(),
        ];
        let capabilities: Capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": arguments,
            },
            "goog:loggingPrefs": { "browser": "ALL", "performance": "ALL" },
        })
        .as_object()
        .unwrap()
        .clone();
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&self.driver_url)
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "chromedriver ({}) could not start {}: {error}",
                    self.driver_url,
                    self.chromium.display()
                )
            });
        let session_id = client
            .session_id()
            .await
            .expect("the session id")
            .expect("a session");
        let page = Page {
            client,
            driver_url: self.driver_url.clone(),
            session_id,
            viewport: Mutex::new(Viewport::DESKTOP),
            browser_log: Mutex::new(Vec::new()),
            performance_log: Mutex::new(Vec::new()),
            closed: false,
            _profile: profile,
        };
        page.set_viewport(Viewport::DESKTOP).await;
        page
    }
}

/// One browser session, on one page at a time. Its methods panic, with what was expected and where, when the
/// browser fails them: they are for tests.
pub struct Page {
    client: Client,
    driver_url: String,
    session_id: String,
    viewport: Mutex<Viewport>,
    /// The entries of each log read so far since the last [`Page::goto`]: chromedriver hands each out once.
    browser_log: Mutex<Vec<Value>>,
    performance_log: Mutex<Vec<Value>>,
    closed: bool,
    /// Removed when the page goes, after its browser has quit.
    _profile: tempfile::TempDir,
}

impl Page {
    /// The fantoccini client, for what the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Navigates to the URL and waits for it to load (the document's `load` event). What the browser logged
    /// before is forgotten: the logs start with this page.
    pub async fn goto(&self, url: &str) {
        self.read_log("browser").await;
        self.read_log("performance").await;
        self.browser_log.lock().unwrap().clear();
        self.performance_log.lock().unwrap().clear();
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|error| panic!("goto {url}: {error}"));
    }

    /// The URL the page shows now.
    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(String::from)
            .unwrap_or_else(|error| panic!("the current URL: {error}"))
    }

    /// Polls `probe` until it gives `Some`, for at most [`WAIT`]; panics saying what was waited for.
    /// (`probe` is a closure returning a future, `|| async { … }`, rather than an async closure, so that the
    /// test's future stays `Send`: a test may `tokio::spawn` a page's work.)
    pub async fn wait_until<T, Probe, Answer>(&self, what: &str, mut probe: Probe) -> T
    where
        Probe: FnMut() -> Answer,
        Answer: Future<Output = Option<T>>,
    {
        let until = Instant::now() + WAIT;
        loop {
            if let Some(value) = probe().await {
                return value;
            }
            if Instant::now() >= until {
                let url = self.url().await;
                panic!("waited {WAIT:?} on {url} for {what}, in vain");
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Waits for an element matching the CSS selector to be in the page, and returns it.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.wait_until(&format!("an element matching `{css}`"), || async {
            self.client.find(Locator::Css(css)).await.ok()
        })
        .await
    }

    /// Waits for the text of the first element matching the selector to contain `expected`; returns the text.
    pub async fn wait_for_text(&self, css: &str, expected: &str) -> String {
        self.wait_until(
            &format!("the text of `{css}` to contain {expected:?}"),
            || async {
                let element = self.client.find(Locator::Css(css)).await.ok()?;
                let text = element.text().await.ok()?;
                text.contains(expected).then_some(text)
            },
        )
        .await
    }

    /// Waits for the JavaScript expression to be truthy; returns its value.
    pub async fn wait_for_js(&self, expression: &str) -> Value {
        self.wait_until(&format!("`{expression}` to be truthy"), || async {
            let value = self
                .client
                .execute(&format!("return ({expression});"), Vec::new())
                .await
                .ok()?;
            truthy(&value).then_some(value)
        })
        .await
    }

    /// The rendered text of the first element matching the selector (waiting for it to exist).
    pub async fn text_of(&self, css: &str) -> String {
        let element = self.wait_for(css).await;
        element
            .text()
            .await
            .unwrap_or_else(|error| panic!("the text of `{css}`: {error}"))
    }

    /// Clicks the first element matching the selector (waiting for it to exist).
    pub async fn click(&self, css: &str) {
        let element = self.wait_for(css).await;
        element
            .click()
            .await
            .unwrap_or_else(|error| panic!("clicking `{css}`: {error}"));
    }

    /// Empties the field matching the selector (waiting for it to exist) and types the text into it.
    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.wait_for(css).await;
        element
            .clear()
            .await
            .unwrap_or_else(|error| panic!("clearing `{css}`: {error}"));
        element
            .send_keys(text)
            .await
            .unwrap_or_else(|error| panic!("typing into `{css}`: {error}"));
    }

    /// The value of a JavaScript expression (a promise is awaited), as JSON.
    pub async fn eval(&self, expression: &str) -> Value {
        self.client
            .execute(&format!("return ({expression});"), Vec::new())
            .await
            .unwrap_or_else(|error| panic!("evaluating `{expression}`: {error}"))
    }

    /// Lays the page out in the viewport (exactly that many CSS pixels, and a phone's behaviour for
    /// [`Viewport::PHONE`]) until told otherwise.
    pub async fn set_viewport(&self, viewport: Viewport) {
        self.emulate(viewport).await;
        *self.viewport.lock().unwrap() = viewport;
    }

    /// Saves a screenshot of the page at desktop and at phone width, `target/screenshots/NAME-desktop.png`
    /// and `NAME-phone.png`, and returns their paths; the page keeps its viewport.
    pub async fn screenshot(&self, name: &str) -> Vec<PathBuf> {
        let directory = target_dir().join("screenshots");
        std::fs::create_dir_all(&directory)
            .unwrap_or_else(|error| panic!("creating {}: {error}", directory.display()));
        let mut paths = Vec::new();
        for viewport in [Viewport::DESKTOP, Viewport::PHONE] {
            self.emulate(viewport).await;
            let png =
                self.client.screenshot().await.unwrap_or_else(|error| {
                    panic!("screenshot {name} ({}): {error}", viewport.name)
                });
            let path = directory.join(format!("{}-{}.png", file_name(name), viewport.name));
            std::fs::write(&path, png)
                .unwrap_or_else(|error| panic!("writing {}: {error}", path.display()));
            paths.push(path);
        }
        let viewport = *self.viewport.lock().unwrap();
        self.emulate(viewport).await;
        paths
    }

    /// The console errors since the last [`Page::goto`] (pages reached from it by a click included): the
    /// browser log's `SEVERE` entries (`console.error`, uncaught exceptions, resources that failed to load),
    /// each as the browser wrote it.
    pub async fn console_errors(&self) -> Vec<String> {
        self.read_log("browser").await;
        self.browser_log
            .lock()
            .unwrap()
            .iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Every URL the page requested since the last [`Page::goto`] (documents, scripts, images, fetches, event
    /// streams, web sockets), in order.
    pub async fn requests(&self) -> Vec<String> {
        self.read_log("performance").await;
        self.performance_log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|entry| {
                let message: Value = serde_json::from_str(entry["message"].as_str()?).ok()?;
                let message = &message["message"];
                match message["method"].as_str()? {
                    "Network.requestWillBeSent" => message["params"]["request"]["url"].as_str(),
                    "Network.webSocketCreated" => message["params"]["url"].as_str(),
                    _ => None,
                }
                .map(str::to_owned)
            })
            .collect()
    }

    /// The URLs requested since the last [`Page::goto`] whose host is not this machine (`127.0.0.1`,
    /// `localhost`, `[::1]`); `data:`, `blob:` and `about:` URLs never leave it.
    pub async fn requests_leaving_the_machine(&self) -> Vec<String> {
        self.requests()
            .await
            .into_iter()
            .filter(|url| leaves_the_machine(url))
            .collect()
    }

    /// Asserts that the page, once loaded, logged no console error and requested nothing from outside the
    /// machine, and saves its screenshots (first, so that a failing page can be looked at).
    pub async fn assert_clean(&self, page_name: &str) {
        self.wait_for_js("document.readyState === 'complete'").await;
        let screenshots = self.screenshot(page_name).await;
        let errors = self.console_errors().await;
        let outside = self.requests_leaving_the_machine().await;
        let url = self.url().await;
        assert!(
            errors.is_empty() && outside.is_empty(),
            "{page_name} ({url}) is not clean:\n  console errors: {errors:#?}\n  requests leaving the \
             machine: {outside:#?}\n  screenshots: {screenshots:?}"
        );
        for path in &screenshots {
            assert!(
                std::fs::metadata(path).is_ok_and(|file| file.len() > 0),
                "{page_name}: no screenshot at {}",
                path.display()
            );
        }
    }

    /// The cookies the browser holds for the page's URL (with their flags: `http_only()`, `same_site()`…).
    pub async fn cookies(&self) -> Vec<Cookie<'static>> {
        self.client
            .get_all_cookies()
            .await
            .unwrap_or_else(|error| panic!("reading the cookies: {error}"))
    }

    /// The cookie of that name the browser holds for the page's URL, if any.
    pub async fn cookie(&self, name: &str) -> Option<Cookie<'static>> {
        self.cookies()
            .await
            .into_iter()
            .find(|cookie| cookie.name() == name)
    }

    /// Ends the session: its Chromium quits. (Dropping the page does it too, blocking briefly.)
    pub async fn close(mut self) {
        self.closed = true;
        let client = self.client.clone();
        client
            .close()
            .await
            .unwrap_or_else(|error| panic!("closing the browser session: {error}"));
    }

    /// Sets the viewport through the DevTools protocol, and waits for the page to have laid itself out in it.
    async fn emulate(&self, viewport: Viewport) {
        self.devtools(
            "Emulation.setDeviceMetricsOverride",
            json!({
                "width": viewport.width,
                "height": viewport.height,
                "deviceScaleFactor": 1,
                "mobile": viewport.mobile,
                "screenWidth": viewport.width,
                "screenHeight": viewport.height,
            }),
        )
        .await;
        // The screen, not the window: a phone lays out a page without `<meta name="viewport">` 980 pixels
        // wide, as a real one does.
        self.wait_for_js(&format!(
            "screen.width === {} && new Promise(done => requestAnimationFrame(() => \
             requestAnimationFrame(() => done(true))))",
            viewport.width
        ))
        .await;
    }

    /// Runs a DevTools protocol command on the page (chromedriver's `goog/cdp/execute`).
    async fn devtools(&self, command: &str, params: Value) -> Value {
        self.session_command(
            "goog/cdp/execute",
            json!({ "cmd": command, "params": params }),
        )
        .await
        .unwrap_or_else(|error| panic!("DevTools {command}: {error}"))
    }

    /// Adds the log's entries chromedriver has gathered since it was last read (it hands each out once).
    async fn read_log(&self, log: &str) {
        let entries = self
            .session_command("se/log", json!({ "type": log }))
            .await
            .unwrap_or_else(|error| panic!("reading the {log} log: {error}"));
        let entries = match entries {
            Value::Array(entries) => entries,
            other => panic!("the {log} log is not a list: {other}"),
        };
        let buffer = match log {
            "browser" => &self.browser_log,
            _ => &self.performance_log,
        };
        buffer.lock().unwrap().extend(entries);
    }

    /// `POST /session/{id}/PATH` with the JSON body: a chromedriver command fantoccini has no method for.
    async fn session_command(
        &self,
        path: &'static str,
        body: Value,
    ) -> Result<Value, fantoccini::error::CmdError> {
        self.client.issue_cmd(SessionPost { path, body }).await
    }
}

impl Drop for Page {
    /// Ends the session unless [`Page::close`] did: a test that panicked leaves no browser running until the
    /// binary exits. Blocking (chromedriver answers once the browser has quit), as an async drop cannot be.
    fn drop(&mut self) {
        if !self.closed {
            delete_session(&self.driver_url, &self.session_id);
        }
    }
}

/// A chromedriver command on the session: `POST /session/{id}/{path}` with a JSON body.
#[derive(Debug)]
struct SessionPost {
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for SessionPost {
    fn endpoint(&self, base_url: &Url, session_id: Option<&str>) -> Result<Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _request_url: &Url) -> (Method, Option<String>) {
        (Method::POST, Some(self.body.to_string()))
    }
}

/// `DELETE /session/{id}` on chromedriver, over a plain blocking connection; errors are ignored (the session
/// may be gone already, and the watchdog ends every browser at exit anyway).
fn delete_session(driver_url: &str, session_id: &str) {
    let Some(address) = driver_url
        .strip_prefix("http://")
        .and_then(|rest| rest.trim_end_matches('/').parse::<SocketAddr>().ok())
    else {
        return;
    };
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(2)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
    let request = format!(
        "DELETE /session/{session_id} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return;
    }
    // chromedriver answers once the browser has quit, and keeps the connection open: the answer's head is
    // all there is to wait for.
    let mut answer = Vec::new();
    let mut chunk = [0; 1024];
    while !answer.windows(4).any(|window| window == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(read) => answer.extend_from_slice(&chunk[..read]),
        }
    }
}

/// Starts chromedriver under the watchdog on a free loopback port, and waits for it to accept connections.
/// Its output goes to `target/browser/chromedriver.log`.
fn start_driver(chromedriver: &Path) -> Result<Driver, String> {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map_err(|error| format!("no free port for chromedriver: {error}"))?
        .port();
    let log_dir = target_dir().join("browser");
    std::fs::create_dir_all(&log_dir).map_err(|error| format!("{}: {error}", log_dir.display()))?;
    let log_path = log_dir.join("chromedriver.log");
    let log =
        File::create(&log_path).map_err(|error| format!("{}: {error}", log_path.display()))?;
    let mut watchdog = Command::new("/bin/sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("leadrouter-test-chromedriver")
        .arg(chromedriver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(log.try_clone().map_err(|error| error.to_string())?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|error| format!("starting {}: {error}", chromedriver.display()))?;
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let until = Instant::now() + WAIT;
    while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
        let exited = watchdog.try_wait().ok().flatten().is_some();
        if exited || Instant::now() >= until {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(format!(
                "{} did not start listening on {address} within {WAIT:?}; its log ({}):\n{log}",
                chromedriver.display(),
                log_path.display()
            ));
        }
        std::thread::sleep(POLL_EVERY);
    }
    Ok(Driver {
        url: format!("http://{address}/"),
        _watchdog: watchdog,
    })
}

/// The program named by the variable, or else `name` on `PATH` or in `/usr/bin`. A variable naming no program
/// is a mistake worth a panic, not a skip.
fn find_program(variable: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable).filter(|path| !path.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            is_executable(&path),
            "{variable}={} is not an executable file",
            path.display()
        );
        return Some(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|directory| directory.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when it is an absolute path, else the one this test binary was
/// built in (`<target>/debug/deps/browser-…`), else `target` beside Cargo.toml.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from)
        && dir.is_absolute()
    {
        return dir;
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            let deps = exe.parent()?;
            (deps.file_name()? == "deps").then(|| deps.parent()?.parent().map(Path::to_path_buf))?
        })
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Whether a requested URL goes to another machine than this one.
pub fn leaves_the_machine(url: &str) -> bool {
    let Ok(parsed) = Url::parse(url) else {
        return true;
    };
    if matches!(parsed.scheme(), "data" | "blob" | "about") {
        return false;
    }
    match parsed.host() {
        Some(url::Host::Domain(domain)) => domain != "localhost",
        Some(url::Host::Ipv4(address)) => !address.is_loopback(),
        Some(url::Host::Ipv6(address)) => !address.is_loopback(),
        None => true,
    }
}

/// JavaScript's truthiness of a JSON value.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(value) => *value,
        Value::Number(number) => number.as_f64().is_some_and(|number| number != 0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// A page name as a file name: letters, digits, `-` and `_` kept, anything else `-`.
fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}
