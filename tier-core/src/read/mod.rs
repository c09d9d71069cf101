//! Bytes to raw records: inputs (files, gzip, standard input), the syntax scanner that cuts them
//! into top-level values, and the reading of one object's members. Nothing here knows of
//! datasets or sinks.

mod input;
pub mod json;
pub mod object;
pub(crate) mod scan;

pub use input::*;
