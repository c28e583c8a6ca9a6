//! Node ranking (stub, see README).
