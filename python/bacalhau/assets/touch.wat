;; touch: creates (or truncates) the file named by argv[1] and writes "touched\n" into it.
;; Exits 0 on success; exits 1 with "touch: cannot write <path> (WASI errno N)" on stderr
;; otherwise (errno 0 means no mounted directory contains the path). Used by tests that
;; read-only inputs stay read-only and that writable mounts are writable.
;;
;; Memory map: 0 iovec, 8 nwritten, 12 opened fd, 16 prestat, 32 argc, 36 argv size,
;; 256 number scratch, 512 strings, 1024 preopen name, 65536.. argv.
(module $touch
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name" (func $fd_prestat_dir_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))

  (memory (export "memory") 2)
  (data (i32.const 512) "touched\n")                  ;; 8 bytes
  (data (i32.const 528) "touch: cannot write ")       ;; 20 bytes
  (data (i32.const 552) " (WASI errno ")              ;; 13 bytes
  (data (i32.const 568) ")\n")                        ;; 2 bytes
  (data (i32.const 576) "touch: usage: touch PATH\n") ;; 25 bytes

  (global $rel_ptr (mut i32) (i32.const 0))
  (global $rel_len (mut i32) (i32.const 0))

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

  (func $mem_eq (param $a i32) (param $b i32) (param $len i32) (result i32)
    (block $differ
      (loop $next
        (if (i32.eqz (local.get $len)) (then (return (i32.const 1))))
        (br_if $differ (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $len (i32.sub (local.get $len) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  ;; Same rule as wordcount: the preopen with the longest whole-component prefix wins.
  (func $resolve (param $ptr i32) (param $len i32) (result i32)
    (local $fd i32) (local $name_len i32) (local $best_fd i32) (local $best_len i32)
    (local.set $best_fd (i32.const -1))
    (local.set $best_len (i32.const -1))
    (local.set $fd (i32.const 3))
    (block $no_more
      (loop $each_fd
        (br_if $no_more (call $fd_prestat_get (local.get $fd) (i32.const 16)))
        (local.set $name_len (i32.load (i32.const 20)))
        (if (i32.and
              (i32.eqz (i32.load8_u (i32.const 16)))
              (i32.le_u (local.get $name_len) (i32.const 1024)))
          (then
            (if (i32.eqz (call $fd_prestat_dir_name (local.get $fd) (i32.const 1024) (local.get $name_len)))
              (then
                (block $trimmed
                  (loop $trim
                    (br_if $trimmed (i32.eqz (local.get $name_len)))
                    (br_if $trimmed (i32.ne (i32.load8_u (i32.add (i32.const 1023) (local.get $name_len))) (i32.const 47)))
                    (local.set $name_len (i32.sub (local.get $name_len) (i32.const 1)))
                    (br $trim)))
                (if (i32.and
                      (i32.and
                        (i32.le_u (local.get $name_len) (local.get $len))
                        (i32.gt_s (local.get $name_len) (local.get $best_len)))
                      (call $mem_eq (local.get $ptr) (i32.const 1024) (local.get $name_len)))
                  (then
                    (if (i32.or
                          (i32.eq (local.get $name_len) (local.get $len))
                          (i32.eq (i32.load8_u (i32.add (local.get $ptr) (local.get $name_len))) (i32.const 47)))
                      (then
                        (local.set $best_fd (local.get $fd))
                        (local.set $best_len (local.get $name_len))))))))))
        (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
        (br $each_fd)))
    (if (i32.ge_s (local.get $best_fd) (i32.const 0))
      (then
        (global.set $rel_ptr (i32.add (local.get $ptr) (local.get $best_len)))
        (global.set $rel_len (i32.sub (local.get $len) (local.get $best_len)))
        (block $skipped
          (loop $skip
            (br_if $skipped (i32.eqz (global.get $rel_len)))
            (br_if $skipped (i32.ne (i32.load8_u (global.get $rel_ptr)) (i32.const 47)))
            (global.set $rel_ptr (i32.add (global.get $rel_ptr) (i32.const 1)))
            (global.set $rel_len (i32.sub (global.get $rel_len) (i32.const 1)))
            (br $skip)))))
    (local.get $best_fd))

  (func $fail (param $ptr i32) (param $len i32) (param $errno i32)
    (local $digit_ptr i32)
    (drop (call $write_all (i32.const 2) (i32.const 528) (i32.const 20)))
    (drop (call $write_all (i32.const 2) (local.get $ptr) (local.get $len)))
    (drop (call $write_all (i32.const 2) (i32.const 552) (i32.const 13)))
    ;; errno < 100: one or two digits
    (local.set $digit_ptr (i32.const 256))
    (if (i32.ge_u (local.get $errno) (i32.const 10))
      (then
        (i32.store8 (local.get $digit_ptr) (i32.add (i32.const 48) (i32.div_u (local.get $errno) (i32.const 10))))
        (local.set $digit_ptr (i32.add (local.get $digit_ptr) (i32.const 1)))))
    (i32.store8 (local.get $digit_ptr) (i32.add (i32.const 48) (i32.rem_u (local.get $errno) (i32.const 10))))
    (drop (call $write_all (i32.const 2) (i32.const 256) (i32.sub (i32.add (local.get $digit_ptr) (i32.const 1)) (i32.const 256))))
    (drop (call $write_all (i32.const 2) (i32.const 568) (i32.const 2)))
    (call $proc_exit (i32.const 1))
    (unreachable))

  (func (export "_start")
    (local $path_ptr i32) (local $path_len i32) (local $dirfd i32) (local $err i32) (local $fd i32)
    (drop (call $args_sizes_get (i32.const 32) (i32.const 36)))
    (if (i32.or
          (i32.lt_u (i32.load (i32.const 32)) (i32.const 2))
          (i32.gt_u (i32.add (i32.shl (i32.load (i32.const 32)) (i32.const 2)) (i32.load (i32.const 36)))
                    (i32.const 65536)))
      (then
        (drop (call $write_all (i32.const 2) (i32.const 576) (i32.const 25)))
        (call $proc_exit (i32.const 2))))
    (drop (call $args_get (i32.const 65536)
      (i32.add (i32.const 65536) (i32.shl (i32.load (i32.const 32)) (i32.const 2)))))
    (local.set $path_ptr (i32.load (i32.const 65540)))
    (block $end
      (loop $scan
        (br_if $end (i32.eqz (i32.load8_u (i32.add (local.get $path_ptr) (local.get $path_len)))))
        (local.set $path_len (i32.add (local.get $path_len) (i32.const 1)))
        (br $scan)))
    (local.set $dirfd (call $resolve (local.get $path_ptr) (local.get $path_len)))
    (if (i32.lt_s (local.get $dirfd) (i32.const 0))
      (then (call $fail (local.get $path_ptr) (local.get $path_len) (i32.const 0))))
    ;; oflags: creat|trunc; rights: fd_write
    (local.set $err (call $path_open (local.get $dirfd) (i32.const 1)
      (global.get $rel_ptr) (global.get $rel_len) (i32.const 9)
      (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 12)))
    (if (local.get $err)
      (then (call $fail (local.get $path_ptr) (local.get $path_len) (local.get $err))))
    (local.set $fd (i32.load (i32.const 12)))
    (local.set $err (call $write_all (local.get $fd) (i32.const 512) (i32.const 8)))
    (if (local.get $err)
      (then (call $fail (local.get $path_ptr) (local.get $path_len) (local.get $err))))
    (drop (call $fd_close (local.get $fd)))
    (call $proc_exit (i32.const 0))))
