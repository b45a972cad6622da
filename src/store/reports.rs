//! Reports over the ledger and the warehouse.
