;; copy: copies files: copy SRC DEST [SRC DEST]...
;;
;; Usage (WASI preview1 command). For each pair, SRC is copied to DEST (created or truncated)
;; and "copied SRC" is printed to stdout; a SRC that cannot be opened is skipped with
;; "missing SRC" on stdout (tests of partitioned inputs run the same pairs on every execution
;; and read which files each one had). A DEST that cannot be written, or a read error, prints
;; "copy: cannot copy <path>" on stderr and exits 1; bad arguments exit 2. Paths are resolved
;; against the preopened directory whose name is the longest prefix of the path.
;;
;; Memory map (4 pages):
;;   0     iovec {ptr, len}          8   nread / nwritten       12  opened fd
;;   16    prestat {tag, name_len}   32  argc                   36  argv buffer size
;;   512   constant strings          1020 "." scratch           1024 preopen name (1 KiB)
;;   65536 copy buffer (64 KiB)      131072 argv pointers, then argv strings (128 KiB)
(module $copy
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name" (func $fd_prestat_dir_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))

  (memory (export "memory") 4)

  (data (i32.const 512) "missing ")                 ;; 8 bytes
  (data (i32.const 528) "copied ")                  ;; 7 bytes
  (data (i32.const 544) "\n")                       ;; 1 byte
  (data (i32.const 560) "copy: cannot copy ")       ;; 18 bytes
  (data (i32.const 592) "copy: usage: copy SRC DEST [SRC DEST]...\n")  ;; 41 bytes
  (data (i32.const 640) "copy: arguments too long\n")  ;; 25 bytes

  ;; set by $resolve: the path relative to the chosen preopened directory
  (global $rel_ptr (mut i32) (i32.const 0))
  (global $rel_len (mut i32) (i32.const 0))

  ;; Write all of [ptr, ptr+len) to fd; returns 0 or the WASI errno.
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

  ;; 1 when the $len bytes at $a and $b are equal.
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

  ;; Find the preopened directory whose name is the longest prefix of the absolute path
  ;; [$ptr, $ptr+$len) (matching whole components). Returns its fd, or -1 if none matches;
  ;; sets $rel_ptr/$rel_len to the rest of the path ("." for the directory itself).
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
                ;; ignore trailing slashes, so "/" matches every absolute path
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
        ;; skip the separating slashes
        (block $skipped
          (loop $skip
            (br_if $skipped (i32.eqz (global.get $rel_len)))
            (br_if $skipped (i32.ne (i32.load8_u (global.get $rel_ptr)) (i32.const 47)))
            (global.set $rel_ptr (i32.add (global.get $rel_ptr) (i32.const 1)))
            (global.set $rel_len (i32.sub (global.get $rel_len) (i32.const 1)))
            (br $skip)))
        (if (i32.eqz (global.get $rel_len))
          (then
            (i32.store8 (i32.const 1020) (i32.const 46))
            (global.set $rel_ptr (i32.const 1020))
            (global.set $rel_len (i32.const 1))))))
    (local.get $best_fd))

  (func $strlen (param $ptr i32) (result i32)
    (local $n i32)
    (block $end
      (loop $scan
        (br_if $end (i32.eqz (i32.load8_u (i32.add (local.get $ptr) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $scan)))
    (local.get $n))

  ;; "<word><path>\n" on stdout.
  (func $report (param $word i32) (param $word_len i32) (param $ptr i32) (param $len i32)
    (drop (call $write_all (i32.const 1) (local.get $word) (local.get $word_len)))
    (drop (call $write_all (i32.const 1) (local.get $ptr) (local.get $len)))
    (drop (call $write_all (i32.const 1) (i32.const 544) (i32.const 1))))

  ;; "copy: cannot copy <path>\n" on stderr, exit 1.
  (func $fail (param $ptr i32) (param $len i32)
    (drop (call $write_all (i32.const 2) (i32.const 560) (i32.const 18)))
    (drop (call $write_all (i32.const 2) (local.get $ptr) (local.get $len)))
    (drop (call $write_all (i32.const 2) (i32.const 544) (i32.const 1)))
    (call $proc_exit (i32.const 1))
    (unreachable))

  ;; argv[$i] (pointer into the argv buffer)
  (func $arg (param $i i32) (result i32)
    (i32.load (i32.add (i32.const 131072) (i32.shl (local.get $i) (i32.const 2)))))

  (func $main (export "_start")
    (local $argc i32) (local $i i32) (local $src i32) (local $src_len i32)
    (local $dst i32) (local $dst_len i32) (local $dirfd i32) (local $in i32) (local $out i32)
    (local $n i32)
    (if (call $args_sizes_get (i32.const 32) (i32.const 36))
      (then (call $proc_exit (i32.const 2))))
    (if (i64.gt_u
          (i64.add
            (i64.mul (i64.extend_i32_u (i32.load (i32.const 32))) (i64.const 4))
            (i64.extend_i32_u (i32.load (i32.const 36))))
          (i64.const 131072))
      (then
        (drop (call $write_all (i32.const 2) (i32.const 640) (i32.const 25)))
        (call $proc_exit (i32.const 2))))
    (local.set $argc (i32.load (i32.const 32)))
    ;; argv[0] plus whole pairs: an odd count of at least 3
    (if (i32.or (i32.lt_u (local.get $argc) (i32.const 3))
                (i32.eqz (i32.and (local.get $argc) (i32.const 1))))
      (then
        (drop (call $write_all (i32.const 2) (i32.const 592) (i32.const 41)))
        (call $proc_exit (i32.const 2))))
    (if (call $args_get (i32.const 131072)
                        (i32.add (i32.const 131072) (i32.shl (local.get $argc) (i32.const 2))))
      (then (call $proc_exit (i32.const 2))))
    (local.set $i (i32.const 1))
    (block $done
      (loop $pair
        (br_if $done (i32.ge_u (local.get $i) (local.get $argc)))
        (local.set $src (call $arg (local.get $i)))
        (local.set $src_len (call $strlen (local.get $src)))
        (local.set $dst (call $arg (i32.add (local.get $i) (i32.const 1))))
        (local.set $dst_len (call $strlen (local.get $dst)))
        (local.set $i (i32.add (local.get $i) (i32.const 2)))
        (block $skip
          ;; SRC: lookup follows symlinks; rights: fd_read
          (local.set $dirfd (call $resolve (local.get $src) (local.get $src_len)))
          (br_if $skip (i32.lt_s (local.get $dirfd) (i32.const 0)))
          (br_if $skip (call $path_open (local.get $dirfd) (i32.const 1)
            (global.get $rel_ptr) (global.get $rel_len) (i32.const 0)
            (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 12)))
          (local.set $in (i32.load (i32.const 12)))
          ;; DEST: oflags creat|trunc; rights: fd_write
          (local.set $dirfd (call $resolve (local.get $dst) (local.get $dst_len)))
          (if (i32.lt_s (local.get $dirfd) (i32.const 0))
            (then (call $fail (local.get $dst) (local.get $dst_len))))
          (if (call $path_open (local.get $dirfd) (i32.const 1)
                (global.get $rel_ptr) (global.get $rel_len) (i32.const 9)
                (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 12))
            (then (call $fail (local.get $dst) (local.get $dst_len))))
          (local.set $out (i32.load (i32.const 12)))
          (block $eof
            (loop $chunk
              (i32.store (i32.const 0) (i32.const 65536))
              (i32.store (i32.const 4) (i32.const 65536))
              (if (call $fd_read (local.get $in) (i32.const 0) (i32.const 1) (i32.const 8))
                (then (call $fail (local.get $src) (local.get $src_len))))
              (local.set $n (i32.load (i32.const 8)))
              (br_if $eof (i32.eqz (local.get $n)))
              (if (call $write_all (local.get $out) (i32.const 65536) (local.get $n))
                (then (call $fail (local.get $dst) (local.get $dst_len))))
              (br $chunk)))
          (drop (call $fd_close (local.get $in)))
          (drop (call $fd_close (local.get $out)))
          (call $report (i32.const 528) (i32.const 7) (local.get $src) (local.get $src_len))
          (br $pair))
        ;; SRC could not be opened
        (call $report (i32.const 512) (i32.const 8) (local.get $src) (local.get $src_len))
        (br $pair)))
    (call $proc_exit (i32.const 0)))
)
