//! The browser tests: pages driven in a real headless Chromium (Debian's `chromium` and `chromium-driver`)
//! over WebDriver, one module per concern, in one test binary that shares one chromedriver. `harness` is what
//! they drive the browser with; without a browser they are skipped, except under CI (see `harness`).

#[path = "../common/mod.rs"]
mod common;

mod harness;

mod dashboard;
mod docs;
mod harness_checks;
