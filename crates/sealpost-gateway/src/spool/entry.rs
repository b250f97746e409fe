//! The on-disk format of a spool entry, and writing files atomically.
//!
//! An entry file `queue/ID.msg` holds one accepted message with all its copies, and is never
//! changed after it is written:
//!
//! ```text
//! magic        8 bytes  "SPLPOST1"
//! header_len   u32, big-endian
//! header_crc   u32, big-endian: CRC-32 (IEEE) of the header bytes
//! header       header_len bytes of JSON: created, mail_from, message_id, received_from, and
//!              per copy: label, recipients, len, crc32 (CRC-32 of the copy's bytes)
//! data         the copies' bytes, one after another, in header order
//! ```
//!
//! A file is well-formed when the magic, the header checksum and the total length
//! (16 + header_len + the copies' lengths) all agree; a copy's checksum is checked whenever it
//! is read. Files are first written to `tmp/` and fsynced there, then linked into place; a
//! temp file is locked (`flock`) by its writer while it is written, so a cleaner in another
//! process removes only temp files whose writer is gone. This module knows nothing of the
//! delivery state (see `state`) or of queue ids beyond using them as names.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The first 8 bytes of every entry file.
const MAGIC: &[u8; 8] = b"SPLPOST1";
/// Bytes before the JSON header: magic, header length, header checksum.
const PREFIX_LEN: u64 = 16;
/// A larger header is treated as corruption (it holds addresses and labels only).
const MAX_HEADER_LEN: u32 = 16 << 20;
/// Suffix of temp files in `tmp/`.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// The JSON header of an entry file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Header {
    /// When the entry was stored, seconds since the Unix epoch.
    pub created: u64,
    /// The envelope sender; empty for the null sender.
    pub mail_from: String,
    /// The original's Message-ID, for logs.
    pub message_id: Option<String>,
    /// Who handed the message to us: "helo [ip]".
    pub received_from: String,
    /// The copies, in the order of their bytes in the file.
    pub parts: Vec<PartHeader>,
}

/// One copy in the header.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PartHeader {
    /// What this copy is ("original", "encrypted (Do-Not-Forward)", …).
    pub label: String,
    /// Its envelope recipients.
    pub recipients: Vec<String>,
    /// Its length in bytes.
    pub len: u64,
    /// CRC-32 of its bytes.
    pub crc32: u32,
}

/// Why an entry file cannot be used.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The file could not be read.
    Io(io::Error),
    /// The file is not a well-formed entry; the text says how.
    Corrupt(String),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> ReadError {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ReadError::Corrupt("the file is shorter than its header says".into())
        } else {
            ReadError::Io(e)
        }
    }
}

/// A read header and where the copies' bytes start.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub header: Header,
    pub data_offset: u64,
    pub file_len: u64,
}

impl Loaded {
    /// Where copy `part` starts in the file.
    fn part_offset(&self, part: usize) -> u64 {
        self.data_offset + self.header.parts[..part].iter().map(|p| p.len).sum::<u64>()
    }
}

/// The bytes that precede the copies: magic, header length and checksum, header.
pub(crate) fn encode_header(header: &Header) -> Vec<u8> {
    let json = serde_json::to_vec(header).expect("the spool header serializes");
    let mut out = Vec::with_capacity(PREFIX_LEN as usize + json.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&json).to_be_bytes());
    out.extend_from_slice(&json);
    out
}

/// Reads and checks the header of an open entry file (from its start).
pub(crate) fn read_header(file: &mut File) -> Result<Loaded, ReadError> {
    let file_len = file.metadata()?.len();
    file.seek(SeekFrom::Start(0))?;
    let mut prefix = [0u8; PREFIX_LEN as usize];
    file.read_exact(&mut prefix)?;
    if &prefix[..8] != MAGIC {
        return Err(ReadError::Corrupt("not a spool entry (wrong magic)".into()));
    }
    let header_len = u32::from_be_bytes(prefix[8..12].try_into().expect("4 bytes"));
    let header_crc = u32::from_be_bytes(prefix[12..16].try_into().expect("4 bytes"));
    if header_len > MAX_HEADER_LEN || u64::from(header_len) > file_len - PREFIX_LEN {
        return Err(ReadError::Corrupt(format!(
            "header length {header_len} does not fit the file"
        )));
    }
    let mut json = vec![0u8; header_len as usize];
    file.read_exact(&mut json)?;
    if crc32fast::hash(&json) != header_crc {
        return Err(ReadError::Corrupt("header checksum mismatch".into()));
    }
    let header: Header = serde_json::from_slice(&json)
        .map_err(|e| ReadError::Corrupt(format!("header is not valid: {e}")))?;
    if header.parts.is_empty() {
        return Err(ReadError::Corrupt("the entry has no copies".into()));
    }
    let data_offset = PREFIX_LEN + u64::from(header_len);
    let expected = header
        .parts
        .iter()
        .try_fold(data_offset, |n, p| n.checked_add(p.len));
    if expected != Some(file_len) {
        return Err(ReadError::Corrupt(format!(
            "file is {file_len} bytes, its header says {}",
            expected.map_or_else(|| "more than 2^64".into(), |n| n.to_string())
        )));
    }
    Ok(Loaded {
        header,
        data_offset,
        file_len,
    })
}

/// Reads copy `part` and checks its checksum.
pub(crate) fn read_part(
    file: &mut File,
    loaded: &Loaded,
    part: usize,
) -> Result<Vec<u8>, ReadError> {
    let ph = &loaded.header.parts[part];
    file.seek(SeekFrom::Start(loaded.part_offset(part)))?;
    let mut data = vec![0u8; ph.len as usize];
    file.read_exact(&mut data)?;
    if crc32fast::hash(&data) != ph.crc32 {
        return Err(ReadError::Corrupt(format!(
            "checksum mismatch in copy {part}"
        )));
    }
    Ok(data)
}

/// A temp file in `tmp/`, locked by this process while it exists under that name.
pub(crate) struct TempFile {
    pub path: PathBuf,
    file: File,
}

impl TempFile {
    /// Removes the temp name (the data lives on under the name it was linked to). Errors are
    /// ignored: a leftover temp file is removed by the next [`clean_temp`].
    pub fn discard(self) {
        let _ = fs::remove_file(&self.path);
        drop(self.file);
    }
}

/// Writes `chunks` to a new locked temp file in `tmp_dir`; with `sync`, its data is on disk
/// when this returns (`fdatasync`).
pub(crate) fn write_temp(tmp_dir: &Path, chunks: &[&[u8]], sync: bool) -> io::Result<TempFile> {
    let mut name = [0u8; 8];
    getrandom::fill(&mut name).map_err(io::Error::other)?;
    let path = tmp_dir.join(format!("{}{TEMP_SUFFIX}", hex::encode(name)));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    // Spooled mail may be plaintext that is about to be encrypted: owner only.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&path)?;
    let temp = match file.try_lock() {
        Ok(()) => TempFile { path, file },
        Err(TryLockError::WouldBlock) => {
            // A cleaner in another process got to it between our create and our lock.
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "temp file taken by a cleaner",
            ));
        }
        Err(TryLockError::Error(e)) => return Err(e),
    };
    let mut result = Ok(());
    for chunk in chunks {
        result = (&temp.file).write_all(chunk);
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() && sync {
        result = temp.file.sync_data();
    }
    match result {
        Ok(()) => Ok(temp),
        Err(e) => {
            temp.discard();
            Err(e)
        }
    }
}

/// Removes the temp files whose writer is gone (a crash mid-write): those not locked by any
/// process. Returns how many were removed.
pub(crate) fn clean_temp(tmp_dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for item in fs::read_dir(tmp_dir)? {
        let path = item?.path();
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        match file.try_lock() {
            Ok(()) => match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            },
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(e),
        }
    }
    Ok(removed)
}

/// Creates `dir` and its parents if missing (owner-only on Unix).
pub(crate) fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Makes the names created, renamed or removed in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
