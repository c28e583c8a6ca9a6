//! Result archives: deterministic, safe `.tar.gz` packing and unpacking, and merging the
//! results of several executions into one directory (reference §4.4). Pure file-system work,
//! no network. See README.md for the flow and vocabulary.

mod error;
mod gzip;
mod merge;
mod pack;
mod paths;
mod unpack;

pub use error::MergeError;
pub use merge::{merge_results, APPENDED_FILES, RAW_DIR};
pub use pack::{pack_dir, DETERMINISTIC_MTIME};
pub use unpack::unpack;
