//! Collection: turning planned calls into paid answers in the warehouse. The
//! scheduler and the one-shot commands enqueue work; workers claim it; the executor
//! makes one attempt of a call (shared slots, the booking, the request, the answer).

pub mod backfill;
pub mod executor;
pub mod group;
pub mod narrow;
pub mod once;
pub mod replay;
pub mod scheduler;
pub mod slots;
pub mod workers;
