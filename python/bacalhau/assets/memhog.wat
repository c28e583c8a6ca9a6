;; memhog: grows linear memory one 64 KiB page at a time up to 1024 pages (64 MiB).
;; Exits 0 when every grow succeeded, 3 as soon as memory.grow refuses (a memory limit).
(module $memhog
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (block $done
      (loop $grow
        (br_if $done (i32.ge_u (memory.size) (i32.const 1024)))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1))
          (then (call $proc_exit (i32.const 3))))
        (br $grow)))
    (call $proc_exit (i32.const 0))))
