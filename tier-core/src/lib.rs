//! # tier-core
//!
//! Loads JSON exports of event streams (app tracking events, weather observations) into typed
//! PostgreSQL tables, accounting for every record: each is loaded, counted as a duplicate, or
//! stored with its reason in a rejects table.
//!
//! Data flows one way: bytes ([`reader`]) → records ([`scan`](reader::Records)) → validated rows
//! or rejects ([`validate`]) → binary COPY ([`copy`], [`loader`]).
//!
//! ```
//! use tier_core::{Dataset, Timestamp};
//! assert_eq!("weather".parse::<Dataset>().unwrap(), Dataset::Weather);
//! assert!(Timestamp::parse("2019-05-13 14:23:41").is_some());
//! ```
#![warn(missing_docs)]

pub mod check;
pub mod copy;
pub mod db;
pub mod ddl;
pub mod embedded;
pub mod error;
pub mod generate;
pub mod json;
pub mod ledger;
pub mod loader;
pub mod pipeline;
pub mod reader;
pub mod report;
pub mod row;
mod scan;
pub mod schema;
pub mod timestamp;
pub mod validate;

pub use error::{Error, Result};
pub use loader::{LoadOptions, Loader};
pub use postgres;
pub use report::{FileReport, Report, Status, Totals};
pub use row::{Row, TrackEvent, TypedRow, Value, Weather};
pub use schema::Dataset;
pub use timestamp::Timestamp;

/// The README's Rust examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
