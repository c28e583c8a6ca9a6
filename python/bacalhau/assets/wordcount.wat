;; wordcount: counts lines, words and bytes of one file, like `wc`.
;;
;; Usage (WASI preview1 command): wordcount [PATH]   (PATH defaults to /inputs/input.txt)
;; Prints "<lines> <words> <bytes>\n" to stdout and writes the same line to /outputs/count.txt
;; when /outputs is mounted. Exits 1 with a message on stderr when PATH cannot be opened.
;; Words are runs of bytes that are not ASCII whitespace (space, \t \n \v \f \r), as in
;; Python's bytes.split(). Paths are resolved against the preopened directory whose name is
;; the longest prefix of the path.
;;
;; Memory map (4 pages):
;;   0     iovec {ptr, len}          8   nread / nwritten       12  opened fd
;;   16    prestat {tag, name_len}   32  argc                   36  argv buffer size
;;   256   output line (128 bytes)   512 constant strings       1024 preopen name (1 KiB)
;;   65536 read buffer (64 KiB)      131072 argv pointers, then argv strings (128 KiB)
(module $wordcount
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

  (data (i32.const 512) "/inputs/input.txt")            ;; 17 bytes
  (data (i32.const 544) "/outputs/count.txt")           ;; 18 bytes
  (data (i32.const 576) "wordcount: cannot open ")      ;; 23 bytes
  (data (i32.const 608) " (no mounted directory contains it)\n")  ;; 36 bytes
  (data (i32.const 648) " (WASI errno ")                ;; 13 bytes
  (data (i32.const 664) ")\n")                          ;; 2 bytes
  (data (i32.const 672) "wordcount: arguments too long\n")  ;; 30 bytes
  (data (i32.const 704) "wordcount: read error\n")      ;; 22 bytes

  ;; set by $resolve: the path relative to the chosen preopened directory
  (global $rel_ptr (mut i32) (i32.const 0))
  (global $rel_len (mut i32) (i32.const 0))
  ;; length of the output line being built at offset 256
  (global $out_len (mut i32) (i32.const 0))

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

  ;; Append the decimal form of $n to the output line.
  (func $append_num (param $n i64)
    (local $start i32) (local $end i32) (local $tmp i32)
    (local.set $start (i32.add (i32.const 256) (global.get $out_len)))
    (local.set $end (local.get $start))
    ;; digits in reverse order, then reverse them in place
    (loop $digit
      (i32.store8 (local.get $end)
        (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $n) (i64.const 10)))))
      (local.set $end (i32.add (local.get $end) (i32.const 1)))
      (local.set $n (i64.div_u (local.get $n) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $n) (i64.const 0))))
    (global.set $out_len (i32.add (global.get $out_len) (i32.sub (local.get $end) (local.get $start))))
    (local.set $end (i32.sub (local.get $end) (i32.const 1)))
    (block $reversed
      (loop $swap
        (br_if $reversed (i32.ge_u (local.get $start) (local.get $end)))
        (local.set $tmp (i32.load8_u (local.get $start)))
        (i32.store8 (local.get $start) (i32.load8_u (local.get $end)))
        (i32.store8 (local.get $end) (local.get $tmp))
        (local.set $start (i32.add (local.get $start) (i32.const 1)))
        (local.set $end (i32.sub (local.get $end) (i32.const 1)))
        (br $swap))))

  (func $append_byte (param $b i32)
    (i32.store8 (i32.add (i32.const 256) (global.get $out_len)) (local.get $b))
    (global.set $out_len (i32.add (global.get $out_len) (i32.const 1))))

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

  ;; Print "wordcount: cannot open <path>" + reason to stderr and exit 1.
  (func $fail_open (param $ptr i32) (param $len i32) (param $errno i32)
    (drop (call $write_all (i32.const 2) (i32.const 576) (i32.const 23)))
    (drop (call $write_all (i32.const 2) (local.get $ptr) (local.get $len)))
    (if (i32.lt_s (local.get $errno) (i32.const 0))
      (then (drop (call $write_all (i32.const 2) (i32.const 608) (i32.const 36))))
      (else
        (drop (call $write_all (i32.const 2) (i32.const 648) (i32.const 13)))
        (global.set $out_len (i32.const 0))
        (call $append_num (i64.extend_i32_u (local.get $errno)))
        (drop (call $write_all (i32.const 2) (i32.const 256) (global.get $out_len)))
        (drop (call $write_all (i32.const 2) (i32.const 664) (i32.const 2)))))
    (call $proc_exit (i32.const 1))
    (unreachable))

  (func $main (export "_start")
    (local $path_ptr i32) (local $path_len i32) (local $dirfd i32) (local $err i32)
    (local $fd i32) (local $n i32) (local $i i32) (local $c i32) (local $space i32)
    (local $in_word i32) (local $lines i64) (local $words i64) (local $bytes i64)

    ;; argv[1] or the default path
    (local.set $path_ptr (i32.const 512))
    (local.set $path_len (i32.const 17))
    (if (i32.eqz (call $args_sizes_get (i32.const 32) (i32.const 36)))
      (then
        (if (i64.gt_u
              (i64.add
                (i64.mul (i64.extend_i32_u (i32.load (i32.const 32))) (i64.const 4))
                (i64.extend_i32_u (i32.load (i32.const 36))))
              (i64.const 131072))
          (then
            (drop (call $write_all (i32.const 2) (i32.const 672) (i32.const 30)))
            (call $proc_exit (i32.const 2))))
        (if (i32.ge_u (i32.load (i32.const 32)) (i32.const 2))
          (then
            (if (i32.eqz (call $args_get
                           (i32.const 131072)
                           (i32.add (i32.const 131072) (i32.shl (i32.load (i32.const 32)) (i32.const 2)))))
              (then
                (local.set $path_ptr (i32.load (i32.const 131076)))
                (local.set $path_len (i32.const 0))
                (block $end
                  (loop $scan
                    (br_if $end (i32.eqz (i32.load8_u (i32.add (local.get $path_ptr) (local.get $path_len)))))
                    (local.set $path_len (i32.add (local.get $path_len) (i32.const 1)))
                    (br $scan)))))))))

    ;; open the input
    (local.set $dirfd (call $resolve (local.get $path_ptr) (local.get $path_len)))
    (if (i32.lt_s (local.get $dirfd) (i32.const 0))
      (then (call $fail_open (local.get $path_ptr) (local.get $path_len) (i32.const -1))))
    ;; lookup: follow symlinks; no oflags; rights: fd_read
    (local.set $err (call $path_open (local.get $dirfd) (i32.const 1)
      (global.get $rel_ptr) (global.get $rel_len) (i32.const 0)
      (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 12)))
    (if (local.get $err)
      (then (call $fail_open (local.get $path_ptr) (local.get $path_len) (local.get $err))))
    (local.set $fd (i32.load (i32.const 12)))

    ;; count
    (block $eof
      (loop $chunk
        (i32.store (i32.const 0) (i32.const 65536))
        (i32.store (i32.const 4) (i32.const 65536))
        (if (call $fd_read (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))
          (then
            (drop (call $write_all (i32.const 2) (i32.const 704) (i32.const 22)))
            (call $proc_exit (i32.const 1))))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $eof (i32.eqz (local.get $n)))
        (local.set $bytes (i64.add (local.get $bytes) (i64.extend_i32_u (local.get $n))))
        (local.set $i (i32.const 0))
        (block $chunk_done
          (loop $byte
            (br_if $chunk_done (i32.ge_u (local.get $i) (local.get $n)))
            (local.set $c (i32.load8_u (i32.add (i32.const 65536) (local.get $i))))
            (if (i32.eq (local.get $c) (i32.const 10))
              (then (local.set $lines (i64.add (local.get $lines) (i64.const 1)))))
            ;; whitespace: 9..13 or 32
            (local.set $space (i32.or
              (i32.eq (local.get $c) (i32.const 32))
              (i32.le_u (i32.sub (local.get $c) (i32.const 9)) (i32.const 4))))
            (if (local.get $space)
              (then (local.set $in_word (i32.const 0)))
              (else
                (if (i32.eqz (local.get $in_word))
                  (then
                    (local.set $words (i64.add (local.get $words) (i64.const 1)))
                    (local.set $in_word (i32.const 1))))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $byte)))
        (br $chunk)))
    (drop (call $fd_close (local.get $fd)))

    ;; "<lines> <words> <bytes>\n"
    (global.set $out_len (i32.const 0))
    (call $append_num (local.get $lines))
    (call $append_byte (i32.const 32))
    (call $append_num (local.get $words))
    (call $append_byte (i32.const 32))
    (call $append_num (local.get $bytes))
    (call $append_byte (i32.const 10))
    (drop (call $write_all (i32.const 1) (i32.const 256) (global.get $out_len)))

    ;; /outputs/count.txt, when /outputs is mounted
    (local.set $dirfd (call $resolve (i32.const 544) (i32.const 18)))
    (if (i32.ge_s (local.get $dirfd) (i32.const 0))
      (then
        ;; oflags: creat|trunc; rights: fd_write
        (local.set $err (call $path_open (local.get $dirfd) (i32.const 1)
          (global.get $rel_ptr) (global.get $rel_len) (i32.const 9)
          (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 12)))
        (if (local.get $err)
          (then (call $fail_open (i32.const 544) (i32.const 18) (local.get $err))))
        (local.set $fd (i32.load (i32.const 12)))
        (if (call $write_all (local.get $fd) (i32.const 256) (global.get $out_len))
          (then (call $fail_open (i32.const 544) (i32.const 18) (i32.const 29))))
        (drop (call $fd_close (local.get $fd)))))
    (call $proc_exit (i32.const 0)))
)
