//! `GET /`: the command center, one self-contained page (inline CSS and
//! JavaScript, no CDN) that fetches `/api/metrics` and `/api/orders` every
//! 3 seconds. Every figure has an id (`orders-per-minute`, `state-<name>`,
//! `priority-<lane>`, `viral-orders`, …) and every table row a
//! `data-order-id`, so a headless browser test can read them back.

use axum::http::header;
use axum::response::IntoResponse;

/// The page.
const PAGE: &str = include_str!("dashboard.html");

/// `GET /`.
pub(crate) async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PAGE,
    )
}
