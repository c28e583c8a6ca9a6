//! A gzip writer whose deflate state is kept per thread and reused.
//!
//! `flate2::write::GzEncoder` allocates a fresh compressor (about 300 KB, zeroed) for every
//! archive. A result archive is usually a few KB, so in a long-running process that fresh
//! memory (page faults and zeroing) cost more than the compression itself. `GzWriter` takes
//! the calling thread's compressor, resets it, and gives it back when the archive is finished.
//! The bytes are exactly what `GzEncoder` with the same level writes: the same deflate stream
//! and the same 10-byte header (no name, no mtime, OS "unknown").

use std::cell::RefCell;
use std::io::{self, Write};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// The header `flate2::GzBuilder` writes by default: magic, deflate, no flags, mtime 0,
/// no extra flags, OS 255 ("unknown").
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
const CHUNK: usize = 32 * 1024;

thread_local! {
    static COMPRESSOR: RefCell<Option<Compress>> = const { RefCell::new(None) };
}

/// Compresses what is written into gzip on `inner`; call `finish` to write the trailer.
pub struct GzWriter<W: Write> {
    inner: W,
    compress: Option<Compress>,
    crc: Crc,
    out: Vec<u8>,
    header_written: bool,
}

impl<W: Write> GzWriter<W> {
    /// A writer at the default level (6), as `Compression::default()`.
    pub fn new(inner: W) -> Self {
        let compress = COMPRESSOR
            .with(|slot| slot.borrow_mut().take())
            .map(|mut c| {
                c.reset();
                c
            })
            .unwrap_or_else(|| Compress::new(Compression::default(), false));
        GzWriter {
            inner,
            compress: Some(compress),
            crc: Crc::new(),
            out: Vec::with_capacity(CHUNK),
            header_written: false,
        }
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            self.inner.write_all(&HEADER)?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Runs the compressor over `input` with `flush`, writing its output to `inner`.
    fn pump(&mut self, mut input: &[u8], flush: FlushCompress) -> io::Result<()> {
        self.write_header()?;
        loop {
            self.out.clear();
            let compress = self
                .compress
                .as_mut()
                .ok_or_else(|| io::Error::other("gzip writer already finished"))?;
            let before = compress.total_in();
            let status = compress
                .compress_vec(input, &mut self.out, flush)
                .map_err(io::Error::other)?;
            let consumed = (compress.total_in() - before) as usize;
            input = &input[consumed..];
            self.inner.write_all(&self.out)?;
            let done = match flush {
                FlushCompress::Finish => status == Status::StreamEnd,
                _ => input.is_empty() && self.out.len() < self.out.capacity(),
            };
            if done {
                return Ok(());
            }
        }
    }

    /// Ends the deflate stream, writes the trailer and returns the inner writer; the
    /// compressor goes back to the thread for the next archive.
    pub fn finish(mut self) -> io::Result<W> {
        self.pump(&[], FlushCompress::Finish)?;
        let crc = self.crc.sum();
        let size = self.crc.amount();
        self.inner.write_all(&crc.to_le_bytes())?;
        self.inner.write_all(&size.to_le_bytes())?;
        if let Some(compress) = self.compress.take() {
            COMPRESSOR.with(|slot| *slot.borrow_mut() = Some(compress));
        }
        let GzWriter { inner, .. } = self;
        Ok(inner)
    }
}

impl<W: Write> Write for GzWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pump(buf, FlushCompress::None)?;
        self.crc.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;

    fn reference(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn ours(pieces: &[&[u8]]) -> Vec<u8> {
        let mut w = GzWriter::new(Vec::new());
        for p in pieces {
            w.write_all(p).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn writes_the_bytes_gzencoder_writes_and_reuses_the_compressor() {
        let small = vec![0u8; 6144];
        let mut big = Vec::new();
        for i in 0..200_000u32 {
            big.extend_from_slice(&i.wrapping_mul(2_654_435_761).to_le_bytes());
        }
        for _ in 0..3 {
            // the second and third rounds take the compressor the first one gave back
            assert_eq!(ours(&[&small]), reference(&small));
            assert_eq!(ours(&[&big[..1000], &big[1000..]]), reference(&big));
            assert_eq!(ours(&[]), reference(&[]));
        }
    }

    #[test]
    fn an_unfinished_writer_leaves_no_state_behind() {
        let mut w = GzWriter::new(Vec::new());
        w.write_all(b"abandoned halfway").unwrap();
        drop(w); // e.g. an error while packing: its compressor is dropped, not reused
        assert_eq!(ours(&[b"next archive"]), reference(b"next archive"));
    }
}
