//! Citus-ready: the statements that distribute the warehouse by target.
//!
//! Every warehouse table's key starts with `target`, the distribution column, so the
//! same schema spreads over Citus (distributed PostgreSQL) workers by target, all
//! warehouse tables colocated: the rows of one target, whatever the table, live on one
//! shard. The ledger, the queue and the shared limits stay on the coordinator, where
//! the workers' claims, reservations and slot leases are single-node transactions.
//! `linkledger citus-ddl` prints [`ddl`]; `docs/scaling.md` says when and how to use it.

use crate::warehouse::normalize::TABLES;

/// The distribution column of every warehouse table.
pub const DISTRIBUTION_COLUMN: &str = "target";

/// Warehouse tables that are not an endpoint's own: the breakdown maps and the record
/// of which periods are stored or pending (written in the same transaction as the rows).
const DERIVED: &[&str] = &["link_breakdowns", "coverage", "pending_periods"];

/// The coordinator's tables: the ledger, raw answers (and the items of them set
/// aside), the queue, shared limits and budgets, the account's own books and their
/// reconciliation with the ledger. Small or hot, written by every worker
/// of every daemon: they stay local.
pub const COORDINATOR: &[&str] = &[
    "runs",
    "api_calls",
    "raw_responses",
    "fires",
    "work",
    "collections",
    "loaded_targets",
    "api_slots",
    "api_starts",
    "budgets",
    "spend_totals",
    "account_snapshots",
    "purchases",
    "rejected_items",
    "account_samples",
    "reconciliations",
    "settlements",
    "account_others",
    "spend_minutes",
    "request_days",
];

/// The warehouse tables, distributed by target; the first is the colocation anchor.
pub fn distributed() -> Vec<&'static str> {
    TABLES
        .iter()
        .map(|t| t.name)
        .chain(DERIVED.iter().copied())
        .collect()
}

/// The statements that turn a migrated linkledger database into a distributed one.
pub fn ddl() -> String {
    let tables = distributed();
    let anchor = tables[0];
    let mut out = String::from(
        "-- linkledger citus-ddl: distribute the warehouse over Citus workers by target.\n\
         -- Run on the coordinator as a superuser, once, after `linkledger migrate`,\n\
         -- with every daemon stopped (see docs/scaling.md).\n\
         CREATE EXTENSION IF NOT EXISTS citus;\n\n\
         -- The warehouse: distributed by target, every table colocated with the first,\n\
         -- so that one target's rows of every table are on one shard.\n",
    );
    for t in &tables {
        if *t == anchor {
            out.push_str(&format!(
                "SELECT create_distributed_table('linkledger.{t}', '{DISTRIBUTION_COLUMN}');\n"
            ));
        } else {
            out.push_str(&format!(
                "SELECT create_distributed_table('linkledger.{t}', '{DISTRIBUTION_COLUMN}', \
                 colocate_with => 'linkledger.{anchor}');\n"
            ));
        }
    }
    out.push_str(&format!(
        "\n-- Reference tables (copied to every worker): none. No warehouse table points to a\n\
         -- small table, and the small tables are the ledger's, written by every call.\n\
         -- On the coordinator, as local tables: {}.\n",
        COORDINATOR.join(", ")
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_warehouse_table_is_distributed_colocated_with_the_first() {
        let ddl = ddl();
        let tables = distributed();
        assert!(tables.contains(&"summary") && tables.contains(&"link_breakdowns"));
        for t in &tables[1..] {
            assert!(
                ddl.contains(&format!(
                    "create_distributed_table('linkledger.{t}', 'target', colocate_with => 'linkledger.{}')",
                    tables[0]
                )),
                "{t}: {ddl}"
            );
        }
        assert!(
            tables.iter().all(|t| !COORDINATOR.contains(t)),
            "a table is both distributed and the coordinator's"
        );
    }
}
