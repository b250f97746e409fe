//! Layers around the handlers: CORS from the tenants' portal origins, load shedding and the
//! request timeout, and the answer to a panic.

use std::any::Any;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::timeout::TimeoutLayer;
use tower::{BoxError, ServiceBuilder};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::REQUEST_TIMEOUT;
use super::error::{ApiError, code};
use super::extract::CLIENT_HEADER;
use crate::service::{KeyService, TenantSettings};

/// How long the set of tenant origins is reused before it is read from the store again.
pub const ORIGIN_CACHE_TTL: Duration = Duration::from_secs(30);

/// How long a failure to read the tenant origins is remembered before the next try.
const ORIGIN_RETRY_AFTER_ERROR: Duration = Duration::from_secs(5);

/// Seconds an overloaded client is asked to wait.
const OVERLOADED_RETRY_AFTER: i64 = 1;

/// The origins CORS allows: the tenants' `allowed_origins` and the configured extras.
pub(super) struct Origins {
    service: Arc<KeyService>,
    extra: HashSet<String>,
    cache: tokio::sync::Mutex<Option<(Instant, Arc<HashSet<String>>)>>,
}

/// Origins compare as browsers send them: lower case, no trailing slash.
fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

impl Origins {
    pub(super) fn new(service: Arc<KeyService>, extra: &[String]) -> Origins {
        Origins {
            service,
            extra: extra.iter().map(|o| normalize_origin(o)).collect(),
            cache: tokio::sync::Mutex::new(None),
        }
    }

    async fn allows(&self, origin: &HeaderValue) -> bool {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = normalize_origin(origin);
        origin != "null"
            && (self.extra.contains(&origin) || self.tenant_origins().await.contains(&origin))
    }

    /// The cached set, reloaded after the TTL. If the store cannot be read, the previous set
    /// (an empty one if there never was one) stays in use and the next try is a few seconds
    /// later, so an unreachable database does not stall every cross-origin request.
    async fn tenant_origins(&self) -> Arc<HashSet<String>> {
        let mut cache = self.cache.lock().await;
        let now = Instant::now();
        if let Some((valid_until, set)) = cache.as_ref()
            && now < *valid_until
        {
            return set.clone();
        }
        let (set, ttl) = match self.service.store().tenants().await {
            Ok(tenants) => {
                let set: HashSet<String> = tenants
                    .iter()
                    .filter_map(|t| serde_json::from_str::<TenantSettings>(&t.settings_json).ok())
                    .flat_map(|s| s.allowed_origins)
                    .map(|o| normalize_origin(&o))
                    .collect();
                (Arc::new(set), ORIGIN_CACHE_TTL)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the tenants' allowed origins; keeping the previous set");
                let stale = cache
                    .as_ref()
                    .map(|(_, set)| set.clone())
                    .unwrap_or_default();
                (stale, ORIGIN_RETRY_AFTER_ERROR)
            }
        };
        *cache = Some((Instant::now() + ttl, set.clone()));
        set
    }
}

/// CORS: tenant origins only; GET and POST; the headers the portal sends.
pub(super) fn cors(origins: Arc<Origins>) -> CorsLayer {
    let predicate = move |origin: HeaderValue, _: &Parts| {
        let origins = origins.clone();
        async move { origins.allows(&origin).await }
    };
    CorsLayer::new()
        .allow_origin(AllowOrigin::async_predicate(predicate))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static(CLIENT_HEADER),
        ])
        .expose_headers([header::RETRY_AFTER])
        .max_age(Duration::from_secs(600))
}

/// At most `max_in_flight` requests at once (the rest get 503 at once), each cut off after
/// [`REQUEST_TIMEOUT`]. One semaphore is shared by every route the layer is applied to.
pub(super) fn with_overload_limit<S>(router: Router<S>, max_in_flight: usize) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(overload_error))
            .layer(TimeoutLayer::new(REQUEST_TIMEOUT))
            .layer(LoadShedLayer::new())
            .layer(GlobalConcurrencyLimitLayer::new(max_in_flight.max(1))),
    )
}

async fn overload_error(err: BoxError) -> ApiError {
    if err.is::<tower::load_shed::error::Overloaded>() {
        ApiError::new(code::OVERLOADED).retry_after(OVERLOADED_RETRY_AFTER)
    } else if err.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(code::REQUEST_TIMEOUT)
    } else {
        ApiError::internal(&err)
    }
}

/// A handler panicked: 500 with the generic message; the panic text goes to the log.
pub(super) fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    ApiError::internal(&format_args!("handler panicked: {detail}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_normalize() {
        assert_eq!(
            normalize_origin(" https://Portal.Example.com/ "),
            "https://portal.example.com"
        );
    }
}
