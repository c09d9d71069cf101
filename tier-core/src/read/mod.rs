//! Bytes to raw records: inputs (files, gzip, standard input), the syntax scanner that cuts them
//! into top-level values, and the reading of one object's members. Nothing here knows of
//! datasets or sinks.

pub mod json;
mod jsonb;
mod list;
mod location;
pub mod object;
mod open;
mod records;
pub(crate) mod scan;
mod url;

pub use list::*;
pub use location::Location;
pub use open::*;
pub use records::*;
