//! Batching a [`FileStore`](super::FileStore)'s file I/O: a read-ahead cache for serving and a
//! write-back buffer for downloading.
//!
//! The engine reads and writes one chunk at a time, and a chunk is often 1 KiB: one system
//! call per chunk (plus, for writes, the file system's per-call bookkeeping of a partial
//! page) cost a seeder about a quarter of its CPU time and a downloader a third. Requests
//! arrive in short ascending runs (typically 16 chunks) that skip around a neighbourhood and
//! fill the gaps later (the picker walks runs of a peer's map).
//!
//! - [`ReadCache`]: a read that continues where an earlier one ended (the reader is going
//!   through the file in order) reads ahead [`READ_AHEAD_CHUNKS`] chunks (at most
//!   [`READ_AHEAD_MAX`] bytes) from there; the next chunks are copied from memory. Other
//!   reads go straight to the file, so random access costs no more than before. Read-ahead
//!   is deliberately short and unaligned: whole aligned regions would be read again and
//!   again as the runs skip through them (measured: 4–8 times the bytes for regions of
//!   64–256 KiB, and copying cold page-cache data is what a read costs).
//! - [`WriteBack`]: chunks are copied into a few buffers of aligned regions of whole chunks
//!   (about [`WRITE_REGION`] bytes), so the gaps a run skips are filled in memory; a region is
//!   written when it is full, when a buffer is needed for another region (the least recently
//!   used one goes), or on [`WriteBack::flush_all`]. Each write covers a maximal run of
//!   buffered chunks. Reads of buffered chunks are served from memory. On Linux, every
//!   [`WRITEBACK_KICK`] bytes written the kernel is asked to start writing them to disk
//!   (`sync_file_range`, without waiting for the data to reach the disk), so the sync on
//!   completion finds little left to do instead of the whole download (the kernel's own
//!   writeback waits until 10 % of memory is dirty or 30 s passed). The call itself blocks
//!   while the device's request queue is full (measured: up to 20 ms on a busy machine, in
//!   a loop that must answer the network every millisecond), so it is made from a helper
//!   thread ([`Writeback`]).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Chunks read at once when a reader goes through the file in order.
pub(crate) const READ_AHEAD_CHUNKS: u64 = 16;
/// The most bytes read ahead (rounded down to whole chunks, at least one).
pub(crate) const READ_AHEAD_MAX: u64 = 256 << 10;
/// The size of a write-back region, in bytes (rounded down to whole chunks, at least one).
pub(crate) const WRITE_REGION: u64 = 1 << 20;
/// Bytes written between requests to start writeback (Linux).
pub(crate) const WRITEBACK_KICK: u64 = 8 << 20;
/// Read-ahead buffers kept (one per reader going through the file in order, roughly).
const READ_SLOTS: usize = 8;
/// Write-back regions kept.
const WRITE_SLOTS: usize = 4;

/// A region's size for `chunk_size`-byte chunks: whole chunks, about `target` bytes.
fn region_size(chunk_size: u64, target: u64) -> u64 {
    (target / chunk_size).max(1) * chunk_size
}

#[derive(Debug)]
struct ReadSlot {
    /// The file offset of `data[0]`.
    base: u64,
    data: Vec<u8>,
    /// One past the last byte served from this slot: where its reader goes next.
    next: u64,
    used: u64,
}

/// The read-ahead cache (see the module docs).
#[derive(Debug)]
pub(crate) struct ReadCache {
    /// Bytes read ahead.
    ahead: u64,
    slots: Vec<ReadSlot>,
    /// One past the last byte read through the cache.
    last_end: Option<u64>,
    tick: u64,
}

impl ReadCache {
    /// A cache for `chunk_size`-byte chunks.
    pub(crate) fn new(chunk_size: u64) -> Self {
        Self {
            ahead: region_size(
                chunk_size,
                (READ_AHEAD_CHUNKS * chunk_size).min(READ_AHEAD_MAX),
            ),
            slots: Vec::new(),
            last_end: None,
            tick: 0,
        }
    }

    /// Reads `buf.len()` bytes at `offset` of `file`, whose readable length is `file_len`.
    pub(crate) fn read(
        &mut self,
        file: &File,
        file_len: u64,
        offset: u64,
        buf: &mut [u8],
    ) -> io::Result<()> {
        let want = buf.len() as u64;
        let end = offset + want;
        self.tick += 1;
        let sequential = self.last_end == Some(offset);
        self.last_end = Some(end);
        let tick = self.tick;
        if let Some(s) = self
            .slots
            .iter_mut()
            .find(|s| s.base <= offset && end <= s.base + s.data.len() as u64)
        {
            let at = (offset - s.base) as usize;
            buf.copy_from_slice(&s.data[at..at + buf.len()]);
            s.next = end;
            s.used = tick;
            return Ok(());
        }
        // A reader that left a read-ahead buffer at its end, or reads right after the last
        // read, is going through the file in order: read ahead from here. Anything else
        // reads directly.
        let follows = self.slots.iter().position(|s| s.next == offset);
        let base = offset;
        let len = self.ahead.min(file_len.saturating_sub(base));
        if (!sequential && follows.is_none()) || want >= self.ahead || end > base + len {
            return file.read_exact_at(buf, offset);
        }
        let i = match follows {
            Some(i) => i,
            None if self.slots.len() < READ_SLOTS => {
                self.slots.push(ReadSlot {
                    base,
                    data: Vec::new(),
                    next: 0,
                    used: 0,
                });
                self.slots.len() - 1
            }
            None => self
                .slots
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.used)
                .map_or(0, |(i, _)| i),
        };
        let s = &mut self.slots[i];
        s.base = base;
        s.data.resize(len as usize, 0);
        if let Err(e) = file.read_exact_at(&mut s.data, base) {
            self.slots.swap_remove(i);
            return Err(e);
        }
        buf.copy_from_slice(&s.data[..buf.len()]);
        s.next = end;
        s.used = tick;
        Ok(())
    }

    /// Forgets everything (the file changed).
    pub(crate) fn clear(&mut self) {
        self.slots.clear();
        self.last_end = None;
    }
}

#[derive(Debug)]
struct WriteSlot {
    base: u64,
    data: Vec<u8>,
    /// One bit per chunk of the region: buffered.
    present: Vec<u64>,
    count: u64,
    /// One past the last buffered byte, relative to `base` (the file's last chunk may be
    /// short).
    top: u64,
    used: u64,
}

impl WriteSlot {
    fn has(&self, i: u64) -> bool {
        self.present[(i / 64) as usize] & (1 << (i % 64)) != 0
    }
}

/// The write-back buffer (see the module docs).
#[derive(Debug)]
pub(crate) struct WriteBack {
    chunk_size: u64,
    region: u64,
    slots: Vec<WriteSlot>,
    /// Emptied slots, kept to reuse their buffers.
    spare: Vec<WriteSlot>,
    tick: u64,
    /// The file range written since writeback was last started, and its bytes.
    unkicked: Option<(u64, u64)>,
    unkicked_bytes: u64,
    writeback: Option<Writeback>,
}

impl WriteBack {
    /// A buffer for `chunk_size`-byte chunks.
    pub(crate) fn new(chunk_size: u64) -> Self {
        Self {
            chunk_size,
            region: region_size(chunk_size, WRITE_REGION),
            slots: Vec::new(),
            spare: Vec::new(),
            tick: 0,
            unkicked: None,
            unkicked_bytes: 0,
            writeback: None,
        }
    }

    /// Buffers `data`, the chunk at `offset` (a multiple of the chunk size); writes regions
    /// out as needed. An error means some buffered data could not be written.
    pub(crate) fn write(&mut self, file: &File, offset: u64, data: &[u8]) -> io::Result<()> {
        let len = data.len() as u64;
        if len > self.chunk_size || offset % self.chunk_size != 0 {
            return file.write_all_at(data, offset);
        }
        self.tick += 1;
        let base = offset - offset % self.region;
        let i = match self.slots.iter().position(|s| s.base == base) {
            Some(i) => i,
            None => {
                if self.slots.len() >= WRITE_SLOTS {
                    let lru = self
                        .slots
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, s)| s.used)
                        .map_or(0, |(i, _)| i);
                    self.flush_slot(file, lru)?;
                }
                let chunks = self.region / self.chunk_size;
                let mut s = self.spare.pop().unwrap_or_else(|| WriteSlot {
                    base,
                    data: Vec::new(),
                    present: Vec::new(),
                    count: 0,
                    top: 0,
                    used: 0,
                });
                s.base = base;
                s.data.resize(self.region as usize, 0);
                s.present.clear();
                s.present.resize(chunks.div_ceil(64) as usize, 0);
                s.count = 0;
                s.top = 0;
                self.slots.push(s);
                self.slots.len() - 1
            }
        };
        let s = &mut self.slots[i];
        let rel = offset - base;
        let c = rel / self.chunk_size;
        s.data[rel as usize..(rel + len) as usize].copy_from_slice(data);
        if !s.has(c) {
            s.present[(c / 64) as usize] |= 1 << (c % 64);
            s.count += 1;
        }
        s.top = s.top.max(rel + len);
        s.used = self.tick;
        if s.count == self.region / self.chunk_size {
            self.flush_slot(file, i)?;
        }
        Ok(())
    }

    /// Copies the buffered chunk at `offset` into `buf`; false if it is not buffered.
    pub(crate) fn read(&self, offset: u64, buf: &mut [u8]) -> bool {
        let base = offset - offset % self.region;
        let Some(s) = self.slots.iter().find(|s| s.base == base) else {
            return false;
        };
        let rel = offset - base;
        let end = rel + buf.len() as u64;
        if offset % self.chunk_size != 0 || end > s.top || !s.has(rel / self.chunk_size) {
            return false;
        }
        buf.copy_from_slice(&s.data[rel as usize..end as usize]);
        true
    }

    /// Writes every buffered chunk to `file`.
    pub(crate) fn flush_all(&mut self, file: &File) -> io::Result<()> {
        while !self.slots.is_empty() {
            self.flush_slot(file, self.slots.len() - 1)?;
        }
        Ok(())
    }

    /// Whether nothing is buffered.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Writes slot `i` out, one write per run of buffered chunks, and frees it. On error the
    /// slot is dropped all the same: the store has failed and reports it from then on.
    fn flush_slot(&mut self, file: &File, i: usize) -> io::Result<()> {
        let s = self.slots.swap_remove(i);
        let chunks = self.region / self.chunk_size;
        let mut result = Ok(());
        let mut c = 0;
        while c < chunks {
            if !s.has(c) {
                c += 1;
                continue;
            }
            let start = c;
            while c < chunks && s.has(c) {
                c += 1;
            }
            let from = start * self.chunk_size;
            let to = (c * self.chunk_size).min(s.top);
            if let Err(e) = file.write_all_at(&s.data[from as usize..to as usize], s.base + from) {
                result = Err(e);
                break;
            }
            let (lo, hi) = (s.base + from, s.base + to);
            self.unkicked = Some(
                self.unkicked
                    .map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))),
            );
            self.unkicked_bytes += to - from;
        }
        self.spare.push(s);
        if self.unkicked_bytes >= WRITEBACK_KICK {
            if let Some((lo, hi)) = self.unkicked.take() {
                let wb = self.writeback.get_or_insert_with(|| Writeback::new(file));
                wb.start(file, lo, hi - lo);
            }
            self.unkicked_bytes = 0;
        }
        result
    }
}

/// Starts writeback from a helper thread, so the caller never waits for the device queue.
/// Requests that pile up while the thread is busy are merged into one range.
#[derive(Debug)]
struct Writeback {
    /// `None` if the thread could not be started: then the caller makes the call itself.
    tx: Option<std::sync::mpsc::Sender<(u64, u64)>>,
}

impl Writeback {
    fn new(file: &File) -> Self {
        let tx = file.try_clone().ok().and_then(|f| {
            let (tx, rx) = std::sync::mpsc::channel::<(u64, u64)>();
            std::thread::Builder::new()
                .name("ppspp-writeback".into())
                .spawn(move || {
                    // Ends when the store (the sender) is dropped.
                    while let Ok((mut lo, mut hi)) = rx.recv() {
                        while let Ok((a, b)) = rx.try_recv() {
                            (lo, hi) = (lo.min(a), hi.max(b));
                        }
                        start_writeback(&f, lo, hi - lo);
                    }
                })
                .ok()
                .map(|_| tx)
        });
        Self { tx }
    }

    fn start(&mut self, file: &File, offset: u64, len: u64) {
        match &self.tx {
            Some(tx) if tx.send((offset, offset + len)).is_ok() => {}
            _ => {
                self.tx = None;
                start_writeback(file, offset, len);
            }
        }
    }
}

/// Asks the kernel to start writing `len` bytes at `offset` of `file` to disk, without
/// waiting for it. Advisory: errors show up at the next sync.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: the descriptor is open for the duration of the call (borrowed from `file`);
    // sync_file_range(2) takes no pointers.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Elsewhere the operating system's own writeback does it.
#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp_file(name: &str) -> (std::path::PathBuf, File) {
        let p = std::env::temp_dir().join(format!("ppspp-cache-{}-{name}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        (p, f)
    }

    /// Chunks written in any order, some twice regions apart, read back from the buffer
    /// and, after a flush, from the file, byte for byte.
    #[test]
    fn write_back_in_any_order() {
        let (p, f) = tmp_file("wb");
        let cs = 1000u64; // does not divide the region: regions are whole chunks
        let n = 3_000u64;
        let total = n * cs - 300; // a short last chunk
        let chunk = |i: u64| -> Vec<u8> {
            let len = if i == n - 1 { cs - 300 } else { cs };
            (0..len).map(|b| (i * 7 + b) as u8).collect()
        };
        let mut wb = WriteBack::new(cs);
        let mut order: Vec<u64> = (0..n).collect();
        // Interleave runs from far apart, so regions are evicted before they are full.
        order.sort_by_key(|&i| (i % 5, i));
        let mut buf = vec![0u8; cs as usize];
        for (k, &i) in order.iter().enumerate() {
            wb.write(&f, i * cs, &chunk(i)).unwrap();
            let want = chunk(i);
            let got = &mut buf[..want.len()];
            if wb.read(i * cs, got) {
                assert_eq!(got, &want[..]);
            }
            if k == 10 {
                assert!(!wb.is_empty());
            }
        }
        wb.flush_all(&f).unwrap();
        assert!(wb.is_empty());
        let data = std::fs::read(&p).unwrap();
        assert_eq!(data.len() as u64, total);
        for i in 0..n {
            let at = (i * cs) as usize;
            assert_eq!(&data[at..at + chunk(i).len()], &chunk(i)[..], "chunk {i}");
        }
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn read_ahead_serves_sequential_and_random_reads() {
        let (p, f) = tmp_file("ra");
        let cs = 1024u64;
        let data: Vec<u8> = (0..(1u64 << 20) + 100)
            .map(|b| (b * 31 / 7) as u8)
            .collect();
        f.write_all_at(&data, 0).unwrap();
        let len = data.len() as u64;
        let mut rc = ReadCache::new(cs);
        let mut buf = vec![0u8; cs as usize];
        let mut check = |rc: &mut ReadCache, c: u64| {
            let off = c * cs;
            let n = (len - off).min(cs) as usize;
            rc.read(&f, len, off, &mut buf[..n]).unwrap();
            assert_eq!(
                &buf[..n],
                &data[off as usize..off as usize + n],
                "chunk {c}"
            );
        };
        // In order: the first read is direct, then one read per 16 chunks.
        for c in 0..600 {
            check(&mut rc, c);
        }
        assert_eq!(rc.slots.len(), 1);
        assert_eq!(rc.slots[0].base, 593 * cs);
        // Random reads go straight to the file.
        for c in [900, 17, 1000, 3, 555, 1023] {
            check(&mut rc, c);
        }
        assert_eq!(rc.slots.len(), 1);
        // Two readers interleaved, each with its buffer; the short last chunk.
        for c in 0..40 {
            check(&mut rc, 100 + c);
            check(&mut rc, 700 + c);
        }
        for c in 1016..=1024 {
            check(&mut rc, c);
        }
        assert!(rc.slots.len() <= READ_SLOTS);
        rc.clear();
        check(&mut rc, 5);
        std::fs::remove_file(p).unwrap();
    }
}
