//! Connected shops and pending authorizations of the `memory:` store.

use std::collections::{BTreeMap, HashMap};
use std::sync::{MutexGuard, PoisonError};

use chrono::{DateTime, Utc};

use super::MemoryStore;
use crate::store::Result;
use crate::store::logic::trunc;
use crate::store::shops::{
    check_state, check_tenant, prepare_shops, prepare_tokens, state_taken, state_valid,
};
use crate::store::{ShopAuth, ShopStore, TokenSet};

/// The two tables. `Debug` shows sizes only: states and tokens are secrets.
#[derive(Default)]
pub(super) struct Tables {
    /// By (tenant, shop_id): a tenant's shops are one ordered range.
    shops: BTreeMap<(String, String), ShopAuth>,
    /// Pending authorizations: state → (tenant, expires_at).
    states: HashMap<String, (String, DateTime<Utc>)>,
}

impl std::fmt::Debug for Tables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tables")
            .field("shops", &self.shops.len())
            .field("states", &self.states.len())
            .finish()
    }
}

impl Tables {
    /// The tenant's shops, by `shop_id`.
    fn of<'a>(&'a mut self, tenant: &str) -> impl Iterator<Item = &'a mut ShopAuth> {
        self.shops
            .range_mut((tenant.to_owned(), String::new())..)
            .take_while(move |((t, _), _)| t == tenant)
            .map(|(_, shop)| shop)
    }
}

impl MemoryStore {
    fn shop_tables(&self) -> MutexGuard<'_, Tables> {
        // The guarded code never panics; a poisoned lock still holds consistent data.
        self.shops.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ShopStore for MemoryStore {
    async fn put_shops(&self, tenant: &str, shops: &[ShopAuth]) -> Result<()> {
        let shops = prepare_shops(tenant, shops)?;
        let mut t = self.shop_tables();
        for shop in shops {
            t.shops
                .insert((tenant.to_owned(), shop.shop_id.clone()), shop);
        }
        Ok(())
    }

    async fn shop(&self, tenant: &str, shop_id: &str) -> Result<Option<ShopAuth>> {
        Ok(self
            .shop_tables()
            .shops
            .get(&(tenant.to_owned(), shop_id.to_owned()))
            .cloned())
    }

    async fn shops(&self, tenant: &str) -> Result<Vec<ShopAuth>> {
        Ok(self.shop_tables().of(tenant).map(|s| s.clone()).collect())
    }

    async fn rotate_tokens(
        &self,
        tenant: &str,
        previous_refresh_token: &str,
        tokens: &TokenSet,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        check_tenant(tenant)?;
        let tokens = prepare_tokens(tokens)?;
        let mut t = self.shop_tables();
        let mut changed = 0;
        for shop in t
            .of(tenant)
            .filter(|s| s.tokens.refresh_token == previous_refresh_token)
        {
            shop.tokens = tokens.clone();
            shop.updated_at = trunc(now);
            changed += 1;
        }
        Ok(changed)
    }

    async fn put_auth_state(
        &self,
        tenant: &str,
        state: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        check_state(tenant, state)?;
        let mut t = self.shop_tables();
        if t.states.contains_key(state) {
            return Err(state_taken());
        }
        t.states
            .insert(state.to_owned(), (tenant.to_owned(), trunc(expires_at)));
        Ok(())
    }

    async fn take_auth_state(&self, state: &str, now: DateTime<Utc>) -> Result<Option<String>> {
        let taken = self.shop_tables().states.remove(state);
        Ok(taken
            .filter(|(_, expires_at)| state_valid(*expires_at, now))
            .map(|(tenant, _)| tenant))
    }
}
