//! Signals the host feeds in: trending hashtags, influencer mentions and
//! flash sales linked to a product, each with an expiry.
//!
//! The detectors only see orders; these signals come from outside (a
//! hashtag-monitoring job, an influencer-tracking feed, the creator's own
//! sale calendar). The host registers them here; while one is active, every
//! order of its product placed (by `created_at`) in its active period carries
//! the matching indicator:
//!
//! | signal | active for orders placed | indicator | confidence | impact multiplier |
//! |---|---|---|---|---|
//! | [`trending_hashtag`](Signals::trending_hashtag) | before `until` | `hashtag_trending`, all active tags in `metadata.hashtags` | the highest given | 2.0 (the plan's) |
//! | [`influencer_mention`](Signals::influencer_mention) | in `[at, at + mention_window)` (24 h by default) | `influencer_mention`, the widest reach's handle | `reach / (reach + 100,000)` | `1 + log10(reach / 10,000)`, within 1..=3 |
//! | [`flash_sale`](Signals::flash_sale) | in `[starts, ends)` | `flash_sale`, the deepest discount | 0.9 (scheduled) | `1 + 5 × discount`, at most 3 |
//!
//! The influencer and flash-sale figures are heuristics (a mention by a
//! 100k-follower account half-likely to move sales and doubling demand; a
//! 30 %-off sale multiplying demand by 2.5), documented so that a host can
//! reason about which signals escalate (confidence > 0.7 and impact > 2).
//! Expired signals are dropped by [`prune`](Signals::prune) and lazily when
//! their product's orders are enriched.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use foldhash::fast::RandomState;
use serde_json::{Map, Value};

use crate::model::{ViralIndicator, ViralIndicatorType};

/// The `source` of the indicators set from trending hashtags.
pub(crate) const HASHTAG_SOURCE: &str = "hashtag_monitoring";
/// The `source` of the indicators set from influencer mentions.
pub(crate) const INFLUENCER_SOURCE: &str = "influencer_tracking";
/// The `source` of the indicators set from flash sales.
pub(crate) const FLASH_SALE_SOURCE: &str = "flash_sale_schedule";

/// A signal refused by [`Signals`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SignalError {
    /// A required text (product id, tag, handle) is empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// A confidence outside 0..=1.
    #[error("confidence must be between 0 and 1, got {0}")]
    Confidence(f64),
    /// A discount outside (0, 1).
    #[error("discount must be a fraction between 0 and 1 (0.3 = 30 % off), got {0}")]
    Discount(f64),
    /// A flash sale that ends before it starts.
    #[error("flash sale ends ({ends}) at or before it starts ({starts})")]
    EmptyPeriod {
        /// The start given.
        starts: DateTime<Utc>,
        /// The end given.
        ends: DateTime<Utc>,
    },
    /// An influencer mention with no reach.
    #[error("reach must be > 0")]
    Reach,
}

#[derive(Debug, Clone)]
struct Hashtag {
    tag: Box<str>,
    confidence: f64,
    until: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Mention {
    handle: Box<str>,
    reach: u64,
    at: DateTime<Utc>,
    until: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct FlashSale {
    starts: DateTime<Utc>,
    ends: DateTime<Utc>,
    discount: f64,
}

#[derive(Debug, Clone, Default)]
struct ProductSignals {
    hashtags: Vec<Hashtag>,
    mentions: Vec<Mention>,
    sales: Vec<FlashSale>,
}

impl ProductSignals {
    fn prune(&mut self, now: DateTime<Utc>) -> usize {
        let before = self.len();
        self.hashtags.retain(|h| h.until > now);
        self.mentions.retain(|m| m.until > now);
        self.sales.retain(|s| s.ends > now);
        before - self.len()
    }

    fn len(&self) -> usize {
        self.hashtags.len() + self.mentions.len() + self.sales.len()
    }
}

/// The host's signals per product (see the module docs of `viral/signals.rs`).
///
/// ```
/// use chrono::{DateTime, TimeDelta, Utc};
/// use creatorflow::viral::Signals;
///
/// let now: DateTime<Utc> = "2025-06-12T10:00:00Z".parse().unwrap();
/// let mut s = Signals::new();
/// s.influencer_mention("p1", "@bigcreator", 2_000_000, now).unwrap();
/// let mut out = Vec::new();
/// s.indicators("p1", now + TimeDelta::hours(1), &mut out);
/// assert_eq!(out[0].kind.as_str(), "influencer_mention");
/// assert!(out[0].confidence > 0.9 && out[0].impact_multiplier == 3.0);
/// out.clear();
/// s.indicators("p1", now + TimeDelta::hours(25), &mut out);
/// assert!(out.is_empty(), "expired after the 24 h mention window");
/// ```
#[derive(Debug, Clone)]
pub struct Signals {
    products: HashMap<Box<str>, ProductSignals, RandomState>,
    mention_window: TimeDelta,
}

impl Default for Signals {
    fn default() -> Self {
        Signals::new()
    }
}

fn non_empty(s: &str, what: &'static str) -> Result<(), SignalError> {
    if s.trim().is_empty() {
        Err(SignalError::Empty(what))
    } else {
        Ok(())
    }
}

impl Signals {
    /// How long an influencer mention stays active by default.
    pub const DEFAULT_MENTION_WINDOW: TimeDelta = TimeDelta::hours(24);

    /// No signals; mentions last [`DEFAULT_MENTION_WINDOW`](Self::DEFAULT_MENTION_WINDOW).
    pub fn new() -> Self {
        Signals {
            products: HashMap::default(),
            mention_window: Self::DEFAULT_MENTION_WINDOW,
        }
    }

    /// Sets how long a mention stays active (from its time `at`); applies to
    /// mentions registered afterwards.
    pub fn with_mention_window(mut self, window: TimeDelta) -> Self {
        self.mention_window = window.max(TimeDelta::zero());
        self
    }

    fn product(&mut self, product_id: &str) -> Result<&mut ProductSignals, SignalError> {
        non_empty(product_id, "product_id")?;
        Ok(self.products.entry(product_id.into()).or_default())
    }

    /// A hashtag linked to `product_id` is trending, with `confidence`
    /// (0..=1), until `until`. Registering the same tag again replaces its
    /// confidence and expiry.
    pub fn trending_hashtag(
        &mut self,
        product_id: &str,
        tag: &str,
        confidence: f64,
        until: DateTime<Utc>,
    ) -> Result<(), SignalError> {
        non_empty(tag, "tag")?;
        if !(0.0..=1.0).contains(&confidence) {
            return Err(SignalError::Confidence(confidence));
        }
        let p = self.product(product_id)?;
        p.hashtags.retain(|h| &*h.tag != tag);
        p.hashtags.push(Hashtag {
            tag: tag.into(),
            confidence,
            until,
        });
        Ok(())
    }

    /// The influencer `handle`, followed by `reach` accounts, mentioned
    /// `product_id` at `at`; active for the mention window from `at`. A
    /// second mention by the same handle replaces the first.
    pub fn influencer_mention(
        &mut self,
        product_id: &str,
        handle: &str,
        reach: u64,
        at: DateTime<Utc>,
    ) -> Result<(), SignalError> {
        non_empty(handle, "handle")?;
        if reach == 0 {
            return Err(SignalError::Reach);
        }
        let until = at + self.mention_window;
        let p = self.product(product_id)?;
        p.mentions.retain(|m| &*m.handle != handle);
        p.mentions.push(Mention {
            handle: handle.into(),
            reach,
            at,
            until,
        });
        Ok(())
    }

    /// A flash sale of `product_id` at `discount` off (a fraction: 0.3 = 30 %)
    /// from `starts` to `ends`.
    pub fn flash_sale(
        &mut self,
        product_id: &str,
        starts: DateTime<Utc>,
        ends: DateTime<Utc>,
        discount: f64,
    ) -> Result<(), SignalError> {
        if !(discount > 0.0 && discount < 1.0) {
            return Err(SignalError::Discount(discount));
        }
        if ends <= starts {
            return Err(SignalError::EmptyPeriod { starts, ends });
        }
        self.product(product_id)?.sales.push(FlashSale {
            starts,
            ends,
            discount,
        });
        Ok(())
    }

    /// Drops every signal that has expired by `now`; returns how many.
    pub fn prune(&mut self, now: DateTime<Utc>) -> usize {
        let mut n = 0;
        self.products.retain(|_, p| {
            n += p.prune(now);
            p.len() > 0
        });
        n
    }

    /// Number of signals held (active or not yet pruned).
    pub fn len(&self) -> usize {
        self.products.values().map(ProductSignals::len).sum()
    }

    /// Whether no signal is held.
    pub fn is_empty(&self) -> bool {
        self.products.values().all(|p| p.len() == 0)
    }

    /// Appends to `out` the indicators of the signals of `product_id` active
    /// for an order placed at `at` (one per kind), and drops the product's
    /// signals that expired by then.
    pub fn indicators(
        &mut self,
        product_id: &str,
        at: DateTime<Utc>,
        out: &mut Vec<ViralIndicator>,
    ) {
        if self.products.is_empty() {
            return;
        }
        let Some(p) = self.products.get_mut(product_id) else {
            return;
        };
        p.prune(at);
        let product = Value::from(product_id);
        let mut push =
            |kind, source: &str, confidence, impact_multiplier, mut metadata: Map<_, _>| {
                metadata.insert("product_id".into(), product.clone());
                out.push(ViralIndicator {
                    kind,
                    source: source.into(),
                    confidence,
                    impact_multiplier,
                    detected_at: at,
                    metadata,
                });
            };

        let tags: Vec<&Hashtag> = p.hashtags.iter().filter(|h| at < h.until).collect();
        if !tags.is_empty() {
            let confidence = tags.iter().map(|h| h.confidence).fold(0.0, f64::max);
            let mut metadata = Map::new();
            metadata.insert(
                "hashtags".into(),
                tags.iter().map(|h| Value::from(&*h.tag)).collect(),
            );
            push(
                ViralIndicatorType::HashtagTrending,
                HASHTAG_SOURCE,
                confidence,
                2.0,
                metadata,
            );
        }

        let best = p
            .mentions
            .iter()
            .filter(|m| m.at <= at && at < m.until)
            .max_by_key(|m| m.reach);
        if let Some(m) = best {
            let reach = m.reach as f64;
            let mut metadata = Map::new();
            metadata.insert("handle".into(), Value::from(&*m.handle));
            metadata.insert("reach".into(), Value::from(m.reach));
            metadata.insert("mentioned_at".into(), Value::from(m.at.to_rfc3339()));
            metadata.insert(
                "active_mentions".into(),
                Value::from(
                    p.mentions
                        .iter()
                        .filter(|m| m.at <= at && at < m.until)
                        .count(),
                ),
            );
            push(
                ViralIndicatorType::InfluencerMention,
                INFLUENCER_SOURCE,
                reach / (reach + 100_000.0),
                (1.0 + (reach / 10_000.0).log10()).clamp(1.0, 3.0),
                metadata,
            );
        }

        let sale = p
            .sales
            .iter()
            .filter(|s| s.starts <= at && at < s.ends)
            .max_by(|a, b| a.discount.total_cmp(&b.discount));
        if let Some(s) = sale {
            let mut metadata = Map::new();
            metadata.insert("discount".into(), Value::from(s.discount));
            metadata.insert("starts".into(), Value::from(s.starts.to_rfc3339()));
            metadata.insert("ends".into(), Value::from(s.ends.to_rfc3339()));
            push(
                ViralIndicatorType::FlashSale,
                FLASH_SALE_SOURCE,
                0.9,
                (1.0 + 5.0 * s.discount).min(3.0),
                metadata,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn kinds(s: &mut Signals, product: &str, at: &str) -> Vec<&'static str> {
        let mut out = Vec::new();
        s.indicators(product, t(at), &mut out);
        out.iter().map(|i| i.kind.as_str()).collect()
    }

    /// Checks, in order, the indicator kinds of each `(product, at)`.
    fn assert_kinds(s: &mut Signals, cases: &[(&str, &str, &[&str])]) {
        for (product, at, want) in cases {
            assert_eq!(kinds(s, product, at), *want, "{product} at {at}");
        }
    }

    #[test]
    fn each_signal_has_its_active_period() {
        let mut s = Signals::new();
        s.trending_hashtag("p", "#lamp", 0.8, t("2025-03-01T14:00:00Z"))
            .unwrap();
        s.influencer_mention("p", "@big", 500_000, t("2025-03-01T11:00:00Z"))
            .unwrap();
        s.flash_sale(
            "q",
            t("2025-03-01T12:00:00Z"),
            t("2025-03-01T13:00:00Z"),
            0.5,
        )
        .unwrap();
        assert_kinds(
            &mut s,
            &[
                ("p", "2025-03-01T10:00:00Z", &["hashtag_trending"]),
                (
                    "p",
                    "2025-03-01T11:00:00Z",
                    &["hashtag_trending", "influencer_mention"],
                ),
                ("q", "2025-03-01T11:59:59Z", &[]),
                ("q", "2025-03-01T12:00:00Z", &["flash_sale"]),
                ("q", "2025-03-01T13:00:00Z", &[]),
                ("p", "2025-03-01T14:00:00Z", &["influencer_mention"]),
                ("p", "2025-03-02T11:00:00Z", &[]),
                ("other", "2025-03-01T12:30:00Z", &[]),
            ],
        );
    }

    #[test]
    fn figures_follow_the_inputs() {
        let mut s = Signals::new();
        let at = t("2025-03-01T12:00:00Z");
        let until = at + TimeDelta::hours(1);
        s.trending_hashtag("p", "#a", 0.6, until).unwrap();
        s.trending_hashtag("p", "#b", 0.9, until).unwrap();
        s.trending_hashtag("p", "#a", 0.7, until).unwrap(); // replaces #a
        s.influencer_mention("p", "@small", 10_000, at).unwrap();
        s.influencer_mention("p", "@mid", 100_000, at).unwrap();
        s.flash_sale("p", at, until, 0.1).unwrap();
        s.flash_sale("p", at, until, 0.4).unwrap();
        let mut out = Vec::new();
        s.indicators("p", at, &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].confidence, 0.9);
        assert_eq!(out[0].metadata["hashtags"], serde_json::json!(["#b", "#a"]));
        assert_eq!(out[1].metadata["handle"], "@mid");
        assert_eq!(out[1].metadata["active_mentions"], 2);
        assert!((out[1].confidence - 0.5).abs() < 1e-12);
        assert!((out[1].impact_multiplier - 2.0).abs() < 1e-12);
        assert_eq!(out[2].impact_multiplier, 3.0);
        assert_eq!(out[2].metadata["discount"], 0.4);
        assert!(super::super::should_escalate(&out));
        assert_eq!(s.len(), 6);
        assert_eq!(s.prune(until), 4, "hashtags and sales");
        assert_eq!(s.prune(at + TimeDelta::hours(24)), 2, "mentions");
        assert!(s.is_empty());
    }

    #[test]
    fn bad_inputs_are_refused() {
        let mut s = Signals::new();
        let at = t("2025-03-01T12:00:00Z");
        assert_eq!(
            s.trending_hashtag("", "#a", 0.5, at),
            Err(SignalError::Empty("product_id"))
        );
        assert_eq!(
            s.trending_hashtag("p", " ", 0.5, at),
            Err(SignalError::Empty("tag"))
        );
        assert_eq!(
            s.trending_hashtag("p", "#a", 1.5, at),
            Err(SignalError::Confidence(1.5))
        );
        assert!(s.trending_hashtag("p", "#a", f64::NAN, at).is_err());
        assert_eq!(
            s.influencer_mention("p", "@a", 0, at),
            Err(SignalError::Reach)
        );
        assert_eq!(
            s.flash_sale("p", at, at, 0.2).unwrap_err().to_string(),
            "flash sale ends (2025-03-01 12:00:00 UTC) at or before it starts (2025-03-01 12:00:00 UTC)"
        );
        assert_eq!(
            s.flash_sale("p", at, at + TimeDelta::hours(1), 1.0),
            Err(SignalError::Discount(1.0))
        );
        assert!(s.is_empty());
    }

    #[test]
    fn mention_window_is_configurable() {
        let mut s = Signals::new().with_mention_window(TimeDelta::hours(2));
        let at = t("2025-03-01T12:00:00Z");
        s.influencer_mention("p", "@a", 50_000, at).unwrap();
        assert_kinds(
            &mut s,
            &[
                ("p", "2025-03-01T13:59:00Z", &["influencer_mention"]),
                ("p", "2025-03-01T14:00:00Z", &[]),
            ],
        );
        assert!(s.is_empty());
    }
}
