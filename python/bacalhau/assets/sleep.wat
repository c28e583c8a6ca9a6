;; sleep: waits argv[1] milliseconds (default 1000) on the monotonic clock, then writes
;; "slept\n" to stdout and, when /outputs is mounted, to /outputs/slept.txt; exits 0.
;; The wait is a loop of poll_oneoff clock subscriptions of at most 50 ms each, so an epoch
;; deadline (execution timeout, cancellation) stops the module between two of them. Used by
;; tests that need a job running for a known time (node loss while a job runs).
;;
;; Memory map: 0 iovec, 8 nwritten, 12 opened fd, 16 prestat, 32 argc, 36 argv size,
;; 40 clock value, 48 nevents, 64 subscription (48 bytes), 128 event (32 bytes),
;; 512 strings, 1024 preopen name, 65536.. argv.
(module $sleep
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name" (func $fd_prestat_dir_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))

  (memory (export "memory") 2)
  (data (i32.const 512) "slept\n")          ;; 6 bytes
  (data (i32.const 528) "/outputs")         ;; 8 bytes
  (data (i32.const 544) "slept.txt")        ;; 9 bytes

  (func $write_all (param $fd i32) (param $ptr i32) (param $len i32) (result i32)
    (local $err i32)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $len)))
        (i32.store (i32.const 0) (local.get $ptr))
        (i32.store (i32.const 4) (local.get $len))
        (local.set $err (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
        (if (local.get $err) (then (return (local.get $err))))
        (local.set $ptr (i32.add (local.get $ptr) (i32.load (i32.const 8))))
        (local.set $len (i32.sub (local.get $len) (i32.load (i32.const 8))))
        (br $more)))
    (i32.const 0))

  (func $now (result i64)
    (drop (call $clock_time_get (i32.const 1) (i64.const 1000) (i32.const 40)))
    (i64.load (i32.const 40)))

  ;; argv[1] as a decimal number of milliseconds (1000 when absent or not a number)
  (func $millis (result i64)
    (local $ptr i32) (local $c i32) (local $value i64) (local $digits i32)
    (drop (call $args_sizes_get (i32.const 32) (i32.const 36)))
    (if (i32.or
          (i32.lt_u (i32.load (i32.const 32)) (i32.const 2))
          (i32.gt_u (i32.add (i32.shl (i32.load (i32.const 32)) (i32.const 2)) (i32.load (i32.const 36)))
                    (i32.const 65536)))
      (then (return (i64.const 1000))))
    (drop (call $args_get (i32.const 65536)
      (i32.add (i32.const 65536) (i32.shl (i32.load (i32.const 32)) (i32.const 2)))))
    (local.set $ptr (i32.load (i32.const 65540)))
    (block $end
      (loop $digit
        (local.set $c (i32.load8_u (local.get $ptr)))
        (br_if $end (i32.or (i32.lt_u (local.get $c) (i32.const 48)) (i32.gt_u (local.get $c) (i32.const 57))))
        (local.set $value (i64.add (i64.mul (local.get $value) (i64.const 10))
                                   (i64.extend_i32_u (i32.sub (local.get $c) (i32.const 48)))))
        (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
        (local.set $ptr (i32.add (local.get $ptr) (i32.const 1)))
        (br $digit)))
    (if (result i64) (local.get $digits) (then (local.get $value)) (else (i64.const 1000))))

  ;; one relative clock subscription of `ns` nanoseconds
  (func $pause (param $ns i64)
    (i64.store (i32.const 64) (i64.const 0))          ;; userdata
    (i32.store8 (i32.const 72) (i32.const 0))         ;; tag: clock
    (i32.store (i32.const 80) (i32.const 1))          ;; clock id: monotonic
    (i64.store (i32.const 88) (local.get $ns))        ;; timeout
    (i64.store (i32.const 96) (i64.const 1000000))    ;; precision
    (i32.store16 (i32.const 104) (i32.const 0))       ;; flags: relative
    (drop (call $poll_oneoff (i32.const 64) (i32.const 128) (i32.const 1) (i32.const 48))))

  ;; the fd of the preopen named exactly "/outputs", or -1
  (func $outputs_fd (result i32)
    (local $fd i32)
    (local.set $fd (i32.const 3))
    (block $none
      (loop $each
        (br_if $none (call $fd_prestat_get (local.get $fd) (i32.const 16)))
        (if (i32.and (i32.eqz (i32.load8_u (i32.const 16)))
                     (i32.eq (i32.load (i32.const 20)) (i32.const 8)))
          (then
            (if (i32.eqz (call $fd_prestat_dir_name (local.get $fd) (i32.const 1024) (i32.const 8)))
              (then
                (if (i64.eq (i64.load (i32.const 1024)) (i64.load (i32.const 528)))
                  (then (return (local.get $fd))))))))
        (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
        (br $each)))
    (i32.const -1))

  (func (export "_start")
    (local $deadline i64) (local $left i64) (local $dir i32)
    (local.set $deadline (i64.add (call $now) (i64.mul (call $millis) (i64.const 1000000))))
    (block $done
      (loop $wait
        (local.set $left (i64.sub (local.get $deadline) (call $now)))
        (br_if $done (i64.le_s (local.get $left) (i64.const 0)))
        (if (i64.gt_s (local.get $left) (i64.const 50000000))
          (then (local.set $left (i64.const 50000000))))
        (call $pause (local.get $left))
        (br $wait)))
    (drop (call $write_all (i32.const 1) (i32.const 512) (i32.const 6)))
    (local.set $dir (call $outputs_fd))
    (if (i32.ge_s (local.get $dir) (i32.const 0))
      (then
        ;; oflags: creat|trunc; rights: fd_write
        (if (i32.eqz (call $path_open (local.get $dir) (i32.const 1) (i32.const 544) (i32.const 9)
                       (i32.const 9) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 12)))
          (then
            (drop (call $write_all (i32.load (i32.const 12)) (i32.const 512) (i32.const 6)))
            (drop (call $fd_close (i32.load (i32.const 12))))))))
    (call $proc_exit (i32.const 0))))
