//! The order's enumerations, spelled as the plan spells them.

/// Declares an enum whose values have a fixed spelling in files and JSON:
/// `ALL`, `as_str`, `parse`, `names`, `Display` and serde by that spelling.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value's spelling in files and JSON.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the spelling used in files and JSON.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

            /// The spellings, for messages and suggestions.
            pub fn names() -> impl Iterator<Item = &'static str> {
                Self::ALL.iter().map(|v| v.as_str())
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

string_enum! {
    /// The processing lane an order goes to. Declared most urgent first:
    /// `high`, `urgent`, `standard`, `automated` (so `Ord` sorts most urgent first).
    #[derive(Default)]
    Priority {
        /// Viral and fast-track orders.
        High = "high",
        /// High value or near deadline.
        Urgent = "urgent",
        /// The default.
        #[default]
        Standard = "standard",
        /// Low-touch orders processed fully automatically.
        Automated = "automated",
    }
}

string_enum! {
    /// Business impact of an order, most significant first (`VIRAL`, `HIGH`, `MED`, `AUTO`).
    #[derive(Default)]
    Impact {
        /// Part of a viral spike.
        Viral = "VIRAL",
        /// High impact.
        High = "HIGH",
        /// The default.
        #[default]
        Med = "MED",
        /// Routine.
        Auto = "AUTO",
    }
}

string_enum! {
    /// The customer's tier.
    #[derive(Default)]
    CustomerTier {
        /// Very important customer.
        Vip = "vip",
        /// The default.
        #[default]
        Regular = "regular",
        /// First-time customer.
        New = "new",
    }
}

string_enum! {
    /// The automation status shown on the dashboard; it follows the state.
    #[derive(Default)]
    AutomationStatus {
        /// Being processed automatically.
        #[default]
        Processing = "Processing",
        /// Handed to the carrier.
        Shipped = "Shipped",
        /// Delivered to the customer.
        Delivered = "Delivered",
        /// Needs a person (the `failed` state).
        ManualReview = "Manual Review",
    }
}

impl AutomationStatus {
    /// Whether an order with this status has left the warehouse: handed to
    /// the carrier (`Shipped`) or already `Delivered`. The first step into
    /// such a status is when the order *shipped*, whatever the machine calls
    /// its states (the dashboard's time to ship, the simulator's report).
    pub const fn is_shipped(self) -> bool {
        matches!(
            self,
            AutomationStatus::Shipped | AutomationStatus::Delivered
        )
    }
}

string_enum! {
    /// The kind of a viral indicator.
    ViralIndicatorType {
        /// A velocity spike on the product.
        ContentSpike = "content_spike",
        /// A hashtag linked to the product is trending.
        HashtagTrending = "hashtag_trending",
        /// An influencer mentioned the product.
        InfluencerMention = "influencer_mention",
        /// A scheduled flash sale.
        FlashSale = "flash_sale",
    }
}
