//! The channel mapping's one owner: the channels in force (the file's `[[channels]]`, or those
//! set through the admin API and persisted in the store), saved and removed here, and resolved
//! against ERPNext's Warehouse tree (a group warehouse stands for its leaves) into the map the
//! processor and reconcile use. The tree is kept in the store, so the relay starts while ERPNext
//! is down.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::availability::Channel;
use crate::erpnext::{ErpClient, ErpError};
use crate::store::{Store, StoreError};

/// Why the channels could not be loaded, saved or resolved.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error("reading the Warehouse tree from ERPNext failed")]
    Erp(#[from] ErpError),
    #[error("the Warehouse tree or the channels could not be encoded or decoded")]
    Codec(#[source] serde_json::Error),
}

/// The channels with group warehouses replaced by their leaf warehouses, and every warehouse
/// that feeds a channel (sorted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelMap {
    pub channels: Vec<Channel>,
    pub warehouses: Vec<String>,
    /// Per channel, the warehouse its shop orders are taken from: the channel's first
    /// configured warehouse, or, when that is a group, the first of its leaves by name.
    #[serde(default)]
    pub order_warehouses: BTreeMap<String, String>,
}

/// One row of ERPNext's Warehouse tree.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub(crate) struct WarehouseRow {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) is_group: i64,
    #[serde(default)]
    pub(crate) parent_warehouse: Option<String>,
}

/// The Warehouse tree last read from ERPNext.
const WAREHOUSE_TREE_META: &str = "warehouse_tree";

/// Channels set through the admin API; they replace the file's `[[channels]]` until removed.
const CHANNELS_OVERRIDE_META: &str = "channels_override";

impl ChannelMap {
    /// Resolves `configured` against ERPNext's Warehouse tree: a group warehouse stands for
    /// every leaf below it; a name ERPNext does not list is kept as it is.
    pub(crate) fn resolve(configured: &[Channel], tree: &[WarehouseRow]) -> Self {
        let mut children: BTreeMap<&str, Vec<&WarehouseRow>> = BTreeMap::new();
        for w in tree {
            if let Some(p) = w.parent_warehouse.as_deref() {
                children.entry(p).or_default().push(w);
            }
        }
        let is_group: BTreeMap<&str, bool> = tree
            .iter()
            .map(|w| (w.name.as_str(), w.is_group == 1))
            .collect();
        let leaves = |root: &str| -> Vec<String> {
            if is_group.get(root) != Some(&true) {
                return vec![root.to_owned()];
            }
            let mut out = Vec::new();
            let mut stack = vec![root];
            while let Some(w) = stack.pop() {
                for c in children.get(w).map(Vec::as_slice).unwrap_or_default() {
                    if c.is_group == 1 {
                        stack.push(&c.name);
                    } else {
                        out.push(c.name.clone());
                    }
                }
            }
            out.sort();
            out
        };
        let channels: Vec<Channel> = configured
            .iter()
            .map(|c| {
                let mut whs: Vec<String> = c.warehouses.iter().flat_map(|w| leaves(w)).collect();
                whs.sort();
                whs.dedup();
                Channel {
                    warehouses: whs,
                    ..c.clone()
                }
            })
            .collect();
        let warehouses: BTreeSet<String> = channels
            .iter()
            .flat_map(|c| c.warehouses.iter().cloned())
            .collect();
        let order_warehouses = configured
            .iter()
            .filter_map(|c| {
                let first = c.warehouses.first()?;
                Some((c.name.clone(), leaves(first).into_iter().next()?))
            })
            .collect();
        Self {
            channels,
            warehouses: warehouses.into_iter().collect(),
            order_warehouses,
        }
    }
}

/// Owns the channels in force and their resolved map. Shared by the processor, reconcile and
/// the admin API.
pub struct Channels {
    store: Store,
    erp: ErpClient,
    file: Vec<Channel>,
    configured: RwLock<Vec<Channel>>,
    map: RwLock<Option<Arc<ChannelMap>>>,
}

impl Channels {
    /// The channels set through the admin API if any were (persisted in the store), else
    /// `file` (the configuration file's). Nothing is resolved yet.
    pub async fn load(
        store: Store,
        erp: ErpClient,
        file: Vec<Channel>,
    ) -> Result<Self, StoreError> {
        let stored = match store.meta(CHANNELS_OVERRIDE_META).await? {
            Some(bytes) => match serde_json::from_slice::<Vec<Channel>>(&bytes) {
                Ok(channels) => {
                    tracing::info!("using the channels set through the admin API (DELETE /admin/channels returns to the file's)");
                    Some(channels)
                }
                Err(e) => {
                    tracing::error!(error = %e, "the stored channel override is unreadable; using the file's channels");
                    None
                }
            },
            None => None,
        };
        Ok(Self {
            configured: RwLock::new(stored.unwrap_or_else(|| file.clone())),
            store,
            erp,
            file,
            map: RwLock::new(None),
        })
    }

    /// The channels as configured (the file's, or those set through the admin API).
    pub fn configured(&self) -> Vec<Channel> {
        self.configured
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// True when channels set through the admin API are in force.
    pub async fn overridden(&self) -> Result<bool, StoreError> {
        Ok(self.store.meta(CHANNELS_OVERRIDE_META).await?.is_some())
    }

    /// The channel map in use, if resolved.
    pub fn current_map(&self) -> Option<Arc<ChannelMap>> {
        self.map.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The resolved channel map, resolving it on first use.
    pub async fn map(&self) -> Result<Arc<ChannelMap>, ChannelError> {
        match self.current_map() {
            Some(m) => Ok(m),
            None => self.refresh().await,
        }
    }

    /// Persists `channels` as the override (None: removes it, the file's channels again),
    /// durably, and puts them in force; they are resolved by [`Channels::refresh`].
    pub async fn save_override(&self, channels: Option<Vec<Channel>>) -> Result<(), ChannelError> {
        let in_force = match channels {
            Some(list) => {
                let bytes = serde_json::to_vec(&list).map_err(ChannelError::Codec)?;
                self.store.set_meta(CHANNELS_OVERRIDE_META, &bytes).await?;
                list
            }
            None => {
                self.store.remove_meta(CHANNELS_OVERRIDE_META).await?;
                self.file.clone()
            }
        };
        self.store.durable().await?;
        *self.configured.write().unwrap_or_else(|p| p.into_inner()) = in_force;
        Ok(())
    }

    /// The Warehouse tree last read from ERPNext (empty when none was read yet).
    pub(crate) async fn warehouse_tree(&self) -> Result<Vec<WarehouseRow>, ChannelError> {
        match self.store.meta(WAREHOUSE_TREE_META).await? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(ChannelError::Codec),
            None => Ok(Vec::new()),
        }
    }

    /// What `proposed` would resolve to against the Warehouse tree last read (nothing is put
    /// in force).
    pub(crate) async fn resolve_proposed(
        &self,
        proposed: &[Channel],
    ) -> Result<ChannelMap, ChannelError> {
        Ok(ChannelMap::resolve(proposed, &self.warehouse_tree().await?))
    }

    /// Reads the Warehouse tree and resolves the channels against it (at start, on each
    /// reconcile pass, when the mapping changes). The tree is kept in the store: when ERPNext
    /// cannot be read, the last tree read is used; with none stored, the error is returned and
    /// nothing is computed. A 403 (the API user may not read Warehouse) resolves against an
    /// empty tree: the names are used as configured.
    pub async fn refresh(&self) -> Result<Arc<ChannelMap>, ChannelError> {
        let fields = ["name", "is_group", "parent_warehouse"];
        let tree = match self
            .erp
            .list_all::<WarehouseRow>("Warehouse", &fields, &serde_json::json!([]))
            .await
        {
            Ok(tree) => {
                self.store
                    .set_meta(
                        WAREHOUSE_TREE_META,
                        &serde_json::to_vec(&tree).map_err(ChannelError::Codec)?,
                    )
                    .await?;
                tree
            }
            // Waiting will not change a refusal: use the names as configured, and say so.
            Err(ErpError::Status { status: 403, .. }) => {
                tracing::warn!("the API user may not read Warehouse: group warehouses in channels are not expanded");
                Vec::new()
            }
            Err(e) => match self.store.meta(WAREHOUSE_TREE_META).await? {
                Some(bytes) => {
                    tracing::warn!(error = %crate::telemetry::error_chain(&e), "cannot read the Warehouse tree; using the last one read");
                    serde_json::from_slice(&bytes).map_err(ChannelError::Codec)?
                }
                None => {
                    *self.map.write().unwrap_or_else(|p| p.into_inner()) = None;
                    return Err(e.into());
                }
            },
        };
        let resolved = Arc::new(ChannelMap::resolve(&self.configured(), &tree));
        *self.map.write().unwrap_or_else(|p| p.into_inner()) = Some(resolved.clone());
        Ok(resolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::availability::Policy;

    #[test]
    fn group_warehouses_stand_for_their_leaves() {
        let row = |name: &str, parent: Option<&str>, group: bool| WarehouseRow {
            name: name.into(),
            is_group: i64::from(group),
            parent_warehouse: parent.map(str::to_owned),
        };
        let tree = [
            row("All - ACME", None, true),
            row("Berlin - ACME", Some("All - ACME"), true),
            row("Berlin A - ACME", Some("Berlin - ACME"), false),
            row("Berlin B - ACME", Some("Berlin - ACME"), false),
            row("Munich - ACME", Some("All - ACME"), false),
            row("Empty - ACME", Some("All - ACME"), true),
        ];
        let ch = |name: &str, whs: &[&str]| Channel {
            name: name.into(),
            warehouses: whs.iter().map(|s| s.to_string()).collect(),
            policy: Policy::Actual,
            buffer: 0.0,
        };
        let map = ChannelMap::resolve(
            &[
                ch("web", &["Berlin - ACME", "Munich - ACME"]),
                ch("all", &["All - ACME", "Unknown"]),
            ],
            &tree,
        );
        assert_eq!(
            map.channels[0].warehouses,
            ["Berlin A - ACME", "Berlin B - ACME", "Munich - ACME"]
        );
        assert_eq!(
            map.channels[1].warehouses,
            [
                "Berlin A - ACME",
                "Berlin B - ACME",
                "Munich - ACME",
                "Unknown"
            ]
        );
        assert_eq!(map.warehouses.len(), 4);
        // Orders take from the first configured warehouse, or the first leaf of a group.
        let web = ch("web", &["Munich - ACME", "Berlin - ACME"]);
        let map = ChannelMap::resolve(&[web, ch("all", &["All - ACME"])], &tree);
        assert_eq!(map.order_warehouses["web"], "Munich - ACME");
        assert_eq!(map.order_warehouses["all"], "Berlin A - ACME");
    }
}
