;; loop: a WASI command that never returns (used by tests of timeouts and cancellation).
(module $loop
  (func (export "_start")
    (loop $forever (br $forever))))
