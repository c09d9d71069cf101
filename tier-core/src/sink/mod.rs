//! Where validated rows and rejects go: PostgreSQL through binary COPY, with the ledger.

pub mod copy;
pub mod ledger;
pub mod postgres;
