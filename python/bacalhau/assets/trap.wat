;; trap: a WASI command that hits `unreachable` (used by tests of trap reporting).
(module $trap
  (func $crash unreachable)
  (func (export "_start") (call $crash)))
