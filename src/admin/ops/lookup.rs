//! Read-only views the admin asks for: one SKU across warehouses, channels and the shop, and
//! the levels a proposed channel mapping would produce, before it is saved.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::json;

use crate::availability::channel_level;
use crate::availability::Channel;
use crate::channels::{ChannelError, WarehouseRow};
use crate::erpnext::ErpError;
use crate::model::BinRow;
use crate::state::AppState;
use crate::store::{DeadTarget, StoreError};
use crate::telemetry::error_chain;

/// What the shop was last sent for one SKU on one channel.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "state")]
pub(crate) enum ShopSide {
    /// Nothing was ever queued for this SKU on this channel.
    NeverSent,
    /// The shop accepted `value`.
    Sent { value: u64 },
    /// `value` waits in the outbox (the shop has an older value or none).
    Waiting { value: u64 },
    /// The shop refused the push; see the dead letter.
    DeadLetter { value: u64, dead_letter: u64 },
}

/// One channel's view of a SKU.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ChannelLevel {
    pub channel: String,
    /// The level the current Bins give (None when the Bins could not be read).
    pub level: Option<u64>,
    pub shop: ShopSide,
}

/// A SKU across ERPNext, the channels and the shop.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SkuReport {
    pub sku: String,
    /// The item the SKU belongs to.
    pub item_code: String,
    /// Every Bin of the item; `feeds` names the channels each warehouse counts for.
    pub bins: Vec<BinView>,
    /// "erpnext" (read now) or "stored" (ERPNext did not answer: the rows last read back).
    pub bins_source: &'static str,
    pub erpnext_error: Option<String>,
    pub channels: Vec<ChannelLevel>,
}

/// One Bin and the channels its warehouse feeds.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BinView {
    #[serde(flatten)]
    pub bin: BinRow,
    pub feeds: Vec<String>,
}

/// Why a lookup could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LookupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Channels(#[from] ChannelError),
    #[error("reading from ERPNext failed")]
    Erp(#[from] ErpError),
}

/// The item a SKU belongs to: the SKU itself, or (with `erpnext.sku_field`) the Item whose
/// field holds it.
async fn item_of(state: &AppState, sku: &str) -> Result<String, ErpError> {
    let Some(field) = state.settings.erpnext.sku_field.as_deref() else {
        return Ok(sku.to_owned());
    };
    #[derive(serde::Deserialize)]
    struct Name {
        name: String,
    }
    let rows: Vec<Name> = state
        .erp
        .list_all("Item", &["name"], &json!([[field, "=", sku]]))
        .await?;
    Ok(rows
        .into_iter()
        .next()
        .map_or_else(|| sku.to_owned(), |r| r.name))
}

async fn shop_side(state: &AppState, channel: &str, sku: &str) -> Result<ShopSide, StoreError> {
    let (queued, waiting) = state.store.level(channel, sku).await?;
    let Some(value) = queued else {
        return Ok(ShopSide::NeverSent);
    };
    if let Some(waiting) = waiting {
        return Ok(ShopSide::Waiting { value: waiting });
    }
    let dead = state.store.dead_letters().await?.into_iter().find(|d| {
        matches!(&d.target, DeadTarget::Levels { channel: c, levels }
            if c == channel && levels.iter().any(|(s, v)| s == sku && *v == value))
    });
    Ok(match dead {
        Some(d) => ShopSide::DeadLetter {
            value,
            dead_letter: d.id,
        },
        None => ShopSide::Sent { value },
    })
}

/// Looks a SKU up: its Bins (read from ERPNext now, or the stored rows when ERPNext does not
/// answer), its level per channel, and what the shop was last sent.
pub(crate) async fn sku_report(state: &AppState, sku: &str) -> Result<SkuReport, LookupError> {
    let map = state.channels.current_map();
    let channels: Vec<Channel> = match &map {
        Some(m) => m.channels.clone(),
        None => state.channels.configured(),
    };
    let mapped: BTreeSet<String> = channels
        .iter()
        .flat_map(|c| c.warehouses.iter().cloned())
        .collect();
    let (item_code, read) = match item_of(state, sku).await {
        Ok(item) => {
            let rows = state
                .erp
                .list_all::<BinRow>("Bin", &BinRow::FIELDS, &json!([["item_code", "=", item]]))
                .await;
            (item, rows.map_err(|e| error_chain(&e)))
        }
        Err(e) => (sku.to_owned(), Err(error_chain(&e))),
    };
    let (mut rows, source, erpnext_error) = match read {
        Ok(rows) => (rows, "erpnext", None),
        Err(e) => {
            let mut stored = Vec::new();
            for wh in &mapped {
                stored.extend(state.store.bin(&item_code, wh).await?);
            }
            (stored, "stored", Some(e))
        }
    };
    rows.sort_by(|a, b| a.warehouse.cmp(&b.warehouse));
    let by_wh: BTreeMap<&str, &BinRow> = rows.iter().map(|r| (r.warehouse.as_str(), r)).collect();
    let mut levels = Vec::new();
    for ch in &channels {
        levels.push(ChannelLevel {
            channel: ch.name.clone(),
            level: Some(channel_level(ch, |w| by_wh.get(w).copied())),
            shop: shop_side(state, &ch.name, sku).await?,
        });
    }
    let bins = rows
        .iter()
        .map(|r| BinView {
            bin: r.clone(),
            feeds: channels
                .iter()
                .filter(|c| c.warehouses.contains(&r.warehouse))
                .map(|c| c.name.clone())
                .collect(),
        })
        .collect();
    Ok(SkuReport {
        sku: sku.to_owned(),
        item_code,
        bins,
        bins_source: source,
        erpnext_error,
        channels: levels,
    })
}

/// The Warehouse tree last read from ERPNext (empty when none was read yet).
pub(crate) async fn warehouse_tree(state: &AppState) -> Result<Vec<WarehouseRow>, ChannelError> {
    state.channels.warehouse_tree().await
}

/// One line of a preview: an item on a channel, now and under the proposed mapping.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct PreviewRow {
    pub item: String,
    pub channel: String,
    /// Under the mapping in force (None: the channel is new).
    pub now: Option<u64>,
    pub after: u64,
}

/// The levels `proposed` would give `items`, beside those of the mapping in force, from the
/// Bins as ERPNext has them now.
pub(crate) async fn preview(
    state: &AppState,
    proposed: &[Channel],
    items: &[String],
) -> Result<Vec<PreviewRow>, LookupError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let after = state.channels.resolve_proposed(proposed).await?;
    let now = state
        .channels
        .resolve_proposed(&state.channels.configured())
        .await?;
    let warehouses: Vec<String> = after
        .warehouses
        .iter()
        .chain(now.warehouses.iter())
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (rows, _) = state.erp.bins(items, &warehouses).await?;
    let mut out = Vec::new();
    for item in items {
        let by_wh: BTreeMap<&str, &BinRow> = rows
            .iter()
            .filter(|r| &r.item_code == item)
            .map(|r| (r.warehouse.as_str(), r))
            .collect();
        for ch in &after.channels {
            out.push(PreviewRow {
                item: item.clone(),
                channel: ch.name.clone(),
                now: now
                    .channels
                    .iter()
                    .find(|c| c.name == ch.name)
                    .map(|c| channel_level(c, |w| by_wh.get(w).copied())),
                after: channel_level(ch, |w| by_wh.get(w).copied()),
            });
        }
    }
    Ok(out)
}
