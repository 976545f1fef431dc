//! [`TikTokOp`]: the names a `tiktok:` action binding may use (built with
//! or without the HTTP client, so a configuration can be checked anywhere;
//! the effects themselves are `TikTokEffect`, feature `tiktok-api`).

/// The effects a `tiktok:` binding may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TikTokOp {
    /// Create a package and get its shipping label.
    ShipPackage,
    /// Set a SKU's stock in a warehouse.
    UpdateInventory,
    /// Read and record the order's status.
    OrderStatus,
}

impl TikTokOp {
    /// Every operation, in the order the configuration lists them.
    pub const ALL: [TikTokOp; 3] = [
        TikTokOp::ShipPackage,
        TikTokOp::UpdateInventory,
        TikTokOp::OrderStatus,
    ];

    /// The operation named `s` (`ship_package`, …).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == s)
    }

    /// Its name in the configuration.
    pub const fn as_str(&self) -> &'static str {
        match self {
            TikTokOp::ShipPackage => "ship_package",
            TikTokOp::UpdateInventory => "update_inventory",
            TikTokOp::OrderStatus => "order_status",
        }
    }
}
