//! A directory as the next hop (`next_hop = "file:///DIR"`): each recipient's copy is written
//! as one `.eml` file, the way a local delivery agent files mail into a mailbox. For the demo
//! (the development mailbox of `sealpost serve --demo` lists such a directory) and for tests;
//! a production gateway relays over SMTP ([`crate::relay`]).
//!
//! A file is written under a temporary name, synced, and renamed, so a reader never sees half a
//! message and a delivered copy survives a crash. Like a delivery agent it adds `Return-Path`
//! and `Delivered-To` above the message; the message's own bytes follow unchanged. This module
//! does not rotate, index or clean up the directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::relay::SendError;

/// Delivery into a directory.
#[derive(Debug, Clone)]
pub struct Maildrop {
    dir: PathBuf,
}

impl Maildrop {
    /// Delivers into `dir` (created when missing).
    pub fn new(dir: &Path) -> Maildrop {
        Maildrop {
            dir: dir.to_path_buf(),
        }
    }

    /// The hop as logs show it.
    pub fn describe(&self) -> String {
        format!("file://{}", self.dir.display())
    }

    /// Files one copy per recipient; any failure is transient (the spool retries).
    pub async fn send(
        &self,
        mail_from: &str,
        recipients: &[String],
        data: &[u8],
    ) -> Result<(), SendError> {
        let (dir, from, rcpts, data) = (
            self.dir.clone(),
            mail_from.to_string(),
            recipients.to_vec(),
            data.to_vec(),
        );
        let result = tokio::task::spawn_blocking(move || write_all(&dir, &from, &rcpts, &data))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        result.map_err(|e| SendError {
            permanent: false,
            message: format!("cannot write to {}: {e}", self.describe()),
            code: None,
        })
    }
}

/// A header value with line breaks removed, so an address cannot start a new field.
fn one_line(s: &str) -> String {
    s.chars().filter(|c| !matches!(c, '\r' | '\n')).collect()
}

fn write_all(dir: &Path, from: &str, rcpts: &[String], data: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for rcpt in rcpts {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut salt = [0u8; 4];
        getrandom::fill(&mut salt).map_err(|e| std::io::Error::other(e.to_string()))?;
        let name = format!("{nanos:024}-{}.eml", hex::encode(salt));
        let tmp = dir.join(format!(".{name}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        write!(
            f,
            "Return-Path: <{}>\r\nDelivered-To: {}\r\n",
            one_line(from),
            one_line(rcpt)
        )?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, dir.join(&name))?;
    }
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_file_per_recipient_with_delivery_fields() {
        let dir = tempfile::tempdir().unwrap();
        let drop = Maildrop::new(&dir.path().join("box"));
        let rcpts = vec![
            "a@x.example".to_string(),
            "b@x.example\r\nBcc: c".to_string(),
        ];
        drop.send("s@x.example", &rcpts, b"Subject: hi\r\n\r\nbody\r\n")
            .await
            .unwrap();
        let mut files: Vec<_> = std::fs::read_dir(dir.path().join("box"))
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        files.sort();
        assert_eq!(files.len(), 2);
        assert!(files.iter().any(|f| f
            == "Return-Path: <s@x.example>\r\nDelivered-To: a@x.example\r\nSubject: hi\r\n\r\nbody\r\n"));
        assert!(
            files.iter().all(|f| !f.contains("\r\nBcc: c")),
            "no header injection"
        );
    }

    #[tokio::test]
    async fn an_unwritable_directory_is_a_transient_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let e = Maildrop::new(&file)
            .send("", &["a@x.example".into()], b"x\r\n")
            .await
            .unwrap_err();
        assert!(!e.permanent);
        assert!(e.message.contains("not-a-dir"), "{}", e.message);
    }
}
