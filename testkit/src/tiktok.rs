//! A mock of TikTok Shop's token endpoints and Open API (see the crate docs).
