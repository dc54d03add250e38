//! The OpenAPI document as served at `/openapi.json`: what the routes declare, plus what no route can say of
//! itself — the API keys (required once a key exists, not before), the answers every protected operation may
//! give, and the links from each created resource to the operations on it.

use std::sync::Arc;

use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ContentBuilder, OpenApi, Ref, RefOr, Response as ApiResponse, ResponseBuilder,
};

use crate::AppState;
use crate::error::AppError;

/// The document in its two states, serialised once.
pub struct Documents {
    /// Once any key exists: every operation but the public ones requires one.
    secured: String,
    /// While no key exists the API is open, and the document says so: no operation requires a key.
    open: String,
}

impl Documents {
    pub fn new(openapi: OpenApi) -> Self {
        let mut openapi = with_answers(openapi);
        let serialised = |openapi: &OpenApi| {
            let mut document = serde_json::to_value(openapi).unwrap_or_default();
            add_links(&mut document);
            document.to_string()
        };
        let open = serialised(&openapi);
        require_keys(&mut openapi);
        Self {
            secured: serialised(&openapi),
            open,
        }
    }

    /// The document as a client starting now would find the API.
    pub fn current(&self, keys_exist: bool) -> &str {
        match keys_exist {
            true => &self.secured,
            false => &self.open,
        }
    }
}

pub async fn serve(state: AppState, documents: Arc<Documents>) -> Result<Response, AppError> {
    let keys_exist = state.store.api_keys_exist().await?;
    Ok((
        [(CONTENT_TYPE, "application/json")],
        documents.current(keys_exist).to_owned(),
    )
        .into_response())
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.patch,
        &mut item.delete,
    ]
    .into_iter()
    .flatten()
}

/// The operations anyone may call, key or not.
fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

/// Adds the answers every protected operation may give (401, 403, 429).
fn with_answers(mut openapi: OpenApi) -> OpenApi {
    let error = |description: &str| -> RefOr<ApiResponse> {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody"))))
                    .build(),
            )
            .build()
            .into()
    };
    for (path, item) in openapi.paths.paths.iter_mut() {
        if is_public(path) {
            continue;
        }
        for operation in operations_mut(item) {
            let responses = &mut operation.responses.responses;
            responses.entry("401".to_owned()).or_insert_with(|| {
                error("No API key, or an unknown or revoked one (once any key exists)")
            });
            responses
                .entry("403".to_owned())
                .or_insert_with(|| error("The API key's scope does not allow this request"));
            responses.entry("429".to_owned()).or_insert_with(|| {
                error(
                    "The client's rate limit is spent (where one is configured); see `Retry-After`",
                )
            });
        }
    }
    openapi
}

/// The path parameters a link fills, each from the created resource's body or the producer's own path.
type Parameters = &'static [(&'static str, &'static str)];

/// From a created resource (the `201` of an operation) to the operations on it. None leads to an operation
/// whose body names another resource (linking an operator to a source, assigning a contact): answering an
/// unknown one 404, as the reference does, it would tell a client following the link that the resource just
/// created is gone.
const LINKS: [(&str, &[(&str, Parameters)]); 5] = [
    (
        "create_operator",
        &[
            ("get_operator", BY_ID),
            ("update_operator", BY_ID),
            ("get_operator_stats", BY_ID),
            ("delete_operator", BY_ID),
        ],
    ),
    (
        "create_source",
        &[
            ("get_source", BY_ID),
            ("update_source", BY_ID),
            ("source_queue", BY_ID),
            ("get_source_stats", BY_ID),
            ("delete_source", BY_ID),
        ],
    ),
    (
        "link_operator",
        &[
            ("update_weight", LINKED_OPERATOR),
            ("unlink_operator", LINKED_OPERATOR),
        ],
    ),
    (
        "create_contact",
        &[
            ("get_contact", BY_ID),
            ("contact_history", BY_ID),
            ("set_contact_status", BY_ID),
            ("accept_contact", BY_ID),
            ("decline_contact", BY_ID),
            ("get_lead", &[("id", "$response.body#/lead_id")]),
        ],
    ),
    (
        "create_webhook",
        &[
            ("get_webhook", BY_ID),
            ("list_deliveries", BY_ID),
            ("delete_webhook", BY_ID),
        ],
    ),
];

const BY_ID: Parameters = &[("id", "$response.body#/id")];
const LINKED_OPERATOR: Parameters = &[
    ("id", "$request.path.id"),
    ("operator_id", "$response.body#/operator_id"),
];

/// Written into the serialised document: utoipa 5 spells a link's `operationId` as `operation_id`, which no
/// OpenAPI reader knows.
fn add_links(document: &mut Value) {
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (producer, targets) in LINKS {
        let created = paths
            .values_mut()
            .filter_map(|item| item.get_mut("post"))
            .find(|operation| operation["operationId"] == producer)
            .and_then(|operation| operation.pointer_mut("/responses/201"))
            .and_then(Value::as_object_mut);
        let Some(created) = created else {
            continue;
        };
        let links: Map<String, Value> = targets
            .iter()
            .map(|(target, parameters)| {
                let parameters: Map<String, Value> = parameters
                    .iter()
                    .map(|(name, value)| ((*name).to_owned(), json!(value)))
                    .collect();
                (
                    (*target).to_owned(),
                    json!({ "operationId": target, "parameters": parameters }),
                )
            })
            .collect();
        created.insert("links".to_owned(), Value::Object(links));
    }
}

/// Declares both ways of sending a key and requires one of them on every operation but the public ones.
fn require_keys(openapi: &mut OpenApi) {
    let components = openapi.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("An API key's token: `Authorization: Bearer lr_…`"))
                .build(),
        ),
    );
    components.add_security_scheme(
        "api_key",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-API-Key",
            "An API key's token, in a header of its own",
        ))),
    );
    openapi.security = Some(vec![
        SecurityRequirement::new("bearer", Vec::<String>::new()),
        SecurityRequirement::new("api_key", Vec::<String>::new()),
    ]);
    for (path, item) in openapi.paths.paths.iter_mut() {
        if !is_public(path) {
            continue;
        }
        for operation in operations_mut(item) {
            operation.security = Some(vec![SecurityRequirement::default()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_link_names_an_operation_of_the_document() {
        let (_, openapi) = super::super::api_router().split_for_parts();
        let operation_ids: Vec<String> = openapi
            .paths
            .paths
            .values()
            .flat_map(|item| [&item.get, &item.post, &item.put, &item.patch, &item.delete])
            .flatten()
            .filter_map(|operation| operation.operation_id.clone())
            .collect();
        for (producer, targets) in LINKS {
            assert!(operation_ids.iter().any(|id| id == producer), "{producer}");
            for (target, _) in targets {
                assert!(operation_ids.iter().any(|id| id == target), "{target}");
            }
        }
        let documents = Documents::new(openapi);
        assert!(documents.current(true).contains("\"security\""));
        assert!(!documents.current(false).contains("\"security\""));
        let secured: Value = serde_json::from_str(documents.current(true)).unwrap();
        assert_eq!(
            secured.pointer("/paths/~1operators/post/responses/201/links/get_operator/operationId"),
            Some(&json!("get_operator"))
        );
    }
}
