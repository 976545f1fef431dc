//! The dashboard of the `memory:` store: the aggregates in one pass.

use crate::store::Result;
use std::collections::HashSet;

use super::{MemoryStore, sort_urgent};
use crate::model::Impact;
use crate::store::logic::{self, Aggregates, Figures, Window};
use crate::store::{MOST_URGENT_LIMIT, StoredOrder};

impl Aggregates for MemoryStore {
    async fn aggregates(&self, tenant: &str, w: &Window) -> Result<(Figures, Vec<StoredOrder>)> {
        let inner = self.lock();
        let mut f = Figures::default();
        let mut active = Vec::new();
        let mut processed = HashSet::new();
        let (mut dur_sum, mut prev_n, mut prev_sum) = (0f64, 0u64, 0f64);
        // Time to ship (ms), summed as integers as the SQL backends do.
        let (mut ship_sum, mut prev_shipped, mut prev_ship_sum) = (0i128, 0u64, 0i128);
        for o in inner
            .orders
            .values()
            .map(|o| &**o)
            .filter(|o| o.order.user_id.as_deref() == Some(tenant))
        {
            *f.by_state
                .entry(o.order.current_state.to_string())
                .or_default() += 1;
            if !o.terminal {
                *f.by_priority.entry(o.order.priority).or_default() += 1;
                if o.order.impact == Impact::Viral {
                    f.viral += 1;
                }
                active.push(o);
            }
            if let Some(shipped) = inner.shipped.get(&o.id) {
                let t = logic::ms(*shipped);
                let took = i128::from((t - logic::ms(o.order.created_at)).max(0));
                if t > w.start && t <= w.end {
                    f.shipped += 1;
                    ship_sum += took;
                } else if t > w.prev_start && t <= w.start {
                    prev_shipped += 1;
                    prev_ship_sum += took;
                }
            }
            for h in inner.history.get(&o.id).into_iter().flatten() {
                let t = logic::ms(h.at);
                if t > w.start && t <= w.end {
                    f.transitions += 1;
                    dur_sum += h.duration_ms as f64;
                    if h.error_message.is_none() {
                        processed.insert(o.id);
                        if h.automated {
                            f.healthy += 1;
                        }
                    }
                } else if t > w.prev_start && t <= w.start {
                    prev_n += 1;
                    prev_sum += h.duration_ms as f64;
                }
            }
        }
        sort_urgent(&mut active);
        f.processed = processed.len() as u64;
        f.avg_ms = (f.transitions > 0).then(|| dur_sum / f.transitions as f64);
        f.prev_avg_ms = (prev_n > 0).then(|| prev_sum / prev_n as f64);
        f.ship_ms = (f.shipped > 0).then(|| ship_sum as f64 / f.shipped as f64);
        f.prev_ship_ms = (prev_shipped > 0).then(|| prev_ship_sum as f64 / prev_shipped as f64);
        let most_urgent = active
            .into_iter()
            .take(MOST_URGENT_LIMIT)
            .cloned()
            .collect();
        Ok((f, most_urgent))
    }
}
