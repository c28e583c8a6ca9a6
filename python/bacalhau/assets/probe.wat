;; probe: prints its arguments, one per line, then "--", then its environment, one
;; "NAME=value" per line, to stdout. The extra export `hello` prints "hello" (a
;; non-default entrypoint). Used by tests of argv/env plumbing.
;;
;; Memory map: 0 iovec, 8 nwritten, 16 counts, 64 constant strings, 65536.. argv/env data.
(module $probe
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))

  (memory (export "memory") 1)
  (data (i32.const 64) "--\n")      ;; 3 bytes
  (data (i32.const 68) "hello\n")   ;; 6 bytes
  (data (i32.const 76) "\n")        ;; 1 byte

  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))

  (func $strlen (param $ptr i32) (result i32)
    (local $n i32)
    (block $end
      (loop $scan
        (br_if $end (i32.eqz (i32.load8_u (i32.add (local.get $ptr) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $scan)))
    (local.get $n))

  ;; Print each NUL-terminated string of the pointer array at $ptrs ($count entries).
  (func $print_lines (param $ptrs i32) (param $count i32)
    (local $s i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $count)))
        (local.set $s (i32.load (local.get $ptrs)))
        (call $write (local.get $s) (call $strlen (local.get $s)))
        (call $write (i32.const 76) (i32.const 1))
        (local.set $ptrs (i32.add (local.get $ptrs) (i32.const 4)))
        (local.set $count (i32.sub (local.get $count) (i32.const 1)))
        (br $next))))

  ;; Make sure [65536, 65536 + $bytes) is addressable.
  (func $reserve (param $bytes i32)
    (local $pages i32)
    (local.set $pages (i32.add (i32.const 2) (i32.shr_u (local.get $bytes) (i32.const 16))))
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $pages) (memory.size))) (i32.const -1))
          (then (call $proc_exit (i32.const 2)))))))

  (func (export "_start")
    (local $count i32) (local $size i32)
    (drop (call $args_sizes_get (i32.const 16) (i32.const 20)))
    (local.set $count (i32.load (i32.const 16)))
    (local.set $size (i32.load (i32.const 20)))
    (call $reserve (i32.add (i32.shl (local.get $count) (i32.const 2)) (local.get $size)))
    (drop (call $args_get (i32.const 65536)
      (i32.add (i32.const 65536) (i32.shl (local.get $count) (i32.const 2)))))
    (call $print_lines (i32.const 65536) (local.get $count))
    (call $write (i32.const 64) (i32.const 3))
    (drop (call $environ_sizes_get (i32.const 16) (i32.const 20)))
    (local.set $count (i32.load (i32.const 16)))
    (local.set $size (i32.load (i32.const 20)))
    (call $reserve (i32.add (i32.shl (local.get $count) (i32.const 2)) (local.get $size)))
    (drop (call $environ_get (i32.const 65536)
      (i32.add (i32.const 65536) (i32.shl (local.get $count) (i32.const 2)))))
    (call $print_lines (i32.const 65536) (local.get $count)))

  (func (export "hello")
    (call $write (i32.const 68) (i32.const 6))))
