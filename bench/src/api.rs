//! The few leadrouter calls the set-up and the checks make, with errors that say which call failed and why.
//! The measured requests do not go through here: they skip JSON decoding to keep the client cheap.

use anyhow::{Context, bail};
use reqwest::{Client, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Clone)]
pub struct Api {
    pub client: Client,
    pub base: String,
}

impl Api {
    /// A client whose connection pool keeps one idle connection per concurrent worker, so that the
    /// measured run reuses connections instead of opening new ones.
    pub fn new(base: &str, concurrency: usize) -> anyhow::Result<Self> {
        let client = Client::builder()
            .pool_max_idle_per_host(concurrency)
            .tcp_nodelay(true)
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// The same client (and connection pool) for another server.
    pub fn for_server(&self, base: &str) -> Self {
        Self {
            client: self.client.clone(),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let response = self.client.get(self.url(path)).send().await;
        decode("GET", path, StatusCode::OK, response).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> anyhow::Result<T> {
        let response = self.client.post(self.url(path)).json(body).send().await;
        decode("POST", path, StatusCode::CREATED, response).await
    }
}

async fn decode<T: DeserializeOwned>(
    method: &str,
    path: &str,
    expected: StatusCode,
    response: reqwest::Result<reqwest::Response>,
) -> anyhow::Result<T> {
    let response = response.with_context(|| format!("{method} {path}: no answer"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .with_context(|| format!("{method} {path}: reading the answer"))?;
    if status != expected {
        bail!(
            "{method} {path}: {status} (expected {expected}): {}",
            String::from_utf8_lossy(&body)
        );
    }
    serde_json::from_slice(&body).with_context(|| format!("{method} {path}: unexpected answer"))
}
