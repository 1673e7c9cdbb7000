//! File inputs: paths, folders (recursively), globs, `-` for stdin; gzip and zstd
//! detected by their magic bytes; line-aligned blocks with a per-record size cap.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Errors expanding the inputs of a replay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A path does not exist and is not a glob that matched anything.
    #[error("{0}: no such file, folder or matching glob")]
    NotFound(String),
    /// A glob pattern is malformed.
    #[error("{pattern}: bad glob: {message}")]
    BadGlob {
        /// The pattern.
        pattern: String,
        /// Why.
        message: String,
    },
    /// Listing a folder failed.
    #[error("{path}: {source}")]
    Io {
        /// The folder or file.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
}

/// One input of a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The name findings carry as `source`: the path as given (or as found under a
    /// folder or glob), `-` for stdin.
    pub name: Arc<str>,
    /// The file to read, `None` for stdin.
    pub path: Option<PathBuf>,
    /// Size on disk (compressed size for .gz/.zst), 0 for stdin.
    pub size: u64,
}

/// Expand paths, folders and globs into a sorted, de-duplicated list of inputs.
/// `-` means stdin. Folders are walked recursively; hidden files are skipped.
pub fn expand(args: &[String]) -> Result<Vec<Input>, Error> {
    let mut out: Vec<Input> = Vec::new();
    for arg in args {
        if arg == "-" {
            out.push(Input {
                name: Arc::from("-"),
                path: None,
                size: 0,
            });
            continue;
        }
        let p = Path::new(arg);
        if p.is_dir() {
            let mut files = Vec::new();
            walk(p, &mut files)?;
            files.sort();
            for f in files {
                out.push(file_input(f)?);
            }
        } else if p.exists() {
            out.push(file_input(p.to_path_buf())?);
        } else if arg.contains(['*', '?', '[']) {
            let paths = glob::glob(arg).map_err(|e| Error::BadGlob {
                pattern: arg.clone(),
                message: e.msg.to_string(),
            })?;
            let mut found = Vec::new();
            for entry in paths {
                let path = entry.map_err(|e| Error::Io {
                    path: e.path().display().to_string(),
                    source: io::Error::other(e.error().to_string()),
                })?;
                if path.is_dir() {
                    walk(&path, &mut found)?;
                } else {
                    found.push(path);
                }
            }
            if found.is_empty() {
                return Err(Error::NotFound(arg.clone()));
            }
            found.sort();
            for f in found {
                out.push(file_input(f)?);
            }
        } else {
            return Err(Error::NotFound(arg.clone()));
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|i| seen.insert(i.name.clone()));
    Ok(out)
}

fn file_input(path: PathBuf) -> Result<Input, Error> {
    let size = std::fs::metadata(&path)
        .map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?
        .len();
    Ok(Input {
        name: Arc::from(path.display().to_string()),
        path: Some(path),
        size,
    })
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let io_err = |source| Error::Io {
        path: dir.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let ft = entry.file_type().map_err(io_err)?;
        if ft.is_dir() {
            walk(&path, out)?;
        } else if ft.is_file() || path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

/// A reader that counts the bytes read through it (compressed bytes, for progress).
struct Counting<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Open an input, decompressing gzip (also multi-member) and zstd by magic bytes.
/// `counter` is advanced by the raw (on-disk) bytes read.
pub fn open(input: &Input, counter: Arc<AtomicU64>) -> io::Result<Box<dyn Read + Send>> {
    let raw: Box<dyn Read + Send> = match &input.path {
        Some(p) => Box::new(File::open(p)?),
        None => Box::new(io::stdin()),
    };
    let mut br = BufReader::with_capacity(
        256 * 1024,
        Counting {
            inner: raw,
            counter,
        },
    );
    let head = br.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(br)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(zstd::stream::read::Decoder::with_buffer(br)?))
    } else {
        Ok(Box::new(br))
    }
}

/// A line that was longer than the record cap; it was skipped without being buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oversize {
    /// 1-based line number.
    pub line: u64,
    /// Its length in bytes (without the newline).
    pub length: u64,
}

/// A run of whole lines.
#[derive(Debug, Default)]
pub struct Block {
    /// Sequence number of the block within its input (0-based).
    pub index: u64,
    /// Line number of the first line in `data` (1-based).
    pub start_line: u64,
    /// Whole lines, each ending in `\n` except possibly the last line of the input.
    pub data: Vec<u8>,
    /// How many lines `data` holds (counted as the block is cut).
    pub lines: u64,
    /// Lines skipped before this block because they exceeded the record cap.
    pub oversize: Vec<Oversize>,
}

/// Splits a byte stream into line-aligned blocks of about `block_size` bytes. A
/// line longer than the block is never buffered whole: it is skipped and reported
/// as [`Oversize`].
pub struct BlockReader<R> {
    reader: R,
    block_size: usize,
    buf: Vec<u8>,
    next_line: u64,
    next_index: u64,
    eof: bool,
}

impl<R: Read> BlockReader<R> {
    /// A block reader; `block_size` is at least 64 KiB.
    pub fn new(reader: R, block_size: usize) -> Self {
        BlockReader {
            reader,
            block_size: block_size.max(64 * 1024),
            buf: Vec::new(),
            next_line: 1,
            next_index: 0,
            eof: false,
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        while !self.eof && self.buf.len() < self.block_size {
            let start = self.buf.len();
            self.buf.resize(self.block_size, 0);
            let n = loop {
                match self.reader.read(&mut self.buf[start..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.buf.truncate(start);
                        return Err(e);
                    }
                }
            };
            self.buf.truncate(start + n);
            if n == 0 {
                self.eof = true;
            }
        }
        Ok(())
    }

    /// Skip the rest of an over-long line; returns how many more bytes it had.
    fn skip_line(&mut self) -> io::Result<u64> {
        let mut skipped = 0u64;
        let mut tmp = vec![0u8; 64 * 1024];
        loop {
            let n = match self.reader.read(&mut tmp) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                self.eof = true;
                return Ok(skipped);
            }
            if let Some(pos) = memchr::memchr(b'\n', &tmp[..n]) {
                skipped += pos as u64;
                self.buf.extend_from_slice(&tmp[pos + 1..n]);
                return Ok(skipped);
            }
            skipped += n as u64;
        }
    }

    /// The next block, or `None` at the end of input.
    pub fn next_block(&mut self) -> io::Result<Option<Block>> {
        let mut oversize = Vec::new();
        loop {
            self.fill()?;
            if self.buf.is_empty() {
                if oversize.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(self.emit(Vec::new(), oversize)));
            }
            let cut = if self.eof {
                Some(self.buf.len())
            } else {
                memchr::memrchr(b'\n', &self.buf).map(|p| p + 1)
            };
            match cut {
                Some(c) => {
                    let rest = self.buf.split_off(c);
                    let data = std::mem::replace(&mut self.buf, rest);
                    return Ok(Some(self.emit(data, oversize)));
                }
                None => {
                    // One line fills the whole buffer: drop it without buffering more.
                    let head = self.buf.len() as u64;
                    self.buf.clear();
                    let rest = self.skip_line()?;
                    oversize.push(Oversize {
                        line: self.next_line,
                        length: head + rest,
                    });
                    self.next_line += 1;
                }
            }
        }
    }

    fn emit(&mut self, data: Vec<u8>, oversize: Vec<Oversize>) -> Block {
        let mut lines = memchr::memchr_iter(b'\n', &data).count() as u64;
        if data.last().is_some_and(|&b| b != b'\n') {
            lines += 1;
        }
        let block = Block {
            index: self.next_index,
            start_line: self.next_line,
            data,
            lines,
            oversize,
        };
        self.next_index += 1;
        self.next_line += lines;
        block
    }
}

/// Iterate over the lines of a block as (1-based line number, bytes without the
/// line ending).
pub fn lines(block: &Block) -> impl Iterator<Item = (u64, &[u8])> {
    let data = block.data.as_slice();
    let mut pos = 0usize;
    let mut line = block.start_line;
    std::iter::from_fn(move || {
        if pos >= data.len() {
            return None;
        }
        let end = memchr::memchr(b'\n', &data[pos..]).map_or(data.len(), |e| pos + e);
        let mut l = &data[pos..end];
        if let [head @ .., b'\r'] = l {
            l = head;
        }
        let item = (line, l);
        pos = end + 1;
        line += 1;
        Some(item)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(data: &[u8], size: usize) -> Vec<Block> {
        let mut r = BlockReader::new(data, size);
        let mut out = Vec::new();
        while let Some(b) = r.next_block().expect("read") {
            out.push(b);
        }
        out
    }

    #[test]
    fn blocks_are_line_aligned_and_numbered() {
        let mut data = Vec::new();
        for i in 0..50_000 {
            data.extend_from_slice(format!("line number {i}\n").as_bytes());
        }
        let bs = blocks(&data, 64 * 1024);
        assert!(bs.len() > 5);
        let mut expect = 1u64;
        for b in &bs {
            assert_eq!(b.start_line, expect);
            assert!(b.data.ends_with(b"\n"));
            for (n, l) in lines(b) {
                assert_eq!(l, format!("line number {}", n - 1).as_bytes());
                expect = n + 1;
            }
            assert_eq!(b.lines, lines(b).count() as u64);
        }
        assert_eq!(expect, 50_001);
    }

    #[test]
    fn last_line_without_newline_and_crlf() {
        let bs = blocks(b"a\r\nb\nc", 1 << 16);
        let all: Vec<(u64, Vec<u8>)> = bs
            .iter()
            .flat_map(|b| lines(b).map(|(n, l)| (n, l.to_vec())))
            .collect();
        assert_eq!(
            all,
            vec![(1, b"a".to_vec()), (2, b"b".to_vec()), (3, b"c".to_vec())]
        );
        assert_eq!(bs.iter().map(|b| b.lines).sum::<u64>(), 3);
    }

    #[test]
    fn overlong_line_is_skipped_and_counted() {
        let mut data = b"first\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 300 * 1024));
        data.extend_from_slice(b"\nthird\n");
        let bs = blocks(&data, 64 * 1024);
        let over: Vec<Oversize> = bs.iter().flat_map(|b| b.oversize.clone()).collect();
        assert_eq!(
            over,
            vec![Oversize {
                line: 2,
                length: 300 * 1024
            }]
        );
        let all: Vec<(u64, Vec<u8>)> = bs
            .iter()
            .flat_map(|b| lines(b).map(|(n, l)| (n, l.to_vec())))
            .collect();
        assert_eq!(all, vec![(1, b"first".to_vec()), (3, b"third".to_vec())]);
    }

    #[test]
    fn gzip_and_zstd_are_detected() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("tempdir");
        let text = b"hello\nworld\n";
        let gz = dir.path().join("a.log.gz");
        let mut enc = flate2::write::GzEncoder::new(
            File::create(&gz).expect("create"),
            flate2::Compression::fast(),
        );
        enc.write_all(text).expect("write");
        enc.finish().expect("finish");
        let zs = dir.path().join("b.log.zst");
        std::fs::write(&zs, zstd::encode_all(&text[..], 3).expect("zstd")).expect("write");
        let inputs = expand(&[dir.path().display().to_string()]).expect("expand");
        assert_eq!(inputs.len(), 2);
        for i in &inputs {
            let mut s = String::new();
            open(i, Arc::new(AtomicU64::new(0)))
                .expect("open")
                .read_to_string(&mut s)
                .expect("read");
            assert_eq!(s.as_bytes(), text);
        }
    }

    #[test]
    fn missing_path_is_an_error() {
        assert!(matches!(
            expand(&["/nonexistent/phiwatch/x.log".into()]),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            expand(&["/nonexistent/phiwatch/*.log".into()]),
            Err(Error::NotFound(_))
        ));
    }
}
