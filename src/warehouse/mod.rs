//! The warehouse's rules, without I/O: how an answer becomes rows (`normalize`), which
//! periods an answer covers (`coverage`), and how the tables distribute over Citus.

pub mod citus;
pub mod coverage;
pub mod normalize;
