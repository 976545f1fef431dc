//! `GET /`: the command center, one self-contained page (inline CSS and
//! JavaScript, no CDN) that fetches `/api/metrics`, `/api/orders` and the
//! review queue (`/api/review`) every 3 seconds. Every figure has an id
//! (`orders-per-minute`, `state-<name>`, `priority-<lane>`,
//! `viral-orders`, …) and every table row a `data-order-id`, so a headless
//! browser test can read them back.
//!
//! The page asks for a token once (the `#login` form) and keeps it in the
//! tab's `sessionStorage['creatorflow-token']`, never in a URL; every
//! request sends it as `Authorization: Bearer`, and a 401 clears it and
//! asks again ("token refused"). The review queue (`#review`) has Approve
//! and Reject buttons per order (Reject needs the reason typed in the
//! row); clicking an order opens its detail (`#detail`: history with who
//! did what, Retry and Cancel).

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
