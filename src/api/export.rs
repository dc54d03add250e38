//! CSV downloads: `GET /contacts/` and `GET /stats/sources/{id}` with `Accept: text/csv`. Each builder takes
//! what a handler has parsed — the state, the caller's reach, the filter — and returns the whole response, so
//! that any route (the API's, or a page's download link) offers the same file without repeating it.
//!
//! The contacts are streamed: read a chunk at a time through the store's read path (each chunk starting below
//! the last id sent, one read each), each chunk encoded and sent as one frame of the body, read only as fast
//! as the client takes it; memory stays that of one chunk however many rows there are.

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::body::{Body, Bytes};
use axum::http::header::{ACCEPT, CONTENT_DISPOSITION, CONTENT_TYPE, VARY};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::contacts::within_reach;
use super::stats::{OperatorFairness, OperatorShare, read_source_stats};
use super::wire::timestamp_text;
use crate::AppState;
use crate::domain::Reach;
use crate::domain::fairness::Window;
use crate::error::AppError;
use crate::store::contacts::Contact;
use crate::store::{ContactFilter, Page, Store};

pub const CSV_CONTENT_TYPE: &str = "text/csv; charset=utf-8";

/// The contacts read, encoded and sent at a time.
pub const CHUNK_ROWS: i64 = 1000;

/// The columns of a contacts download, in order.
pub const CONTACT_COLUMNS: [&str; 15] = [
    "id",
    "created_at",
    "source_id",
    "source_name",
    "lead_id",
    "lead_name",
    "lead_phone",
    "lead_email",
    "lead_external_id",
    "operator_id",
    "operator_name",
    "status",
    "assigned_at",
    "accepted_at",
    "message",
];

/// The columns of a source's stats download: a row per operator of the distribution, with their part in
/// the window's fairness.
pub const SOURCE_STATS_COLUMNS: [&str; 12] = [
    "operator_id",
    "operator_name",
    "count",
    "active_count",
    "weight",
    "target_share",
    "actual_share",
    "fairness_assignments",
    "fairness_expected",
    "fairness_target_share",
    "fairness_actual_share",
    "fairness_deviation_pp",
];

/// A contacts download of one contact, for the OpenAPI document.
pub const CONTACTS_EXAMPLE: &str = "id,created_at,source_id,source_name,lead_id,lead_name,lead_phone,\
lead_email,lead_external_id,operator_id,operator_name,status,assigned_at,accepted_at,message\n\
1,2026-11-25T16:53:02.360889Z,1,Telegram Bot,1,Иван Иванов,+79991234567,ivan@example.com,user123,2,\
Оператор 2,active,2026-11-25T16:53:02.360889Z,,\"Хочу узнать о продукте, \"\"Pro\"\"\"\n";

/// A source's stats download, for the OpenAPI document.
pub const SOURCE_STATS_EXAMPLE: &str = "operator_id,operator_name,count,active_count,weight,target_share,\
actual_share,fairness_assignments,fairness_expected,fairness_target_share,fairness_actual_share,\
fairness_deviation_pp\n\
1,Оператор 1,26,3,10,0.25,0.26,26,25,0.25,0.26,1\n\
2,Оператор 2,74,9,30,0.75,0.74,74,75,0.75,0.74,-1\n\
,,0,0,,,,,,,,\n";

/// Whether the request's `Accept` prefers `text/csv` to `application/json`. Each type takes the quality of the
/// most specific range that matches it (`text/csv`, then `text/*`, then `*/*`, as RFC 9110 says); CSV only
/// when its quality is higher, so that no header, `*/*` or a tie keeps JSON, the default.
pub fn wants_csv(headers: &HeaderMap) -> bool {
    let mut csv = Preference::default();
    let mut json = Preference::default();
    let ranges = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','));
    for range in ranges {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let quality = parts
            .filter_map(|parameter| parameter.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .map_or(Some(1.0), |(_, q)| q.trim().parse::<f32>().ok())
            .filter(|q| (0.0..=1.0).contains(q));
        let Some(quality) = quality else { continue };
        csv.offer(&media, ("text", "csv"), quality);
        json.offer(&media, ("application", "json"), quality);
    }
    csv.quality() > json.quality()
}

/// A media type's quality by the most specific `Accept` range that matches it so far.
#[derive(Default)]
struct Preference {
    /// 3 for the type itself, 2 for `type/*`, 1 for `*/*`; 0: no range matched.
    specificity: u8,
    quality: f32,
}

impl Preference {
    fn offer(&mut self, media: &str, (kind, subtype): (&str, &str), quality: f32) {
        let specificity = match media.split_once('/') {
            Some((k, s)) if k == kind && s == subtype => 3,
            Some((k, "*")) if k == kind => 2,
            Some(("*", "*")) => 1,
            _ => 0,
        };
        if specificity > self.specificity {
            (self.specificity, self.quality) = (specificity, quality);
        }
    }

    fn quality(&self) -> f32 {
        self.quality
    }
}

/// The response, with `Vary: Accept`: what it holds depends on that header, which caches must know.
pub fn varies_by_accept(response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response
        .headers_mut()
        .insert(VARY, HeaderValue::from_static("accept"));
    response
}

/// Which of the matching contacts a download holds: `skip` passed over, then at most `limit` (every one
/// after them: `None`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Rows {
    pub skip: i64,
    pub limit: Option<i64>,
}

/// The contacts the filter selects within the reach, newest first, as `contacts.csv`: a header row and a row
/// per contact, streamed (see the module's comment). The first chunk is read before answering, so that a
/// request the database cannot serve gets its error as any other request does; should a later read fail, the
/// body breaks off without its end, and the client sees an incomplete transfer, never a short file that
/// looks whole. An `operator` reach lists only its operator's contacts (another `operator_id`: 403).
pub async fn contacts(
    state: AppState,
    reach: Reach,
    filter: ContactFilter,
    rows: Rows,
) -> Result<Response, AppError> {
    let mut chunks = ContactChunks {
        store: state.store,
        filter: within_reach(filter, reach)?,
        before: None,
        skip: rows.skip,
        left: rows.limit,
        done: false,
        csv: Encoder::new(&CONTACT_COLUMNS)?,
    };
    let first = chunks.next().await?.unwrap_or_default();
    let rest = futures_util::stream::try_unfold(chunks, |mut chunks| async move {
        match chunks.next().await {
            Ok(bytes) => Ok(bytes.map(|bytes| (bytes, chunks))),
            Err(error) => {
                tracing::error!(%error, "a contacts download broke off");
                Err(error)
            }
        }
    });
    let body = futures_util::stream::once(async { Ok::<_, AppError>(first) });
    let body = Body::from_stream(futures_util::StreamExt::chain(body, rest));
    Ok(csv_response("contacts.csv", body))
}

/// The source's operator distribution as `source-{id}-stats.csv`: the rows of `GET /stats/sources/{id}`'s
/// `operator_distribution` (the unassigned one last, without an operator), each with its part of the
/// window's `fairness`; an operator who was a candidate in the window but holds none of the source's contacts
/// and is no longer linked has a row with only the fairness columns. Small (a row per operator), so sent
/// whole.
pub async fn source_stats(state: &AppState, id: i64, window: Window) -> Result<Response, AppError> {
    let stats = read_source_stats(state, id, window).await?;
    let mut by_operator: BTreeMap<i64, (Option<&OperatorShare>, Option<&OperatorFairness>)> =
        BTreeMap::new();
    let mut unassigned = None;
    for share in &stats.operator_distribution {
        match share.operator_id {
            Some(operator_id) => by_operator.entry(operator_id).or_default().0 = Some(share),
            None => unassigned = Some(share),
        }
    }
    for fairness in &stats.fairness.operators {
        by_operator.entry(fairness.operator_id).or_default().1 = Some(fairness);
    }
    let mut csv = Encoder::new(&SOURCE_STATS_COLUMNS)?;
    let rows = by_operator
        .into_iter()
        .map(|(id, (share, fairness))| (Some(id), share, fairness))
        .chain(unassigned.map(|share| (None, Some(share), None)));
    for (operator_id, share, fairness) in rows {
        let name = share
            .and_then(|s| s.operator_name.as_deref())
            .or_else(|| fairness.and_then(|f| f.operator_name.as_deref()));
        csv.row([
            number(operator_id),
            text(name),
            number(share.map(|s| s.count)),
            number(share.map(|s| s.active_count)),
            number(share.and_then(|s| s.weight)),
            number(share.and_then(|s| s.target_share)),
            number(share.and_then(|s| s.actual_share)),
            number(fairness.map(|f| f.assignments)),
            number(fairness.map(|f| f.expected)),
            number(fairness.map(|f| f.target_share)),
            number(fairness.map(|f| f.actual_share)),
            number(fairness.map(|f| f.deviation_pp)),
        ])?;
    }
    let body = Body::from(csv.take()?);
    Ok(csv_response(&format!("source-{id}-stats.csv"), body))
}

fn csv_response(filename: &str, body: Body) -> Response {
    let disposition = format!("attachment; filename=\"{filename}\"");
    let headers = [
        (CONTENT_TYPE, HeaderValue::from_static(CSV_CONTENT_TYPE)),
        (
            CONTENT_DISPOSITION,
            HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("attachment")),
        ),
    ];
    varies_by_accept((headers, body))
}

/// Where a contacts download is: what it reads next, and what is left of it.
struct ContactChunks {
    store: Store,
    filter: ContactFilter,
    /// The last id sent: the next chunk starts below it.
    before: Option<i64>,
    /// Rows still to pass over (only the first read passes over any).
    skip: i64,
    /// Rows still to send, when a limit was asked for.
    left: Option<i64>,
    done: bool,
    csv: Encoder,
}

impl ContactChunks {
    /// The next chunk's bytes (the first holds the header row); `None` once everything is sent.
    async fn next(&mut self) -> Result<Option<Bytes>, AppError> {
        if self.done {
            return Ok(None);
        }
        let limit = self.left.map_or(CHUNK_ROWS, |left| left.min(CHUNK_ROWS));
        let page = Page {
            skip: std::mem::take(&mut self.skip),
            limit,
        };
        let contacts = self
            .store
            .list_contacts_before(&self.filter, self.before, page)
            .await?;
        let read = contacts.len() as i64;
        if let Some(left) = &mut self.left {
            *left -= read;
        }
        self.done = read < limit || self.left == Some(0);
        self.before = contacts.last().map(|contact| contact.id).or(self.before);
        for contact in &contacts {
            self.csv.contact(contact)?;
        }
        let bytes = self.csv.take()?;
        Ok((!bytes.is_empty()).then_some(bytes))
    }
}

/// A CSV encoder into a buffer, emptied by each [`Encoder::take`].
struct Encoder(csv::Writer<Vec<u8>>);

impl Encoder {
    /// An encoder that has written the header row.
    fn new<const N: usize>(columns: &[&str; N]) -> Result<Self, AppError> {
        let mut encoder = Self(csv::Writer::from_writer(Vec::new()));
        encoder.row(columns.map(Cow::Borrowed))?;
        Ok(encoder)
    }

    fn row<const N: usize>(&mut self, cells: [Cow<'_, str>; N]) -> Result<(), AppError> {
        let cells = cells.iter().map(|cell| cell.as_bytes());
        self.0.write_record(cells).map_err(encoding)
    }

    fn contact(&mut self, contact: &Contact) -> Result<(), AppError> {
        let lead = &contact.lead;
        self.row([
            number(Some(contact.id)),
            time(Some(contact.created_at)),
            number(Some(contact.source_id)),
            text(Some(&contact.source.name)),
            number(Some(contact.lead_id)),
            text(lead.name.as_deref()),
            // E.164, `+` and digits only: a number to a spreadsheet, never a formula, and kept as it is.
            Cow::Borrowed(lead.phone.as_deref().unwrap_or_default()),
            text(lead.email.as_deref()),
            text(lead.external_id.as_deref()),
            number(contact.operator_id),
            text(contact.operator.as_ref().map(|o| o.name.as_str())),
            text(Some(contact.status.as_str())),
            time(contact.assigned_at),
            time(contact.accepted_at),
            text(contact.message.as_deref()),
        ])
    }

    /// What was written since the last call.
    fn take(&mut self) -> Result<Bytes, AppError> {
        let next = csv::Writer::from_writer(Vec::new());
        let written = std::mem::replace(&mut self.0, next)
            .into_inner()
            .map_err(|e| encoding(e.into_error().into()))?;
        Ok(Bytes::from(written))
    }
}

fn encoding(error: csv::Error) -> AppError {
    AppError::Internal(anyhow::Error::new(error).context("encoding CSV"))
}

/// A text cell; empty for none. One that a spreadsheet would read as a formula (starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return) gets a leading `'`, which makes it text (OWASP's advice against CSV
/// injection): a lead's name or message is whatever the lead wrote.
fn text(value: Option<&str>) -> Cow<'_, str> {
    match value {
        Some(value) if value.starts_with(['=', '+', '-', '@', '\t', '\r']) => {
            Cow::Owned(format!("'{value}"))
        }
        Some(value) => Cow::Borrowed(value),
        None => Cow::Borrowed(""),
    }
}

fn number(value: Option<impl ToString>) -> Cow<'static, str> {
    value.map_or(Cow::Borrowed(""), |value| Cow::Owned(value.to_string()))
}

/// RFC 3339 in UTC, as the JSON spells it.
fn time(value: Option<DateTime<Utc>>) -> Cow<'static, str> {
    value.map_or(Cow::Borrowed(""), |time| Cow::Owned(timestamp_text(&time)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_str(value).unwrap());
        wants_csv(&headers)
    }

    #[test]
    fn csv_only_when_the_accept_header_prefers_it() {
        assert!(!wants_csv(&HeaderMap::new()));
        assert!(accept("text/csv"));
        assert!(accept("Text/CSV; charset=utf-8"));
        assert!(accept("text/*"));
        assert!(accept("application/json;q=0.5, text/csv"));
        assert!(accept("*/*;q=0.1, text/csv;q=0.2"));
        assert!(!accept("*/*"));
        assert!(!accept("application/json"));
        assert!(!accept("text/csv, application/json"));
        assert!(!accept("text/csv;q=0.5, application/json"));
        assert!(!accept("text/csv;q=0, */*"));
        assert!(!accept(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(!accept("text/csv;q=nonsense"));
    }

    #[test]
    fn the_documented_examples_have_the_columns() {
        for (example, columns) in [
            (CONTACTS_EXAMPLE, &CONTACT_COLUMNS[..]),
            (SOURCE_STATS_EXAMPLE, &SOURCE_STATS_COLUMNS[..]),
        ] {
            let mut reader = csv::Reader::from_reader(example.as_bytes());
            assert_eq!(reader.headers().unwrap(), columns);
            for record in reader.records() {
                assert_eq!(record.unwrap().len(), columns.len());
            }
        }
    }

    #[test]
    fn formulas_are_kept_from_spreadsheets() {
        for formula in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(text(Some(formula)), format!("'{formula}"));
        }
        assert_eq!(text(Some("Иван, \"1\"")), "Иван, \"1\"");
        assert_eq!(text(Some("a=b")), "a=b");
        assert_eq!(text(None), "");
    }
}
