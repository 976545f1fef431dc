//! Who is packed first when packing capacity is short.

use creatorflow::model::{Impact, Priority};
use creatorflow::store::OrderId;

use super::floor::Parcel;

/// The order in which waiting parcels are packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// The engine's lanes: the lane the rule pack gave the order, `urgent`
    /// (a deadline within hours, a high value) first, then `high` (viral,
    /// VIP), `standard`, `automated`, each lane emptied before the next is
    /// served; within a lane `VIRAL` impact first (as `model.md` orders a
    /// lane), then the earliest ship-by deadline. (`urgent` leads at the
    /// packing bench because this is where a deadline is won or lost: with
    /// `high` first, urgent orders waited behind a whole viral backlog and
    /// shipped late more often than without lanes.)
    #[default]
    Lanes,
    /// One lane, arrival order: what a shop does without this engine. The
    /// rule pack still runs (the same lanes and impacts are recorded, so
    /// the reports compare like with like), but packing ignores them.
    Fifo,
}

impl Policy {
    /// The policy's name in reports (`lanes`, `fifo`).
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Lanes => "lanes",
            Policy::Fifo => "fifo",
        }
    }

    /// The sort key of `p` in the packing queue (smallest first).
    pub fn key(self, p: &Parcel) -> Key {
        match self {
            Policy::Lanes => (
                lane_rank(p.lane),
                u8::from(p.impact != Impact::Viral),
                p.deadline.timestamp_millis(),
                p.created.timestamp_millis(),
                p.id,
            ),
            Policy::Fifo => (0, 0, p.queued.timestamp_millis(), 0, p.id),
        }
    }
}

/// A packing-queue key: (lane rank, not VIRAL, two times in ms, the order).
pub type Key = (u8, u8, i64, i64, OrderId);

/// The lanes in packing order.
pub const PACKING_ORDER: [Priority; 4] = [
    Priority::Urgent,
    Priority::High,
    Priority::Standard,
    Priority::Automated,
];

/// The lane's rank at the packing bench (0 first).
pub fn lane_rank(lane: Priority) -> u8 {
    PACKING_ORDER
        .iter()
        .position(|p| *p == lane)
        .map_or(u8::MAX, |i| i as u8)
}
