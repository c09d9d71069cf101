//! The command line's tests against real servers, one binary (one link), grouped by topic. The
//! object-storage test is a binary of its own: it sets the process's AWS variables, which tests
//! running beside it in one process must not see change.

mod common;

mod cli;
mod concurrency;
mod datasets;
mod embedded;
mod faults;
mod iceberg;
mod lake;
mod load;
mod tls;
mod watch;
