//! The DataForSEO client and its response types.

pub mod account;
pub mod client;
pub mod endpoint;
pub mod filters;
pub mod limits;
pub mod prices;
pub mod status;
pub mod target;
pub mod types;

pub use client::{Attempt, Client};
pub use endpoint::{Endpoint, ParamDefault, ParamKind, ParamSpec};
pub use prices::{Prices, Rate};
pub use status::Outcome;
pub use target::Target;
pub use types::{Envelope, Status};
