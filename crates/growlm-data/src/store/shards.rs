//! Reading a token store's shards: windows of ids read at their offsets (positioned reads,
//! not a memory map: mapped pages a run has touched count in its resident memory, and
//! random windows over a large corpus would touch it all).

use std::fs::File;
use std::path::{Path, PathBuf};

use super::{damaged, mtime_ns, ShardRecord};
use crate::DataError;

/// Shards kept open; a store of more (a corpus of thousands of files) opens a shard for
/// each window read from it, so no run needs more file descriptors than this.
const KEEP_OPEN: usize = 256;

/// A shard file: open, or opened when read.
#[derive(Debug)]
enum Handle {
    Open(File),
    Closed(PathBuf),
}

/// The shards of one split, read as one stream of token ids.
#[derive(Debug)]
pub struct Shards {
    /// Each non-empty shard: its file, name, first token's position in the stream, tokens.
    files: Vec<(Handle, String, u64, u64)>,
    width: usize,
    len: u64,
}

impl Shards {
    /// Opens the shards of `records` under `dir` (ids of `width` bytes), checking each
    /// against its record: the size always, the checksum when its time changed.
    pub(crate) fn open(dir: &Path, records: &[ShardRecord], width: usize) -> Result<Self, DataError> {
        let mut files = Vec::new();
        let mut len = 0u64;
        for r in records {
            let path = dir.join(&r.file);
            let file = File::open(&path).map_err(|_| damaged(&path, "the shard is missing"))?;
            let meta = file.metadata().map_err(|source| DataError::Io {
                path: path.clone(),
                source,
            })?;
            if meta.len() != r.tokens * width as u64 {
                return Err(damaged(
                    &path,
                    &format!(
                        "the shard has {} bytes, its record says {} tokens of {width} bytes",
                        meta.len(),
                        r.tokens
                    ),
                ));
            }
            if mtime_ns(&meta) != r.mtime_ns {
                let sum = crate::sha256_file(&path).map_err(|source| DataError::Io {
                    path: path.clone(),
                    source,
                })?;
                if sum != r.sha256 {
                    return Err(damaged(&path, "the shard's checksum differs from its record"));
                }
            }
            if r.tokens > 0 {
                files.push((Handle::Open(file), r.file.clone(), len, r.tokens));
                len += r.tokens;
            }
        }
        if files.len() > KEEP_OPEN {
            for f in &mut files {
                f.0 = Handle::Closed(dir.join(&f.1));
            }
        }
        Ok(Self { files, width, len })
    }

    /// Tokens in the stream.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the stream is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends the `n` ids from position `start` to `out` (across shard ends).
    pub fn read(&self, start: u64, n: usize, out: &mut Vec<u32>) -> Result<(), DataError> {
        if start + n as u64 > self.len {
            return Err(DataError::Corrupt {
                path: "token store".into(),
                reason: format!("window {start}+{n} past its end at {}", self.len),
            });
        }
        let (mut at, mut left) = (start, n as u64);
        let mut i = self.files.partition_point(|f| f.2 + f.3 <= at);
        let mut buf = Vec::new();
        while left > 0 {
            let (handle, name, first, tokens) = &self.files[i];
            let take = left.min(first + tokens - at);
            buf.resize(take as usize * self.width, 0);
            let offset = (at - first) * self.width as u64;
            let read = match handle {
                Handle::Open(file) => read_at(file, &mut buf, offset),
                Handle::Closed(path) => File::open(path).and_then(|f| read_at(&f, &mut buf, offset)),
            };
            read.map_err(|source| DataError::Io {
                path: name.into(),
                source,
            })?;
            if self.width == 2 {
                out.extend(buf.chunks_exact(2).map(|b| u32::from(u16::from_le_bytes([b[0], b[1]]))));
            } else {
                out.extend(
                    buf.chunks_exact(4)
                        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
            }
            at += take;
            left -= take;
            i += 1;
        }
        Ok(())
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}
