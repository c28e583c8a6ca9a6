//! Result merging (stub).
