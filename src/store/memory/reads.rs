//! Bounded reads on the memory store: the reference scans (the memory store
//! holds every order in a map; a scan is what it would do anyway).

use super::MemoryStore;
use crate::store::OrderReads;

impl OrderReads for MemoryStore {}
